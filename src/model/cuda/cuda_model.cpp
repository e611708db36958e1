#include "model/cuda/cuda_model.h"

#include <cmath>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope.h"

namespace mindllm {

using cuda::AttentionShape;
using cuda::bf16;
using cuda::WeightLayout;

namespace {

template <typename T>
T* opt(T* base, size_t off) {
  return off == kAbsent ? nullptr : base + off;
}

AttentionShape attention_shape(const ModelConfig& c, int l, int B, int T) {
  const int QKV = c.q_dim() + 2 * c.kv_dim();
  return AttentionShape{B, T, c.n_heads, c.n_kv_heads, c.head_dim, QKV, QKV, QKV, c.q_dim(), c.attn_scale, c.window[l]};
}

template <typename T>
void zero(T* p, size_t n) {
  MINDLLM_CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(T), cuda::stream()));
}
template <typename T>
void copy(T* dst, const T* src, size_t n) {
  MINDLLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, cuda::stream()));
}
template <typename T>
void to_device(T* dst, const T* src, size_t n) {
  MINDLLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, cuda::stream()));
}
template <typename T>
void to_host(T* dst, const T* src, size_t n) {
  MINDLLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
}

}  // namespace

template <>
const float* CudaModel::weights<float>() const {
  return at<float>(params_);
}
template <>
const bf16* CudaModel::weights<bf16>() const {
  return at<bf16>(params_bf16_);
}

AttentionImpl attention_impl_from_name(const std::string& name) {
  if (name == "flash") return AttentionImpl::flash;
  if (name == "cudnn") return AttentionImpl::cudnn;
  bad_input("--attention " + name + ": expected flash or cudnn");
}

CudaModel::CudaModel(const ModelConfig& cfg, int max_batch, int seq, Precision precision, size_t n_spans,
                     bool recompute_mlp, AttentionImpl attention)
    : cfg_(cfg), layout_(build_layout(cfg)), precision_(precision), recompute_mlp_(recompute_mlp), n_spans_(n_spans) {
  MINDLLM_CHECK(max_batch > 0 && seq > 0, "CudaModel: empty micro-batch");
  if (cfg_.learned_positions && seq > cfg_.max_positions)
    bad_input("sequence length " + std::to_string(seq) + " exceeds the model's " + std::to_string(cfg_.max_positions) +
              " positions");
  if (attention == AttentionImpl::cudnn && precision_ != Precision::bf16)
    bad_input("--attention cudnn needs --precision bf16 (fp32 uses the exact kernels)");
  // cuDNN saves the same logsumexp per row as the flash kernels: the same buffers.
  cudnn_ = attention == AttentionImpl::cudnn;
  flash_ = precision_ == Precision::bf16;
  for (int l = 0; l < cfg_.n_layers && !cudnn_; l++)
    flash_ = flash_ && cuda::flash_attention_supported(attention_shape(cfg_, l, max_batch, seq));
  MINDLLM_CHECK(flash_ || cfg_.head_dim <= 256, "CudaModel: the attention kernel supports head_dim <= 256");
  plan(max_batch, seq);
}

size_t CudaModel::planned_bytes(const ModelConfig& cfg, int max_batch, int seq, Precision precision, size_t n_spans,
                                bool recompute_mlp, AttentionImpl attention) {
  return CudaModel(cfg, max_batch, seq, precision, n_spans, recompute_mlp, attention).arena_.bytes();
}

