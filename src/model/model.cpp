#include "model/model.h"

#include <omp.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/vec_math.h"
#include "model/cpu_ops.h"
#include "model/segments.h"
#include "model/weights_io.h"

namespace mindllm {

using namespace cpu;

Model::Model(const ModelConfig& cfg) : cfg_(cfg), layout_(build_layout(cfg)) {
  params_.assign(layout_.total, 0.0f);
  grads_.assign(layout_.total, 0.0f);
}

void Model::init_weights(uint64_t seed) {
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < layout_.specs.size(); i++) {
    const ParamSpec& s = layout_.specs[i];
    float* p = params_.data() + s.offset;
    switch (s.init) {
      case InitKind::zeros: std::fill(p, p + s.numel, 0.0f); break;
      case InitKind::ones: std::fill(p, p + s.numel, 1.0f); break;
      case InitKind::normal: {
        Rng rng(mix64(seed, fnv1a64(s.name)));
        for (size_t k = 0; k < s.numel; k++) p[k] = rng.normal() * s.init_std;
        break;
      }
    }
  }
}

static std::vector<std::string> alternative_names(const std::string& name) {
  std::vector<std::string> v{name};
  // GPT-2 checkpoints from the original release have no "transformer." prefix.
  if (name.rfind("transformer.", 0) == 0) v.push_back(name.substr(12));
  return v;
}

void Model::load_weights(const std::string& dir) {
  // Any Hugging Face weight layout: model.safetensors, sharded safetensors, pytorch_model.bin
  // (see model/weights_io.h). Every tensor of the layout must be present with its shape; a tensor
  // the config does not explain is refused (a config that disagrees with its weights would
  // otherwise load silently wrong), except known non-weight buffers and a tied head's copy.
  WeightSource w = WeightSource::open_dir(dir);
  std::set<std::string> used;
  for (auto& s : layout_.specs) {
    std::string found;
    for (auto& n : alternative_names(s.name))
      if (w.has(n)) found = n;
    if (found.empty()) {
      std::string why = s.name == "lm_head.weight" ? " (config.json has tie_word_embeddings=false)" : "";
      bad_input(w.description() + ": missing tensor '" + s.name + "'" + why);
    }
    w.read_f32(found, params_.data() + s.offset, &s.shape);
    used.insert(found);
  }
  for (auto& n : w.names()) {
    if (used.count(n) || is_ignored_buffer(n)) continue;
    if (cfg_.tied_embeddings && n == "lm_head.weight") continue;  // transformers ignores it too
    bad_input(w.file_of(n) + ": tensor '" + n + "' is not part of a " + cfg_.model_type() +
              " model with this config.json (" + describe(cfg_) + ")");
  }
}

void Model::save(const std::string& dir) const {
  std::vector<TensorToWrite> ts;
  for (auto& s : layout_.specs) ts.push_back({s.name, DType::f32, s.shape, params_.data() + s.offset});
  write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), ts, {{"format", "pt"}});
  write_file_atomic((std::filesystem::path(dir) / "config.json").string(), config_to_json(cfg_).dump(2) + "\n");
  nlohmann::json g = {{"_from_model_config", true}};
  if (cfg_.bos_token_id >= 0) g["bos_token_id"] = cfg_.bos_token_id;
  if (cfg_.eos_token_id >= 0) g["eos_token_id"] = cfg_.eos_token_id;
  write_file_atomic((std::filesystem::path(dir) / "generation_config.json").string(), g.dump(2) + "\n");
}

void Model::zero_grads() {
  float* g = grads_.data();
  parallel_ranges(grads_.size(), size_t{1} << 20,
                  [&](size_t b, size_t e) { std::memset(g + b, 0, (e - b) * sizeof(float)); });
}

// The decoder's Ops for training on the CPU: causal attention over B sequences of T tokens at
// positions 0..T-1, or over packed rows (positions and segment starts), statistics saved for the backward.
struct Model::TrainOps : CpuOps {
  int B, T;
  const int32_t *positions, *seg_start;  // null unless packed
  AttentionShape shape(int l) const {
    const int QKV = cfg.q_dim() + 2 * cfg.kv_dim();
    return AttentionShape{B,   T,   cfg.n_heads, cfg.n_kv_heads, cfg.head_dim,  QKV,
                          QKV, QKV, cfg.q_dim(), cfg.attn_scale, cfg.window[l], seg_start};
  }
  void attend(int l, float* att, float* qkv, float* stats, int) const {
    const int Q = cfg.q_dim(), KV = cfg.kv_dim();
    rope(qkv, B, T, 0, false, positions);
    attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, shape(l));
  }
  void attend_backward(int l, float* dqkv, const float* d_att, const float* qkv, const float*, const float* stats,
                       int) const {
    const int Q = cfg.q_dim(), KV = cfg.kv_dim();
    attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, d_att, stats, qkv, qkv + Q, qkv + Q + KV, shape(l));
    rope(dqkv, B, T, 0, /*backward=*/true, positions);
  }
};

