#include "model/cuda/cuda_engine.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "kernels/cuda/attention_paged.h"
#include "kernels/cuda/embedding.h"
#include "model/cuda/cuda_ops.h"
#include "model/decoder.h"

namespace mindllm {

using cuda::bf16;

namespace {

std::string gib(size_t b) { return std::to_string(b / (1 << 20) / 1024.0).substr(0, 5); }

void check_fits(size_t need, const std::string& what) {
  if (const size_t have = cuda::free_memory(); need > have)
    bad_input(what + " needs " + gib(need) + " GiB of GPU memory; " + cuda::device_description() + " has " + gib(have) +
              " GiB free");
}

}  // namespace

DeviceKvStorage::DeviceKvStorage(int64_t capacity, size_t block_bytes)
    : pool_((size_t)capacity * block_bytes), capacity_(capacity), block_bytes_(block_bytes) {}

void DeviceKvStorage::grow(int64_t n_blocks, size_t block_bytes) {
  MINDLLM_CHECK(n_blocks <= capacity_ && block_bytes == block_bytes_, "DeviceKvStorage: beyond the pool");
}

void DeviceKvStorage::copy_block(int dst, int src, size_t block_bytes) { copy(block(dst), block(src), block_bytes); }

// The decoder's Ops for inference on the GPU: the shared forward ops, and an attention op that
// applies RoPE at each row's position, stores the new keys and values in the cache and attends
// through the block tables.
template <typename A>
struct CudaEngine::PagedOps : CudaForwardOps<A> {
  cuda::PagedAttentionShape shape;  // k_base / v_base set per layer
  uint8_t* pool;
  size_t layer_bytes;  // one layer's keys (or values) of a block
  const int32_t* positions;

