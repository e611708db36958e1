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

void Model::ensure_acts(int B, int T) {
  if (acts_.B == B && acts_.T == T) return;
  const size_t N = (size_t)B * T, C = cfg_.hidden, H = cfg_.intermediate;
  const size_t QKV = cfg_.q_dim() + 2 * cfg_.kv_dim(), F = cfg_.gated_mlp ? 2 * H : H;
  const size_t S = (size_t)B * cfg_.n_heads * T * kAttentionStats;
  acts_ = Acts{};
  acts_.B = B;
  acts_.T = T;
  acts_.res.assign(cfg_.n_layers + 1, std::vector<float>(N * C));
  acts_.layers.resize(cfg_.n_layers);
  for (auto& a : acts_.layers) {
    if (!cfg_.deepnorm) a.x_norm.resize(N * C), a.n2.resize(N * C);
    a.n1_mean.resize(N), a.n1_rstd.resize(N), a.n2_mean.resize(N), a.n2_rstd.resize(N);
    a.qkv.resize(N * QKV), a.att_stats.resize(S), a.att.resize(N * cfg_.q_dim());
    a.h.resize(N * C), a.fc.resize(N * F), a.act.resize(N * H);
    if (cfg_.deepnorm) a.r1.resize(N * C), a.r2.resize(N * C);
  }
  acts_.lnf.resize(N * C), acts_.lnf_mean.resize(N), acts_.lnf_rstd.resize(N);
  acts_.logits.resize(N * cfg_.vocab_size), acts_.losses.resize(N), acts_.softmax.resize(N);
  acts_.tokens.resize(N), acts_.targets.resize(N);
  for (auto* v : {&acts_.d_res, &acts_.d_h, &acts_.d_tmp, &acts_.d_r, &acts_.d_lnf}) v->resize(N * C);
  acts_.d_qkv.resize(N * QKV), acts_.d_att.resize(N * cfg_.q_dim());
  acts_.d_fc.resize(N * F), acts_.d_act.resize(N * H);
}

void Model::norm_forward(float* out, float* mean, float* rstd, const float* in, size_t w, size_t b, int N) const {
  const float* p = params_.data();
  if (cfg_.norm == NormKind::layernorm)
    layernorm_forward(out, mean, rstd, in, p + w, b == kAbsent ? nullptr : p + b, N, cfg_.hidden, cfg_.norm_eps);
  else
    rmsnorm_forward(out, rstd, in, p + w, N, cfg_.hidden, cfg_.norm_eps);
}

void Model::norm_backward(float* din, const float* dout, const float* in, const float* mean, const float* rstd,
                          size_t w, size_t b, int N) {
  const float* p = params_.data();
  float* g = grads_.data();
  if (cfg_.norm == NormKind::layernorm)
    layernorm_backward(din, g + w, b == kAbsent ? nullptr : g + b, dout, in, p + w, mean, rstd, N, cfg_.hidden);
  else
    rmsnorm_backward(din, g + w, dout, in, p + w, rstd, N, cfg_.hidden);
}

static const float* opt(const float* base, size_t off) { return off == kAbsent ? nullptr : base + off; }
static float* opt(float* base, size_t off) { return off == kAbsent ? nullptr : base + off; }

MatmulPrecision matmul_precision_from_name(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  bad_input("--precision " + name + ": expected fp32 or bf16");
}

void Model::set_matmul_precision(MatmulPrecision prec) {
  std::string why;
  if (prec == MatmulPrecision::bf16 && !bf16_gemm_available(&why))
    bad_input("bf16 matrix multiplies are not available: " + why);
  if (prec == MatmulPrecision::bf16 && precision_ != prec && !bf16_gemm_uses_amx())
    std::fprintf(stderr, "warning: this CPU has no AMX: bf16 matrix multiplies (%s) run slower than fp32 here\n",
                 why.c_str());
  precision_ = prec;
  if (prec == MatmulPrecision::fp32) {
    params_bf16_ = {};
  } else {
    params_bf16_.resize(params_.size());
    round_to_bf16(params_bf16_.data(), params_.data(), params_.size());
  }
}