CudaModel::CudaModel(const ModelConfig& cfg, int max_batch, int seq, Precision precision,
                     const std::vector<cpu::AdamWSpan>& spans, bool recompute_mlp, AttentionImpl attention)
    : CudaModel(cfg, max_batch, seq, precision, spans.size(), recompute_mlp, attention) {
  if (!cuda::available()) bad_input("a CUDA model needs a GPU: " + cuda::device_description());
  std::string why;
  if (cudnn_ && !cuda::cudnn_attention_available(&why)) bad_input("--attention cudnn: " + why);
  for (int l = 0; l < cfg_.n_layers && cudnn_; l++)
    if (!cuda::cudnn_attention_supported(attention_shape(cfg_, l, max_batch, seq), &why))
      bad_input("--attention cudnn: cuDNN has no engine for layer " + std::to_string(l) + "'s attention: " + why);
  if (const size_t need = arena_.bytes(), have = cuda::free_memory(); need > have) {
    auto gib = [](size_t b) { return std::to_string(b / (1 << 20) / 1024.0).substr(0, 5); };
    bad_input("micro-batches of " + std::to_string(max_batch) + " x " + std::to_string(seq) + " need " + gib(need) +
              " GiB of GPU memory; " + cuda::device_description() + " has " + gib(have) +
              " GiB free: use a smaller --batch (and --grad-accum for the same tokens per step)" +
              (recompute_mlp ? "" : " or --recompute"));
  }
  arena_.allocate();
  to_device(at<cpu::AdamWSpan>(spans_), spans.data(), spans.size());
  zero(at<float>(params_), layout_.total);
  zero(at<float>(m_), layout_.total);
  zero(at<float>(v_), layout_.total);
  zero_grads();
  cuda::synchronize();
}

// Every buffer of a step, as Model::ensure_acts allocates them (activations in the compute
// precision, statistics and probabilities in fp32), planned for one allocation.
void CudaModel::plan(int max_batch, int seq) {
  max_batch_ = max_batch, seq_ = seq;
  const size_t N = (size_t)max_batch * seq, C = cfg_.hidden, H = cfg_.intermediate, V = cfg_.vocab_size;
  const size_t Q = cfg_.q_dim(), QKV = Q + 2 * cfg_.kv_dim(), F = cfg_.gated_mlp ? 2 * H : H;
  // Per layer: the probabilities, or flash attention's logsumexp per row.
  const size_t P = (size_t)max_batch * cfg_.n_heads * seq * (flash_ ? 1 : seq);
  const size_t total = layout_.total;
  const size_t e = precision_ == Precision::bf16 ? sizeof(bf16) : sizeof(float);
  auto act = [&](size_t n) { return arena_.reserve(n * e); };
  auto f32 = [&](size_t n) { return arena_.reserve(n * sizeof(float)); };

  params_ = f32(total), grads_ = f32(total), m_ = f32(total), v_ = f32(total);
  if (precision_ == Precision::bf16) params_bf16_ = arena_.reserve_n<bf16>(total);
  spans_ = arena_.reserve_n<cpu::AdamWSpan>(n_spans_);
  tokens_ = arena_.reserve_n<int32_t>(N), targets_ = arena_.reserve_n<int32_t>(N);
  scalars_ = arena_.reserve_n<Scalars>(1);
  res_.clear();
  for (int l = 0; l <= cfg_.n_layers; l++) res_.push_back(act(N * C));
  layers_.assign(cfg_.n_layers, LayerBufs{});
  const size_t shared_fc = recompute_mlp_ ? act(N * F) : kAbsent, shared_act = recompute_mlp_ ? act(N * H) : kAbsent;
  for (auto& a : layers_) {
    a.qkv = act(N * QKV), a.att = act(N * Q), a.h = act(N * C);
    a.fc = recompute_mlp_ ? shared_fc : act(N * F), a.act = recompute_mlp_ ? shared_act : act(N * H);
    a.n1_mean = f32(N), a.n1_rstd = f32(N), a.n2_mean = f32(N), a.n2_rstd = f32(N), a.probs = f32(P);
    a.x_norm = a.n2 = a.r1 = a.r2 = kAbsent;
    if (cfg_.deepnorm) a.r1 = act(N * C), a.r2 = act(N * C);
    else a.x_norm = act(N * C), a.n2 = act(N * C);
  }
  lnf_ = act(N * C), lnf_mean_ = f32(N), lnf_rstd_ = f32(N), logits_ = act(N * V), losses_ = f32(N);
  for (size_t* d : {&d_res_, &d_h_, &d_tmp_, &d_r_, &d_lnf_}) *d = act(N * C);
  d_qkv_ = act(N * QKV), d_att_ = act(N * Q), d_fc_ = act(N * F), d_act_ = act(N * H), d_scores_ = f32(P);
}