  void attend(int l, A* att, A* qkv, float*, int N) const {
    const ModelConfig& c = this->cfg;
    const int Q = c.q_dim(), KV = c.kv_dim();
    this->rope(qkv, 1, N, positions);
    cuda::PagedAttentionShape s = shape;
    s.k_base = pool + (size_t)(2 * l) * layer_bytes;
    s.v_base = pool + (size_t)(2 * l + 1) * layer_bytes;
    s.window = c.window[l];
    cuda::paged_kv_store(s, qkv + Q, qkv + Q + KV, Q + 2 * KV);
    cuda::attention_paged_forward(att, qkv, s);
  }
};

CudaEngine::CudaEngine(const Model& model, Precision precision, int max_tokens)
    : InferenceEngine(model), precision_(precision), max_tokens_(max_tokens) {
  MINDLLM_CHECK(max_tokens > 0, "CudaEngine: max_tokens must be positive");
  check_cuda_device();
  MINDLLM_CHECK(!model.quantized(), "CudaEngine: quantised weights (make_engine refuses them)");
  const ModelConfig& c = model.config();
  MINDLLM_CHECK(c.head_dim <= 256, "CudaEngine: paged attention supports head_dim <= 256");
  const size_t N = max_tokens, C = c.hidden, H = c.intermediate, V = c.vocab_size, Q = c.q_dim();
  const size_t QKV = Q + 2 * c.kv_dim(), F = c.gated_mlp ? 2 * H : H;
  const size_t e = precision == Precision::bf16 ? sizeof(bf16) : sizeof(float);
  const size_t total = model.layout().total;
  auto act = [&](size_t n) { return arena_.reserve(n * e); };
  auto f32 = [&](size_t n) { return arena_.reserve(n * sizeof(float)); };
  params_ = f32(total);
  if (precision == Precision::bf16) params_bf16_ = arena_.reserve_n<bf16>(total);
  x_ = act(N * C), xn_ = act(N * C), qkv_ = act(N * QKV), att_ = act(N * Q), h_ = act(N * C), n2_ = act(N * C);
  fc_ = act(N * F), act_ = act(N * H), r_ = act(N * C), gath_ = act(N * C), logits_ = act(N * V);
  n1m_ = f32(N), n1r_ = f32(N), n2m_ = f32(N), n2r_ = f32(N);
  check_fits(arena_.bytes(), "the model with batches of " + std::to_string(max_tokens) + " tokens");
  arena_.allocate();
  to_device(at<float>(params_), model.params().data(), total);
  if (precision == Precision::bf16) cuda::convert(at<bf16>(params_bf16_), at<float>(params_), total);
  cuda::synchronize();
}

CudaEngine::~CudaEngine() = default;

KvType CudaEngine::kv_type() const { return precision_ == Precision::bf16 ? KvType::bf16 : KvType::f32; }

KvCache CudaEngine::make_cache(int block_size, int64_t max_positions, KvType type) const {
  MINDLLM_CHECK(block_size > 0, "CudaEngine::make_cache: block size must be positive");
  if (type == KvType::q8_0) bad_input("the GPU engine's K/V cache is f32 or bf16 (--kv-cache q8_0 is CPU only)");
  if (max_positions <= 0) bad_input("the GPU's K/V cache needs a size (positions over all sequences)");
  const int64_t blocks = (max_positions + block_size - 1) / block_size;
  const size_t block_bytes = KvCache::block_total_bytes(config(), block_size, type);
  check_fits((size_t)blocks * block_bytes, "a K/V cache of " + std::to_string(blocks * block_size) + " positions");
  return KvCache(config(), block_size, max_positions, type, std::make_unique<DeviceKvStorage>(blocks, block_bytes));
}

void CudaEngine::forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits) {
  MINDLLM_CHECK(dynamic_cast<const DeviceKvStorage*>(&cache.storage()),
                "CudaEngine::forward: the cache's blocks are not on the device (make it with make_cache)");
  plan_batch(*this, cache, batch, plan_);  // checks everything before changing anything
  const int N = static_cast<int>(plan_.tokens.size());
  logits.resize(plan_.logit_rows.size() * (size_t)config().vocab_size);
  if (N == 0) return;
  for (const BatchRows& s : plan_.seqs) cache.reserve(s.seq, s.past + s.n_rows);
  row_seq_.resize(N);
  for (size_t i = 0; i < plan_.seqs.size(); i++)
    std::fill_n(row_seq_.begin() + plan_.seqs[i].row0, plan_.seqs[i].n_rows, static_cast<int>(i));
  for (int r0 = 0; r0 < N; r0 += max_tokens_) {
    const int r1 = std::min(N, r0 + max_tokens_);
    if (precision_ == Precision::bf16) run_piece<bf16>(cache, r0, r1, logits);
    else run_piece<float>(cache, r0, r1, logits);
  }
  for (size_t i = 0; i < plan_.seqs.size(); i++) cache.append(plan_.seqs[i].seq, batch[i].tokens);
  tokens_computed_ += N;
}

