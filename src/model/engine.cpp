#include "model/engine.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/attention_paged.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear_rows.h"
#include "model/cpu_ops.h"
#include "model/decoder.h"
#include "model/quant_weights.h"
#if MINDLLM_CUDA
#include "kernels/cuda/device.h"
#include "model/cuda/cuda_engine.h"
#endif

namespace mindllm {

namespace {

// The decoder's Ops for inference on the CPU: RoPE at each sequence's positions, the new keys and
// values written into the cache, then paged attention over the cache. Every op computes a row the
// same way whatever else is in the batch (the linear layers: linear_forward_rows and the int8 dot
// tiles, never a GEMM whose sums depend on the row count), so a sequence's tokens do not depend
// on how the server batches it.
struct CachedOps : CpuOps {
  KvCache& cache;
  const std::vector<BatchRows>& seqs;
  const QuantizedWeights* quant;  // the model's quantised matrices, or null
  cpu::QuantScratch& qscratch;
  std::vector<const void*>& block_ptrs;    // scratch: each sequence's key blocks, then value blocks
  std::vector<cpu::PagedSequence>& paged;  // scratch
  // Matrices with a quantised copy run the quantised kernels (kernels/cpu/quant.h), others fp32
  // (or bf16 GEMMs under --precision bf16).
  void linear(float* out, const float* in, size_t w, size_t b, int N, int I, int O, cpu::WeightLayout wl) const {
    if (const cpu::QuantMatrix* m = quant ? quant->find(w) : nullptr)
      cpu::linear_forward_quant(out, in, *m, opt(p, b), N, qscratch, cpu::QuantPrefill::dot);
    else if (p_bf16) CpuOps::linear(out, in, w, b, N, I, O, wl);
    else cpu::linear_forward_rows(out, in, p + w, opt(p, b), N, I, O, wl);
  }
  void attend(int l, float* att, float* qkv, float*, int) const {
    const int Q = cfg.q_dim(), KV = cfg.kv_dim(), QKV = Q + 2 * KV, bs = cache.block_size();
    size_t n_ptrs = 0;
    for (const BatchRows& s : seqs) n_ptrs += 2 * cache.block_table(s.seq).size();
    block_ptrs.resize(n_ptrs);
    paged.resize(seqs.size());
    const void** ptr = block_ptrs.data();
    for (size_t i = 0; i < seqs.size(); i++) {
      const BatchRows& s = seqs[i];
      float* rows = qkv + (size_t)s.row0 * QKV;
      rope(rows, 1, s.n_rows, s.past);
      const std::vector<int>& table = cache.block_table(s.seq);
      for (int t = 0; t < s.n_rows; t++) {
        const int p = s.past + t;
        cache.store(l, table[p / bs], p % bs, rows + (size_t)t * QKV + Q, rows + (size_t)t * QKV + Q + KV);
      }
      const size_t nb = table.size();
      for (size_t k = 0; k < nb; k++) ptr[k] = cache.keys(l, table[k]), ptr[nb + k] = cache.values(l, table[k]);
      paged[i] = cpu::PagedSequence{s.row0, s.n_rows, s.past, ptr, ptr + nb};
      ptr += 2 * nb;
    }
    cpu::PagedAttentionShape shape{static_cast<int>(paged.size()),
                                   paged.data(),
                                   cfg.n_heads,
                                   cfg.n_kv_heads,
                                   cfg.head_dim,
                                   QKV,
                                   Q,
                                   cache.row_stride(),
                                   bs,
                                   cfg.attn_scale,
                                   cfg.window[l],
                                   cache.type()};
    cpu::attention_paged_forward(att, qkv, shape);
  }
  void attend_backward(int, float*, const float*, const float*, const float*, const float*, int) const {
    MINDLLM_CHECK(false, "the inference engine has no backward pass");
  }
};

}  // namespace

int InferenceEngine::max_length() const {
  const ModelConfig& c = config();
  return c.learned_positions ? c.max_positions : INT_MAX;
}

void plan_batch(const InferenceEngine& engine, const KvCache& cache, std::span<const BatchEntry> batch,
                BatchPlan& plan) {
  const ModelConfig& cfg = engine.config();
  const int V = cfg.vocab_size;
  std::vector<BatchRows>& seqs = plan.seqs;
  std::vector<int>& logit_rows = plan.logit_rows;
  std::vector<int32_t>& toks = plan.tokens;
  seqs.clear(), logit_rows.clear(), toks.clear();
  for (const BatchEntry& e : batch) {
    MINDLLM_CHECK(!e.tokens.empty(), "Engine::forward: an empty chunk");
    for (const BatchRows& s : seqs) MINDLLM_CHECK(s.seq != e.seq, "Engine::forward: a sequence twice in one batch");
    const int past = cache.length(e.seq), n = static_cast<int>(e.tokens.size());
    if ((int64_t)past + n > engine.max_length())
      bad_input("sequence of " + std::to_string((int64_t)past + n) + " tokens exceeds the model's " +
                std::to_string(cfg.max_positions) + " positions");
    for (int32_t t : e.tokens)
      if (t < 0 || t >= V)
        bad_input("token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V));
    const int row0 = static_cast<int>(toks.size());
    const int from = e.logits_from < 0 ? n - 1 : std::min(e.logits_from, n);
    for (int t = from; t < n; t++) logit_rows.push_back(row0 + t);
    seqs.push_back(BatchRows{e.seq, row0, n, past});
    toks.insert(toks.end(), e.tokens.begin(), e.tokens.end());
  }
}

KvType Engine::kv_type() const { return model_.quantized() ? KvType::bf16 : KvType::f32; }

KvCache Engine::make_cache(int block_size, int64_t max_positions, KvType type) const {
  return KvCache(model_.config(), block_size, max_positions, type);
}

void Engine::forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits) {
  const ModelConfig& cfg = model_.config();
  const ParamLayout& L = model_.layout();
  const int C = cfg.hidden, H = cfg.intermediate, V = cfg.vocab_size;
  const int Q = cfg.q_dim(), QKV = Q + 2 * cfg.kv_dim(), F = cfg.gated_mlp ? 2 * H : H;
  plan_batch(*this, cache, batch, plan_);  // checks everything before changing anything
  const std::vector<BatchRows>& seqs = plan_.seqs;
  const std::vector<int>& logit_rows = plan_.logit_rows;
  const std::vector<int32_t>& toks = plan_.tokens;
  const int N = static_cast<int>(toks.size());
  logits.resize(logit_rows.size() * (size_t)V);
  if (N == 0) return;
  for (const BatchRows& s : seqs) cache.reserve(s.seq, s.past + s.n_rows);

  const size_t NC = (size_t)N * C;
  x_.resize(NC), xn_.resize(NC), h_.resize(NC), n2_.resize(NC), r_.resize(NC);
  qkv_.resize((size_t)N * QKV), att_.resize((size_t)N * Q), fc_.resize((size_t)N * F), act_.resize((size_t)N * H);
  n1m_.resize(N), n1r_.resize(N), n2m_.resize(N), n2r_.resize(N);
  const float* p = model_.params().data();
  CachedOps ops{{cfg, L, p, model_.params_bf16()}, cache, seqs, model_.quantized(), qscratch_, block_ptrs_, paged_};
  // One set of activation buffers serves every layer; the residual stream x_ is updated in place.
  LayerActs<float> a;
  a.x_norm = xn_.data(), a.n1_mean = n1m_.data(), a.n1_rstd = n1r_.data(), a.qkv = qkv_.data();
  a.att = att_.data(), a.r1 = r_.data(), a.h = h_.data(), a.n2 = n2_.data();
  a.n2_mean = n2m_.data(), a.n2_rstd = n2r_.data(), a.fc = fc_.data(), a.act = act_.data(), a.r2 = r_.data();

  for (const BatchRows& s : seqs)
    cpu::embedding_forward(x_.data() + (size_t)s.row0 * C, toks.data() + s.row0, p + L.wte, CpuOps::opt(p, L.wpe), 1,
                           s.n_rows, C, s.past);
  for (int l = 0; l < cfg.n_layers; l++) block_forward(ops, l, N, a, x_.data(), x_.data());
  for (size_t i = 0; i < seqs.size(); i++) cache.append(seqs[i].seq, batch[i].tokens);
  tokens_computed_ += N;
  if (logit_rows.empty()) return;
  const int R = static_cast<int>(logit_rows.size());
  gath_.resize((size_t)R * C);
  for (int i = 0; i < R; i++)
    std::memcpy(gath_.data() + (size_t)i * C, x_.data() + (size_t)logit_rows[i] * C, sizeof(float) * C);
  ops.norm(xn_.data(), n1m_.data(), n1r_.data(), gath_.data(), L.normf_w, L.normf_b, R);
  ops.linear(logits.data(), xn_.data(), L.lm_head, kAbsent, R, C, V, cpu::WeightLayout::out_in);
}

void check_cuda_device() {
#if MINDLLM_CUDA
  if (!cuda::available())
    bad_input("--device cuda: no usable GPU (" + cuda::device_description() + "); use --device cpu");
#else
  bad_input(
      "--device cuda: this build has no CUDA backend (rebuild with nvcc and -DMINDLLM_CUDA=ON; use --device cpu)");
#endif
}

std::unique_ptr<InferenceEngine> make_engine(const Model& model, Device device, Precision precision, int max_tokens) {
  if (device == Device::cpu) return std::make_unique<Engine>(model);
  check_cuda_device();
  if (const QuantizedWeights* q = model.quantized())
    bad_input(std::string("--device cuda: the weights are quantised (") + cpu::quant_type_name(q->type) +
              "); the GPU engine runs fp32 weights (--weights f32; --precision bf16 for bf16 compute)");
#if MINDLLM_CUDA
  return std::make_unique<CudaEngine>(model, precision, max_tokens);
#else
  (void)precision, (void)max_tokens;
  return nullptr;  // not reached: check_cuda_device refused
#endif
}

InferenceWeights host_weights(InferenceWeights how, Device device) {
  if (device == Device::cuda) how.matmul = Precision::fp32;
  return how;
}

}  // namespace mindllm