Model::TrainOps Model::ops() {
  auto opt_data = [](const std::vector<int32_t>& v) { return v.empty() ? nullptr : v.data(); };
  TrainOps o{{cfg_, layout_, params_.data(), params_bf16(), grads_.data()},
             acts_.B,
             acts_.T,
             opt_data(acts_.positions),
             opt_data(acts_.seg_start)};
  o.lora = lora_;
  return o;
}

void Model::ensure_acts(int B, int T) {
  if ((size_t)B * T <= acts_.capacity) {  // every buffer is [B*T, ...]: any shape of at most capacity rows fits
    acts_.B = B;
    acts_.T = T;
    return;
  }
  const size_t N = (size_t)B * T, C = cfg_.hidden, H = cfg_.intermediate, V = cfg_.vocab_size;
  const size_t Q = cfg_.q_dim(), QKV = Q + 2 * cfg_.kv_dim(), F = cfg_.gated_mlp ? 2 * H : H;
  const size_t S = (size_t)B * cfg_.n_heads * T * kAttentionStats;
  acts_ = Acts{};
  acts_.B = B;
  acts_.T = T;
  acts_.capacity = N;
  auto buf = [&](size_t n) {
    acts_.store.emplace_back(n);
    return acts_.store.back().data();
  };
  acts_.res.assign(cfg_.n_layers + 1, std::vector<float>(N * C));
  acts_.layers.resize(cfg_.n_layers);
  const bool deep = cfg_.deepnorm;
  for (auto& a : acts_.layers) {
    if (!deep) a.x_norm = buf(N * C), a.n2 = buf(N * C);
    a.n1_mean = buf(N), a.n1_rstd = buf(N), a.n2_mean = buf(N), a.n2_rstd = buf(N);
    a.qkv = buf(N * QKV), a.att_stats = buf(S), a.att = buf(N * Q);
    a.h = buf(N * C), a.fc = buf(N * F), a.act = buf(N * H);
    if (deep) a.r1 = buf(N * C), a.r2 = buf(N * C);
  }
  acts_.lnf = buf(N * C), acts_.lnf_mean = buf(N), acts_.lnf_rstd = buf(N);
  acts_.logits = buf(N * V), acts_.losses = buf(N);
  acts_.softmax.resize(N);
  acts_.tokens.resize(N), acts_.targets.resize(N);
  acts_.d_res = buf(N * C), acts_.d_lnf = buf(N * C);
  BlockGrads<float>& g = acts_.grads;
  g.d_tmp = buf(N * C), g.d_h = buf(N * C), g.d_r = buf(N * C);
  g.d_qkv = buf(N * QKV), g.d_att = buf(N * Q), g.d_fc = buf(N * F), g.d_act = buf(N * H);
}

void Model::set_matmul_precision(Precision prec) {
  std::string why;
  if (prec == Precision::bf16 && !bf16_gemm_available(&why))
    bad_input("bf16 matrix multiplies are not available: " + why);
  if (prec == Precision::bf16 && precision_ != prec && !bf16_gemm_uses_amx())
    log_warn("this CPU has no AMX: bf16 matrix multiplies (%s) run slower than fp32 here", why.c_str());
  precision_ = prec;
  if (prec == Precision::fp32) {
    params_bf16_ = {};
  } else {
    params_bf16_.resize(params_.size());
    round_to_bf16(params_bf16_.data(), params_.data(), params_.size());
  }
}