// Rows [r0, r1) of the planned batch through the decoder; the logits of its wanted rows into
// their places in `logits`.
template <typename A>
void CudaEngine::run_piece(const KvCache& cache, int r0, int r1, std::vector<float>& logits) {
  const ModelConfig& cfg = config();
  const ParamLayout& L = model_.layout();
  const int n = r1 - r0, C = cfg.hidden, V = cfg.vocab_size, bs = cache.block_size();
  // Host metadata: tokens | positions | table offsets | the block tables of the piece's sequences.
  meta_.assign(3 * (size_t)n, 0);
  std::copy(plan_.tokens.begin() + r0, plan_.tokens.begin() + r1, meta_.begin());
  int last = -1, table_at = 0;
  for (int r = r0; r < r1; r++) {
    const BatchRows& s = plan_.seqs[row_seq_[r]];
    if (row_seq_[r] != last) {
      last = row_seq_[r];
      table_at = static_cast<int>(meta_.size()) - 3 * n;
      const std::vector<int>& t = cache.block_table(s.seq);
      meta_.insert(meta_.end(), t.begin(), t.end());
    }
    meta_[n + (r - r0)] = s.past + (r - s.row0);
    meta_[2 * n + (r - r0)] = table_at;
  }
  if (meta_dev_.size() < meta_.size())
    meta_dev_ = cuda::DeviceBuffer<int32_t>(std::max(meta_.size(), 2 * meta_dev_.size()));
  int32_t* meta = meta_dev_.data();
  to_device(meta, meta_.data(), meta_.size());

  const A* p;
  if constexpr (std::is_same_v<A, bf16>) p = at<bf16>(params_bf16_);
  else p = at<float>(params_);
  const size_t elem = cache.type() == KvType::bf16 ? 2 : 4;
  // The pool's base: a DeviceKvStorage's blocks are one array (forward checked it is on the device).
  PagedOps<A> ops{{cfg, L, p}, {}, cache.storage().block(0), (size_t)bs * cfg.kv_dim() * elem, meta + n};
  cuda::PagedAttentionShape& s = ops.shape;
  s.n_rows = n, s.positions = meta + n, s.table_of = meta + 2 * n, s.tables = meta + 3 * n;
  s.block_stride = static_cast<int64_t>(cache.block_total_bytes() / elem);
  s.Hq = cfg.n_heads, s.Hkv = cfg.n_kv_heads, s.D = cfg.head_dim;
  s.ldq = cfg.q_dim() + 2 * cfg.kv_dim(), s.ldo = cfg.q_dim(), s.ldc = cfg.kv_dim();
  s.block_size = bs, s.scale = cfg.attn_scale, s.bf16 = cache.type() == KvType::bf16;

  LayerActs<A> a;
  a.x_norm = at<A>(xn_), a.n1_mean = at<float>(n1m_), a.n1_rstd = at<float>(n1r_), a.qkv = at<A>(qkv_);
  a.att = at<A>(att_), a.r1 = at<A>(r_), a.h = at<A>(h_), a.n2 = at<A>(n2_);
  a.n2_mean = at<float>(n2m_), a.n2_rstd = at<float>(n2r_), a.fc = at<A>(fc_), a.act = at<A>(act_), a.r2 = at<A>(r_);
  A* x = at<A>(x_);
  cuda::embedding_forward(x, meta, p + L.wte, opt(p, L.wpe), 1, n, C, 0, meta + n);
  for (int l = 0; l < cfg.n_layers; l++) block_forward(ops, l, n, a, x, x);

  // The wanted rows of this piece: gathered, normed, through the head, downloaded into place.
  const auto& rows = plan_.logit_rows;
  const size_t first = std::lower_bound(rows.begin(), rows.end(), r0) - rows.begin();
  const size_t end = std::lower_bound(rows.begin(), rows.end(), r1) - rows.begin();
  const int R = static_cast<int>(end - first);
  if (R > 0) {
    A* g = at<A>(gath_);
    for (size_t i = first; i < end;) {  // contiguous runs of rows: one copy each
      size_t j = i + 1;
      while (j < end && rows[j] == rows[j - 1] + 1) j++;
      copy(g + (i - first) * C, x + (size_t)(rows[i] - r0) * C, (j - i) * C);
      i = j;
    }
    ops.norm(at<A>(xn_), at<float>(n1m_), at<float>(n1r_), g, L.normf_w, L.normf_b, R);
    ops.linear(at<A>(logits_), at<A>(xn_), L.lm_head, kAbsent, R, C, V, cuda::WeightLayout::out_in);
    float* dst = logits.data() + first * V;
    if constexpr (std::is_same_v<A, float>) {
      to_host(dst, at<float>(logits_), (size_t)R * V);
    } else {
      const std::vector<float> h = download_floats(at<A>(logits_), (size_t)R * V);
      std::copy(h.begin(), h.end(), dst);
    }
  }
  cuda::synchronize();  // meta_ is rewritten by the next piece
}

}  // namespace mindllm