void CudaModel::upload_params(const std::vector<float>& params) {
  MINDLLM_CHECK(params.size() == layout_.total, "CudaModel::upload_params: size mismatch");
  to_device(at<float>(params_), params.data(), params.size());
  if (precision_ == Precision::bf16) cuda::convert(at<bf16>(params_bf16_), at<float>(params_), params.size());
  cuda::synchronize();
}

void CudaModel::download_params(std::vector<float>& params) const {
  params.resize(layout_.total);
  to_host(params.data(), at<float>(params_), layout_.total);
}

void CudaModel::download_grads(std::vector<float>& grads) const {
  grads.resize(layout_.total);
  to_host(grads.data(), at<float>(grads_), layout_.total);
}

void CudaModel::upload_optimizer(const std::vector<float>& m, const std::vector<float>& v, int steps) {
  MINDLLM_CHECK(m.size() == layout_.total && v.size() == layout_.total, "CudaModel::upload_optimizer: size mismatch");
  to_device(at<float>(m_), m.data(), m.size());
  to_device(at<float>(v_), v.data(), v.size());
  adam_steps_ = steps;
  cuda::synchronize();
}

void CudaModel::download_optimizer(std::vector<float>& m, std::vector<float>& v) const {
  m.resize(layout_.total), v.resize(layout_.total);
  to_host(m.data(), at<float>(m_), layout_.total);
  to_host(v.data(), at<float>(v_), layout_.total);
}

void CudaModel::zero_grads() {
  zero(at<float>(grads_), layout_.total);
  zero(&scalars()->loss_sum, 1);
}