float Model::forward(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* positions) {
  if (T > cfg_.max_positions && cfg_.learned_positions)
    bad_input("sequence length " + std::to_string(T) + " exceeds the model's " + std::to_string(cfg_.max_positions) +
              " positions");
  const int N = B * T, C = cfg_.hidden, V = cfg_.vocab_size;
  for (int i = 0; i < N; i++) {
    if (tokens[i] < 0 || tokens[i] >= V)
      bad_input("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(V));
    if (targets && targets[i] >= V)
      bad_input("target id " + std::to_string(targets[i]) + " is outside the vocabulary of " + std::to_string(V));
  }
  ensure_acts(B, T);
  std::memcpy(acts_.tokens.data(), tokens, sizeof(int32_t) * N);
  acts_.seg_start = positions ? segment_starts(positions, B, T) : std::vector<int32_t>{};
  acts_.positions = positions ? std::vector<int32_t>(positions, positions + N) : std::vector<int32_t>{};
  if (precision_ == Precision::bf16) {  // the weights may have changed since the last forward
    params_bf16_.resize(params_.size());
    round_to_bf16(params_bf16_.data(), params_.data(), params_.size());
  }
  TrainOps o = ops();
  const float* p = params_.data();
  embedding_forward(acts_.res[0].data(), tokens, p + layout_.wte, CpuOps::opt(p, layout_.wpe), B, T, C, 0, o.positions);
  if (targets && noise_.on()) {
    noise_buf_.resize((size_t)N * C);
    embedding_noise(noise_buf_.data(), N, T, C, noise_);
    o.add_scaled(acts_.res[0].data(), noise_buf_.data(), 1.0f, (size_t)N * C);
  }
  for (int l = 0; l < cfg_.n_layers; l++)
    block_forward(o, l, N, acts_.layers[l], acts_.res[l].data(), acts_.res[l + 1].data());
  o.norm(acts_.lnf, acts_.lnf_mean, acts_.lnf_rstd, acts_.res[cfg_.n_layers].data(), layout_.normf_w, layout_.normf_b,
         N);
  o.linear(acts_.logits, acts_.lnf, layout_.lm_head, kAbsent, N, C, V, WeightLayout::out_in);
  if (!targets) {
    acts_.n_targets = 0;
    return 0.0f;
  }
  std::memcpy(acts_.targets.data(), targets, sizeof(int32_t) * N);
  cross_entropy_forward(acts_.losses, acts_.logits, targets, N, V, acts_.softmax.data());
  double sum = 0.0;
  int count = 0;
  for (int i = 0; i < N; i++)
    if (targets[i] >= 0) {
      sum += acts_.losses[i];
      count++;
    }
  acts_.n_targets = count;
  return count ? static_cast<float>(sum / count) : 0.0f;
}

int backward_stage(const ParamLayout& layout, int n_layers, size_t offset) {
  if (offset == layout.normf_w || offset == layout.normf_b ||
      (offset == layout.lm_head && layout.lm_head != layout.wte))
    return 0;
  for (int l = 0; l < n_layers; l++) {
    const LayerOffsets& o = layout.layers[l];
    for (size_t at :
         {o.norm1_w, o.norm1_b, o.wqkv, o.bqkv, o.wo, o.bo, o.norm2_w, o.norm2_b, o.wfc, o.bfc, o.wproj, o.bproj})
      if (at == offset) return n_layers - l;
  }
  return n_layers + 1;  // embeddings (and a tied head), or anything else: the end
}

void Model::backward(float loss_scale) {
  const int B = acts_.B, T = acts_.T, N = B * T, C = cfg_.hidden, V = cfg_.vocab_size;
  if (acts_.n_targets == 0) return;  // nothing counted: zero gradient
  TrainOps o = ops();
  float* g = grads_.data();
  // dlogits (in place over the logits), then back through the head and the final norm.
  cross_entropy_backward(acts_.logits, acts_.logits, acts_.targets.data(),
                         loss_scale / static_cast<float>(acts_.n_targets), N, V, acts_.softmax.data());
  o.linear_backward(acts_.d_lnf, acts_.logits, acts_.lnf, layout_.lm_head, kAbsent, N, C, V, WeightLayout::out_in);
  o.zero(acts_.d_res, (size_t)N * C);
  o.norm_backward(acts_.d_res, acts_.d_lnf, acts_.res[cfg_.n_layers].data(), acts_.lnf_mean, acts_.lnf_rstd,
                  layout_.normf_w, layout_.normf_b, N);
  if (backward_hook_) backward_hook_(0);
  for (int l = cfg_.n_layers - 1; l >= 0; l--) {
    block_backward(o, l, N, acts_.layers[l], acts_.res[l].data(), acts_.d_res, acts_.grads);
    if (backward_hook_) backward_hook_(cfg_.n_layers - l);
  }
  if (!lora_)  // a frozen base (LoRA) needs no embedding gradient
    embedding_backward(g + layout_.wte, CpuOps::opt(g, layout_.wpe), acts_.d_res, acts_.tokens.data(), B, T, C, 0,
                       o.positions);
  if (backward_hook_) backward_hook_(cfg_.n_layers + 1);
  acts_.n_targets = 0;  // logits were overwritten: a second backward needs a new forward
}

}  // namespace mindllm