void Model::linear(float* out, const float* in, size_t w, size_t b, int N, int I, int O, WeightLayout wl) const {
  const float* p = params_.data();
  if (precision_ == MatmulPrecision::bf16)
    linear_forward_bf16(out, in, params_bf16_.data() + w, opt(p, b), N, I, O, wl);
  else
    linear_forward(out, in, p + w, opt(p, b), N, I, O, wl);
}

void Model::linear_bwd(float* din, const float* dout, const float* in, size_t w, size_t b, int N, int I, int O,
                       WeightLayout wl) {
  const float* p = params_.data();
  float* g = grads_.data();
  if (precision_ == MatmulPrecision::bf16)
    linear_backward_bf16(din, g + w, opt(g, b), dout, in, params_bf16_.data() + w, N, I, O, wl);
  else
    linear_backward(din, g + w, opt(g, b), dout, in, p + w, N, I, O, wl);
}

static AttentionShape attention_shape(const ModelConfig& c, int l, int B, int T) {
  int QKV = c.q_dim() + 2 * c.kv_dim();
  return AttentionShape{B, T, c.n_heads, c.n_kv_heads, c.head_dim, QKV, QKV, QKV, c.q_dim(), c.attn_scale, c.window[l]};
}

// Adds y += alpha * x (alpha = 1: plain residual).
static void add_scaled(float* y, const float* x, float alpha, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void Model::layer_forward(int l, int B, int T) {
  const int N = B * T, C = cfg_.hidden, H = cfg_.intermediate, Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const int QKV = Q + 2 * KV, F = cfg_.gated_mlp ? 2 * H : H;
  const LayerOffsets& o = layout_.layers[l];
  LayerActs& a = acts_.layers[l];
  const float* x = acts_.res[l].data();
  float* out = acts_.res[l + 1].data();
  const WeightLayout wl = layout_.linear_layout;
  const float alpha = cfg_.deepnorm_alpha;

  // Attention sub-block.
  const float* attn_in = x;
  if (!cfg_.deepnorm) {
    norm_forward(a.x_norm.data(), a.n1_mean.data(), a.n1_rstd.data(), x, o.norm1_w, o.norm1_b, N);
    attn_in = a.x_norm.data();
  }
  linear(a.qkv.data(), attn_in, o.wqkv, o.bqkv, N, C, QKV, wl);
  if (cfg_.family == Family::llama && cfg_.rot_dim() > 0) {
    rope_forward(a.qkv.data(), B, T, cfg_.n_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
    rope_forward(a.qkv.data() + Q, B, T, cfg_.n_kv_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
  }
  attention_forward(a.att.data(), a.att_stats.data(), a.qkv.data(), a.qkv.data() + Q, a.qkv.data() + Q + KV,
                    attention_shape(cfg_, l, B, T));
  float* r1 = cfg_.deepnorm ? a.r1.data() : a.h.data();
  linear(r1, a.att.data(), o.wo, o.bo, N, Q, C, wl);
  add_scaled(r1, x, cfg_.deepnorm ? alpha : 1.0f, (size_t)N * C);
  if (cfg_.deepnorm) norm_forward(a.h.data(), a.n1_mean.data(), a.n1_rstd.data(), r1, o.norm1_w, o.norm1_b, N);

  // MLP sub-block.
  const float* mlp_in = a.h.data();
  if (!cfg_.deepnorm) {
    norm_forward(a.n2.data(), a.n2_mean.data(), a.n2_rstd.data(), a.h.data(), o.norm2_w, o.norm2_b, N);
    mlp_in = a.n2.data();
  }
  linear(a.fc.data(), mlp_in, o.wfc, o.bfc, N, C, F, wl);
  if (cfg_.gated_mlp)
    glu_forward(a.act.data(), a.fc.data(), a.fc.data() + H, N, H, F, cfg_.act);
  else
    activation_forward(a.act.data(), a.fc.data(), (size_t)N * H, cfg_.act);
  float* r2 = cfg_.deepnorm ? a.r2.data() : out;
  linear(r2, a.act.data(), o.wproj, o.bproj, N, H, C, wl);
  add_scaled(r2, a.h.data(), cfg_.deepnorm ? alpha : 1.0f, (size_t)N * C);
  if (cfg_.deepnorm) norm_forward(out, a.n2_mean.data(), a.n2_rstd.data(), r2, o.norm2_w, o.norm2_b, N);
}

float Model::forward(const int32_t* tokens, const int32_t* targets, int B, int T) {
  if (T > cfg_.max_positions && cfg_.learned_positions)
    bad_input("sequence length " + std::to_string(T) + " exceeds the model's " + std::to_string(cfg_.max_positions) +
              " positions");
  ensure_acts(B, T);
  const int N = B * T, C = cfg_.hidden, V = cfg_.vocab_size;
  for (int i = 0; i < N; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      bad_input("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(V));
  std::memcpy(acts_.tokens.data(), tokens, sizeof(int32_t) * N);
  if (precision_ == MatmulPrecision::bf16) {  // the weights may have changed since the last forward
    params_bf16_.resize(params_.size());
    round_to_bf16(params_bf16_.data(), params_.data(), params_.size());
  }
  const float* p = params_.data();
  embedding_forward(acts_.res[0].data(), tokens, p + layout_.wte, opt(p, layout_.wpe), B, T, C);
  for (int l = 0; l < cfg_.n_layers; l++) layer_forward(l, B, T);
  norm_forward(acts_.lnf.data(), acts_.lnf_mean.data(), acts_.lnf_rstd.data(), acts_.res[cfg_.n_layers].data(),
               layout_.normf_w, layout_.normf_b, N);
  linear(acts_.logits.data(), acts_.lnf.data(), layout_.lm_head, kAbsent, N, C, V, WeightLayout::out_in);
  if (!targets) {
    acts_.n_targets = 0;
    return 0.0f;
  }
  std::memcpy(acts_.targets.data(), targets, sizeof(int32_t) * N);
  cross_entropy_forward(acts_.losses.data(), acts_.logits.data(), targets, N, V, acts_.softmax.data());
  double sum = 0.0;
  int count = 0;
  for (int i = 0; i < N; i++)
    if (targets[i] >= 0) {
      if (targets[i] >= V) bad_input("target id " + std::to_string(targets[i]) + " is outside the vocabulary");
      sum += acts_.losses[i];
      count++;
    }
  acts_.n_targets = count;
  return count ? static_cast<float>(sum / count) : 0.0f;
}

void Model::mlp_backward(LayerActs& a, const LayerOffsets& o, const float* dout, const float* mlp_in, int N) {
  const int C = cfg_.hidden, H = cfg_.intermediate, F = cfg_.gated_mlp ? 2 * H : H;
  const WeightLayout wl = layout_.linear_layout;
  linear_bwd(acts_.d_act.data(), dout, a.act.data(), o.wproj, o.bproj, N, H, C, wl);
  if (cfg_.gated_mlp) {
    glu_backward(acts_.d_fc.data(), acts_.d_fc.data() + H, acts_.d_act.data(), a.fc.data(), a.fc.data() + H, N, H, F,
                 cfg_.act);
  } else {
    std::fill(acts_.d_fc.begin(), acts_.d_fc.end(), 0.0f);
    activation_backward(acts_.d_fc.data(), acts_.d_act.data(), a.fc.data(), (size_t)N * H, cfg_.act);
  }
  // d_tmp = gradient at the MLP input.
  linear_bwd(acts_.d_tmp.data(), acts_.d_fc.data(), mlp_in, o.wfc, o.bfc, N, C, F, wl);
}

void Model::attn_backward(LayerActs& a, const LayerOffsets& o, const float* dout, const float* attn_in, int B, int T) {
  const int N = B * T, C = cfg_.hidden, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), QKV = Q + 2 * KV;
  const WeightLayout wl = layout_.linear_layout;
  int l = static_cast<int>(&a - acts_.layers.data());
  linear_bwd(acts_.d_att.data(), dout, a.att.data(), o.wo, o.bo, N, Q, C, wl);
  float* dq = acts_.d_qkv.data();
  attention_backward(dq, dq + Q, dq + Q + KV, acts_.d_att.data(), a.att_stats.data(), a.qkv.data(),
                     a.qkv.data() + Q, a.qkv.data() + Q + KV, attention_shape(cfg_, l, B, T));
  if (cfg_.family == Family::llama && cfg_.rot_dim() > 0) {
    rope_backward(dq, B, T, cfg_.n_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
    rope_backward(dq + Q, B, T, cfg_.n_kv_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
  }
  linear_bwd(acts_.d_tmp.data(), dq, attn_in, o.wqkv, o.bqkv, N, C, QKV, wl);
}

// On entry acts_.d_res holds dL/d(output of layer l); on exit dL/d(input of layer l).
void Model::layer_backward(int l, int B, int T) {
  const int N = B * T;
  const size_t NC = (size_t)N * cfg_.hidden;
  const LayerOffsets& o = layout_.layers[l];
  LayerActs& a = acts_.layers[l];
  const float* x = acts_.res[l].data();
  float* d_res = acts_.d_res.data();
  float* d_h = acts_.d_h.data();
  float* d_r = acts_.d_r.data();
  if (!cfg_.deepnorm) {
    // out = h + mlp(norm2(h));  h = x + attn(norm1(x)). d_res becomes dL/dh (the residual's
    // gradient plus the MLP branch's), then dL/dx: the branches only read it.
    mlp_backward(a, o, d_res, a.n2.data(), N);
    norm_backward(d_res, acts_.d_tmp.data(), a.h.data(), a.n2_mean.data(), a.n2_rstd.data(), o.norm2_w, o.norm2_b, N);
    attn_backward(a, o, d_res, a.x_norm.data(), B, T);
    norm_backward(d_res, acts_.d_tmp.data(), x, a.n1_mean.data(), a.n1_rstd.data(), o.norm1_w, o.norm1_b, N);
  } else {
    // out = norm2(r2), r2 = alpha h + mlp(h);  h = norm1(r1), r1 = alpha x + attn(x)
    const float alpha = cfg_.deepnorm_alpha;
    std::fill(d_r, d_r + NC, 0.0f);
    norm_backward(d_r, d_res, a.r2.data(), a.n2_mean.data(), a.n2_rstd.data(), o.norm2_w, o.norm2_b, N);
    mlp_backward(a, o, d_r, a.h.data(), N);
    std::memcpy(d_h, acts_.d_tmp.data(), NC * sizeof(float));
    add_scaled(d_h, d_r, alpha, NC);
    std::fill(d_r, d_r + NC, 0.0f);
    norm_backward(d_r, d_h, a.r1.data(), a.n1_mean.data(), a.n1_rstd.data(), o.norm1_w, o.norm1_b, N);
    attn_backward(a, o, d_r, x, B, T);
    std::memcpy(d_res, acts_.d_tmp.data(), NC * sizeof(float));
    add_scaled(d_res, d_r, alpha, NC);
  }
}

void Model::backward(float loss_scale) {
  const int B = acts_.B, T = acts_.T, N = B * T, C = cfg_.hidden, V = cfg_.vocab_size;
  if (acts_.n_targets == 0) return;  // nothing counted: zero gradient
  float* g = grads_.data();
  // dlogits (in place over the logits), then back through the head and the final norm.
  cross_entropy_backward(acts_.logits.data(), acts_.logits.data(), acts_.targets.data(),
                         loss_scale / static_cast<float>(acts_.n_targets), N, V, acts_.softmax.data());
  linear_bwd(acts_.d_lnf.data(), acts_.logits.data(), acts_.lnf.data(), layout_.lm_head, kAbsent, N, C, V,
             WeightLayout::out_in);
  std::fill(acts_.d_res.begin(), acts_.d_res.end(), 0.0f);
  norm_backward(acts_.d_res.data(), acts_.d_lnf.data(), acts_.res[cfg_.n_layers].data(), acts_.lnf_mean.data(),
                acts_.lnf_rstd.data(), layout_.normf_w, layout_.normf_b, N);
  for (int l = cfg_.n_layers - 1; l >= 0; l--) layer_backward(l, B, T);
  embedding_backward(g + layout_.wte, opt(g, layout_.wpe), acts_.d_res.data(), acts_.tokens.data(), B, T, C);
  acts_.n_targets = 0;  // logits were overwritten: a second backward needs a new forward
}

}  // namespace mindllm