// Host-side checks of Model::forward (bad input, never a kernel reading out of range), and the
// count of targets that backward divides by (known on the host: no wait).
void CudaModel::check_batch(const int32_t* tokens, const int32_t* targets, int B, int T) {
  MINDLLM_CHECK(B >= 1 && B <= max_batch_ && T >= 1 && T <= seq_,
                "CudaModel: batch " + std::to_string(B) + "x" + std::to_string(T) + " exceeds the planned " +
                    std::to_string(max_batch_) + "x" + std::to_string(seq_));
  const int N = B * T, V = cfg_.vocab_size;
  for (int i = 0; i < N; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      bad_input("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(V));
  n_targets_ = 0;
  if (targets)
    for (int i = 0; i < N; i++) {
      if (targets[i] >= V) bad_input("target id " + std::to_string(targets[i]) + " is outside the vocabulary");
      n_targets_ += targets[i] >= 0;
    }
  B_ = B, T_ = T;
}

void CudaModel::forward(const int32_t* tokens, const int32_t* targets, int B, int T) {
  check_batch(tokens, targets, B, T);
  to_device(at<int32_t>(tokens_), tokens, (size_t)B * T);
  if (targets) to_device(at<int32_t>(targets_), targets, (size_t)B * T);
  if (precision_ == Precision::bf16)
    forward_t<bf16>(targets != nullptr);
  else
    forward_t<float>(targets != nullptr);
}

void CudaModel::backward(float loss_scale) {
  if (n_targets_ == 0) return;  // nothing counted: zero gradient (as the CPU model)
  if (precision_ == Precision::bf16)
    backward_t<bf16>(loss_scale);
  else
    backward_t<float>(loss_scale);
  n_targets_ = 0;  // the logits were overwritten: a second backward needs a new forward
}

double CudaModel::loss_sum() const {
  double s = 0.0;
  to_host(&s, &scalars()->loss_sum, 1);
  return s;
}

float CudaModel::loss(const int32_t* tokens, const int32_t* targets, int B, int T) {
  zero(&scalars()->loss_sum, 1);
  forward(tokens, targets, B, T);
  n_targets_ = 0;  // a validation forward leaves nothing for backward
  return static_cast<float>(loss_sum());
}

CudaStepResult CudaModel::step(const cpu::AdamWParams& hp, float clip, int grad_accum) {
  Scalars* s = scalars();
  float* grads = at<float>(grads_);
  cuda::sum_of_squares(&s->sum_sq, grads, layout_.total);
  cuda::clip_scale(&s->clip_scale, &s->sum_sq, &s->loss_sum, clip);
  cpu::AdamWParams p = hp;
  p.step = adam_steps_ + 1;
  cuda::adamw_update_spans(at<float>(params_), grads, at<float>(m_), at<float>(v_), at<cpu::AdamWSpan>(spans_),
                           n_spans_, p, &s->clip_scale, at<bf16>(params_bf16_));
  Scalars host;
  to_host(&host, s, 1);
  CudaStepResult r;
  r.loss = static_cast<float>(host.loss_sum / grad_accum);
  r.grad_norm = std::sqrt(host.sum_sq);
  r.skipped = !std::isfinite(host.clip_scale);  // the kernel skipped the update
  if (!r.skipped) adam_steps_++;
  return r;
}

std::vector<float> CudaModel::download_logits() const {
  const size_t n = (size_t)B_ * T_ * cfg_.vocab_size;
  std::vector<float> out(n);
  if (precision_ == Precision::fp32) {
    to_host(out.data(), at<float>(logits_), n);
    return out;
  }
  std::vector<bf16> raw(n);
  to_host(raw.data(), at<bf16>(logits_), n);
  for (size_t i = 0; i < n; i++) out[i] = __bfloat162float(raw[i]);
  return out;
}

template <typename A>
void CudaModel::norm_forward(A* out, float* mean, float* rstd, const A* in, size_t w, size_t b) const {
  const A* p = weights<A>();
  const int N = B_ * T_;
  if (cfg_.norm == NormKind::layernorm)
    cuda::layernorm_forward(out, mean, rstd, in, p + w, opt(p, b), N, cfg_.hidden, cfg_.norm_eps);
  else
    cuda::rmsnorm_forward(out, rstd, in, p + w, N, cfg_.hidden, cfg_.norm_eps);
}

template <typename A>
void CudaModel::norm_backward(A* din, const A* dout, const A* in, const float* mean, const float* rstd, size_t w,
                              size_t b) {
  const A* p = weights<A>();
  float* g = at<float>(grads_);
  const int N = B_ * T_;
  if (cfg_.norm == NormKind::layernorm)
    cuda::layernorm_backward(din, g + w, opt(g, b), dout, in, p + w, mean, rstd, N, cfg_.hidden);
  else
    cuda::rmsnorm_backward(din, g + w, dout, in, p + w, rstd, N, cfg_.hidden);
}

template <typename A>
void CudaModel::layer_forward(int l) {
  const int B = B_, T = T_, N = B * T, C = cfg_.hidden, H = cfg_.intermediate, Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const int QKV = Q + 2 * KV;
  const A* p = weights<A>();
  const LayerOffsets& o = layout_.layers[l];
  const LayerBufs& a = layers_[l];
  const A* x = at<A>(res_[l]);
  A* out = at<A>(res_[l + 1]);
  A *qkv = at<A>(a.qkv), *att = at<A>(a.att), *h = at<A>(a.h), *act = at<A>(a.act);
  const WeightLayout wl = layout_.linear_layout;
  const float alpha = cfg_.deepnorm_alpha;

  // Attention sub-block.
  const A* attn_in = x;
  if (!cfg_.deepnorm) {
    norm_forward(at<A>(a.x_norm), at<float>(a.n1_mean), at<float>(a.n1_rstd), x, o.norm1_w, o.norm1_b);
    attn_in = at<A>(a.x_norm);
  }
  cuda::linear_forward(qkv, attn_in, p + o.wqkv, opt(p, o.bqkv), N, C, QKV, wl);
  if (cfg_.family == Family::llama && cfg_.rot_dim() > 0) {
    cuda::rope_forward(qkv, B, T, cfg_.n_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
    cuda::rope_forward(qkv + Q, B, T, cfg_.n_kv_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
  }
  attend(l, att, qkv);
  A* r1 = cfg_.deepnorm ? at<A>(a.r1) : h;
  cuda::linear_forward(r1, att, p + o.wo, opt(p, o.bo), N, Q, C, wl);
  cuda::add_scaled(r1, x, cfg_.deepnorm ? alpha : 1.0f, (size_t)N * C);
  if (cfg_.deepnorm) norm_forward(h, at<float>(a.n1_mean), at<float>(a.n1_rstd), r1, o.norm1_w, o.norm1_b);

  // MLP sub-block.
  const A* mlp_in = h;
  if (!cfg_.deepnorm) {
    norm_forward(at<A>(a.n2), at<float>(a.n2_mean), at<float>(a.n2_rstd), h, o.norm2_w, o.norm2_b);
    mlp_in = at<A>(a.n2);
  }
  mlp_up(a, o, mlp_in);
  A* r2 = cfg_.deepnorm ? at<A>(a.r2) : out;
  cuda::linear_forward(r2, act, p + o.wproj, opt(p, o.bproj), N, H, C, wl);
  cuda::add_scaled(r2, h, cfg_.deepnorm ? alpha : 1.0f, (size_t)N * C);
  if (cfg_.deepnorm) norm_forward(out, at<float>(a.n2_mean), at<float>(a.n2_rstd), r2, o.norm2_w, o.norm2_b);
}

template <typename A>
void CudaModel::forward_t(bool with_targets) {
  const int N = B_ * T_, C = cfg_.hidden, V = cfg_.vocab_size;
  const A* p = weights<A>();
  const int32_t* targets = at<int32_t>(targets_);
  cuda::embedding_forward(at<A>(res_[0]), at<int32_t>(tokens_), p + layout_.wte, opt(p, layout_.wpe), B_, T_, C);
  for (int l = 0; l < cfg_.n_layers; l++) layer_forward<A>(l);
  norm_forward(at<A>(lnf_), at<float>(lnf_mean_), at<float>(lnf_rstd_), at<A>(res_[cfg_.n_layers]), layout_.normf_w,
               layout_.normf_b);
  cuda::linear_forward(at<A>(logits_), at<A>(lnf_), p + layout_.lm_head, static_cast<const A*>(nullptr), N, C, V,
                       WeightLayout::out_in);
  if (!with_targets) return;
  cuda::cross_entropy_forward(at<float>(losses_), at<A>(logits_), targets, N, V);
  cuda::cross_entropy_mean(&scalars()->loss_sum, at<float>(losses_), targets, N);
}

template <typename A>
void CudaModel::mlp_backward(const LayerBufs& a, const LayerOffsets& o, const A* dout, const A* mlp_in) {
  const int N = B_ * T_, C = cfg_.hidden, H = cfg_.intermediate, F = cfg_.gated_mlp ? 2 * H : H;
  const A* p = weights<A>();
  float* g = at<float>(grads_);
  const WeightLayout wl = layout_.linear_layout;
  A *d_act = at<A>(d_act_), *d_fc = at<A>(d_fc_), *d_tmp = at<A>(d_tmp_), *fc = at<A>(a.fc);
  if (recompute_mlp_) mlp_up(a, o, mlp_in);  // the shared buffers hold another layer's
  cuda::linear_backward(d_act, g + o.wproj, opt(g, o.bproj), dout, at<A>(a.act), p + o.wproj, N, H, C, wl);
  if (cfg_.gated_mlp) {
    cuda::glu_backward(d_fc, d_fc + H, d_act, fc, fc + H, N, H, F, cfg_.act);
  } else {
    zero(d_fc, (size_t)N * F);
    cuda::activation_backward(d_fc, d_act, fc, (size_t)N * H, cfg_.act);
  }
  // d_tmp = gradient at the MLP input.
  cuda::linear_backward(d_tmp, g + o.wfc, opt(g, o.bfc), d_fc, mlp_in, p + o.wfc, N, C, F, wl);
}

template <typename A>
void CudaModel::mlp_up(const LayerBufs& a, const LayerOffsets& o, const A* mlp_in) {
  const int N = B_ * T_, C = cfg_.hidden, H = cfg_.intermediate, F = cfg_.gated_mlp ? 2 * H : H;
  const A* p = weights<A>();
  A *fc = at<A>(a.fc), *act = at<A>(a.act);
  cuda::linear_forward(fc, mlp_in, p + o.wfc, opt(p, o.bfc), N, C, F, layout_.linear_layout);
  if (cfg_.gated_mlp)
    cuda::glu_forward(act, fc, fc + H, N, H, F, cfg_.act);
  else
    cuda::activation_forward(act, fc, (size_t)N * H, cfg_.act);
}

template <typename A>
void CudaModel::attend(int l, A* att, const A* qkv) {
  const size_t Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const AttentionShape s = attention_shape(cfg_, l, B_, T_);
  float* stats = at<float>(layers_[l].probs);
  if constexpr (std::is_same_v<A, bf16>) {
    if (cudnn_) return cuda::cudnn_attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
    if (flash_) return cuda::flash_attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
  }
  cuda::attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
}

// dqkv (the packed q|k|v gradient rows) overwritten from d_att, the gradient at the attention output.
template <typename A>
void CudaModel::attend_backward(int l, A* dqkv, const A* d_att, const A* qkv) {
  const size_t Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const AttentionShape s = attention_shape(cfg_, l, B_, T_);
  const LayerBufs& a = layers_[l];
  if constexpr (std::is_same_v<A, bf16>) {
    if (cudnn_)
      return cuda::cudnn_attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, d_att, at<A>(a.att), at<float>(a.probs),
                                            qkv, qkv + Q, qkv + Q + KV, s);
    if (flash_)
      return cuda::flash_attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, at<float>(d_scores_), d_att, at<A>(a.att),
                                            at<float>(a.probs), qkv, qkv + Q, qkv + Q + KV, s);
  }
  cuda::attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, at<float>(d_scores_), d_att, at<float>(a.probs), qkv,
                           qkv + Q, qkv + Q + KV, s);
}

template <typename A>
void CudaModel::attn_backward(int l, const A* dout, const A* attn_in) {
  const int B = B_, T = T_, N = B * T, C = cfg_.hidden, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), QKV = Q + 2 * KV;
  const A* p = weights<A>();
  float* g = at<float>(grads_);
  const WeightLayout wl = layout_.linear_layout;
  const LayerOffsets& o = layout_.layers[l];
  const LayerBufs& a = layers_[l];
  A *d_att = at<A>(d_att_), *dq = at<A>(d_qkv_), *d_tmp = at<A>(d_tmp_), *qkv = at<A>(a.qkv);
  cuda::linear_backward(d_att, g + o.wo, opt(g, o.bo), dout, at<A>(a.att), p + o.wo, N, Q, C, wl);
  attend_backward(l, dq, d_att, qkv);
  if (cfg_.family == Family::llama && cfg_.rot_dim() > 0) {
    cuda::rope_backward(dq, B, T, cfg_.n_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
    cuda::rope_backward(dq + Q, B, T, cfg_.n_kv_heads, cfg_.head_dim, QKV, cfg_.rot_dim(), cfg_.rope_theta);
  }
  cuda::linear_backward(d_tmp, g + o.wqkv, opt(g, o.bqkv), dq, attn_in, p + o.wqkv, N, C, QKV, wl);
}

// On entry d_res holds dL/d(output of layer l); on exit dL/d(input of layer l).
template <typename A>
void CudaModel::layer_backward(int l) {
  const size_t NC = (size_t)B_ * T_ * cfg_.hidden;
  const LayerOffsets& o = layout_.layers[l];
  const LayerBufs& a = layers_[l];
  const A* x = at<A>(res_[l]);
  A *d_res = at<A>(d_res_), *d_h = at<A>(d_h_), *d_r = at<A>(d_r_), *d_tmp = at<A>(d_tmp_);
  float *n1_mean = at<float>(a.n1_mean), *n1_rstd = at<float>(a.n1_rstd);
  float *n2_mean = at<float>(a.n2_mean), *n2_rstd = at<float>(a.n2_rstd);
  if (!cfg_.deepnorm) {
    // out = h + mlp(norm2(h));  h = x + attn(norm1(x))
    mlp_backward(a, o, d_res, at<A>(a.n2));
    copy(d_h, d_res, NC);
    norm_backward(d_h, d_tmp, at<A>(a.h), n2_mean, n2_rstd, o.norm2_w, o.norm2_b);
    attn_backward(l, d_h, at<A>(a.x_norm));
    copy(d_res, d_h, NC);
    norm_backward(d_res, d_tmp, x, n1_mean, n1_rstd, o.norm1_w, o.norm1_b);
  } else {
    // out = norm2(r2), r2 = alpha h + mlp(h);  h = norm1(r1), r1 = alpha x + attn(x)
    const float alpha = cfg_.deepnorm_alpha;
    zero(d_r, NC);
    norm_backward(d_r, d_res, at<A>(a.r2), n2_mean, n2_rstd, o.norm2_w, o.norm2_b);
    mlp_backward(a, o, d_r, at<A>(a.h));
    copy(d_h, d_tmp, NC);
    cuda::add_scaled(d_h, d_r, alpha, NC);
    zero(d_r, NC);
    norm_backward(d_r, d_h, at<A>(a.r1), n1_mean, n1_rstd, o.norm1_w, o.norm1_b);
    attn_backward(l, d_r, x);
    copy(d_res, d_tmp, NC);
    cuda::add_scaled(d_res, d_r, alpha, NC);
  }
}

template <typename A>
void CudaModel::backward_t(float loss_scale) {
  const int N = B_ * T_, C = cfg_.hidden, V = cfg_.vocab_size;
  const A* p = weights<A>();
  float* g = at<float>(grads_);
  A *logits = at<A>(logits_), *d_lnf = at<A>(d_lnf_), *d_res = at<A>(d_res_);
  // dlogits (in place over the logits), then back through the head and the final norm.
  cuda::cross_entropy_backward(logits, logits, at<int32_t>(targets_), loss_scale / static_cast<float>(n_targets_), N,
                               V);
  cuda::linear_backward(d_lnf, g + layout_.lm_head, static_cast<float*>(nullptr), logits, at<A>(lnf_),
                        p + layout_.lm_head, N, C, V, WeightLayout::out_in);
  zero(d_res, (size_t)N * C);
  norm_backward(d_res, d_lnf, at<A>(res_[cfg_.n_layers]), at<float>(lnf_mean_), at<float>(lnf_rstd_), layout_.normf_w,
                layout_.normf_b);
  for (int l = cfg_.n_layers - 1; l >= 0; l--) layer_backward<A>(l);
  cuda::embedding_backward(g + layout_.wte, opt(g, layout_.wpe), d_res, at<int32_t>(tokens_), B_, T_, C);
}

}  // namespace mindllm
