#include "model/cuda/cuda_model.h"

#include <cmath>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
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
#include "model/segments.h"
#include "model/cuda/cuda_ops.h"
#include "model/decoder.h"

namespace mindllm {

using cuda::AttentionShape;
using cuda::bf16;
using cuda::WeightLayout;

namespace {

AttentionShape attention_shape(const ModelConfig& c, int l, int B, int T, const int32_t* seg_start = nullptr) {
  const int QKV = c.q_dim() + 2 * c.kv_dim();
  return AttentionShape{B,   T,   c.n_heads, c.n_kv_heads, c.head_dim,  QKV,
                        QKV, QKV, c.q_dim(), c.attn_scale, c.window[l], seg_start};
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
  positions_ = arena_.reserve_n<int32_t>(N), seg_start_ = arena_.reserve_n<int32_t>(N);
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

void CudaModel::forward(const int32_t* tokens, const int32_t* targets, int B, int T, double loss_weight,
                        const int32_t* positions) {
  check_batch(tokens, targets, B, T);
  to_device(at<int32_t>(tokens_), tokens, (size_t)B * T);
  if (targets) to_device(at<int32_t>(targets_), targets, (size_t)B * T);
  packed_ = positions != nullptr;
  if (packed_) {
    MINDLLM_CHECK(!cudnn_, "CudaModel: cuDNN attention takes no packed rows");
    const std::vector<int32_t> seg = segment_starts(positions, B, T);
    to_device(at<int32_t>(positions_), positions, (size_t)B * T);
    to_device(at<int32_t>(seg_start_), seg.data(), seg.size());
    cuda::synchronize();  // seg is freed on return
  }
  if (precision_ == Precision::bf16) forward_t<bf16>(targets != nullptr, loss_weight);
  else forward_t<float>(targets != nullptr, loss_weight);
}

void CudaModel::backward(float loss_scale) {
  if (n_targets_ == 0) return;  // nothing counted: zero gradient (as the CPU model)
  if (precision_ == Precision::bf16) backward_t<bf16>(loss_scale);
  else backward_t<float>(loss_scale);
  n_targets_ = 0;  // the logits were overwritten: a second backward needs a new forward
}

double CudaModel::loss_sum() const {
  double s = 0.0;
  to_host(&s, &scalars()->loss_sum, 1);
  return s;
}

float CudaModel::loss(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* positions) {
  zero(&scalars()->loss_sum, 1);
  forward(tokens, targets, B, T, 1.0, positions);
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
  if (precision_ == Precision::fp32) return download_floats(at<float>(logits_), n);
  return download_floats(at<bf16>(logits_), n);
}

// The decoder's Ops (model/decoder.h) on the GPU: the shared forward ops (model/cuda/cuda_ops.h)
// over this model's weights (fp32, or the bf16 compute copy), the backward into its fp32
// gradients, and the attention op this model chose.
template <typename A>
struct CudaModel::Ops : CudaForwardOps<A> {
  using Base = CudaForwardOps<A>;
  using Base::cfg, Base::p, Base::zero;
  CudaModel& m;
  float* g;

  explicit Ops(CudaModel& model)
      : Base{model.cfg_, model.layout_, model.weights<A>()}, m(model), g(model.at<float>(model.grads_)) {}

  void linear_backward(A* din, const A* dout, const A* in, size_t w, size_t b, int N, int I, int O,
                       WeightLayout wl) const {
    cuda::linear_backward(din, g + w, opt(g, b), dout, in, p + w, N, I, O, wl);
  }
  void norm_backward(A* din, const A* dout, const A* in, const float* mean, const float* rstd, size_t w, size_t b,
                     int N) const {
    if (cfg.norm == NormKind::layernorm)
      cuda::layernorm_backward(din, g + w, opt(g, b), dout, in, p + w, mean, rstd, N, cfg.hidden);
    else cuda::rmsnorm_backward(din, g + w, dout, in, p + w, rstd, N, cfg.hidden);
  }
  void activation_backward(A* d_fc, const A* d_act, const A* fc, int N) const {
    const int H = cfg.intermediate;
    if (cfg.gated_mlp) {
      cuda::glu_backward(d_fc, d_fc + H, d_act, fc, fc + H, N, H, 2 * H, cfg.act);
    } else {
      zero(d_fc, (size_t)N * H);
      cuda::activation_backward(d_fc, d_act, fc, (size_t)N * H, cfg.act);
    }
  }
  void attend(int l, A* att, A* qkv, float* stats, int) const {
    this->rope(qkv, m.B_, m.T_, m.positions());
    m.attend(l, att, qkv, stats);
  }
  void attend_backward(int l, A* dqkv, const A* d_att, const A* qkv, const A* att, const float* stats, int) const {
    m.attend_backward(l, dqkv, d_att, qkv, att, stats);
    this->rope(dqkv, m.B_, m.T_, m.positions(), true);
  }
  bool recompute_mlp() const { return m.recompute_mlp_; }
};

template <typename A>
LayerActs<A> CudaModel::layer_acts(int l) const {
  const LayerBufs& b = layers_[l];
  LayerActs<A> a;
  a.x_norm = at<A>(b.x_norm), a.n1_mean = at<float>(b.n1_mean), a.n1_rstd = at<float>(b.n1_rstd);
  a.qkv = at<A>(b.qkv), a.att_stats = at<float>(b.probs), a.att = at<A>(b.att), a.r1 = at<A>(b.r1);
  a.h = at<A>(b.h), a.n2 = at<A>(b.n2), a.n2_mean = at<float>(b.n2_mean), a.n2_rstd = at<float>(b.n2_rstd);
  a.fc = at<A>(b.fc), a.act = at<A>(b.act), a.r2 = at<A>(b.r2);
  return a;
}

template <typename A>
void CudaModel::forward_t(bool with_targets, double loss_weight) {
  const int N = B_ * T_, C = cfg_.hidden, V = cfg_.vocab_size;
  Ops<A> ops(*this);
  const A* p = weights<A>();
  const int32_t* targets = at<int32_t>(targets_);
  cuda::embedding_forward(at<A>(res_[0]), at<int32_t>(tokens_), p + layout_.wte, opt(p, layout_.wpe), B_, T_, C, 0,
                          positions());
  if (with_targets && noise_.on()) {  // NEFTune, through d_tmp_ (free until the backward)
    std::vector<float> noise((size_t)N * C);
    embedding_noise(noise.data(), N, T_, C, noise_);
    if constexpr (std::is_same_v<A, bf16>) {
      std::vector<uint16_t> h(noise.size());
      for (size_t i = 0; i < h.size(); i++) h[i] = float_to_bf16(noise[i]);
      to_device(reinterpret_cast<uint16_t*>(at<A>(d_tmp_)), h.data(), h.size());
    } else {
      to_device(at<A>(d_tmp_), noise.data(), noise.size());
    }
    ops.add_scaled(at<A>(res_[0]), at<A>(d_tmp_), 1.0f, (size_t)N * C);
  }
  for (int l = 0; l < cfg_.n_layers; l++)
    block_forward(ops, l, N, layer_acts<A>(l), at<A>(res_[l]), at<A>(res_[l + 1]));
  ops.norm(at<A>(lnf_), at<float>(lnf_mean_), at<float>(lnf_rstd_), at<A>(res_[cfg_.n_layers]), layout_.normf_w,
           layout_.normf_b, N);
  ops.linear(at<A>(logits_), at<A>(lnf_), layout_.lm_head, kAbsent, N, C, V, WeightLayout::out_in);
  if (!with_targets) return;
  cuda::cross_entropy_forward(at<float>(losses_), at<A>(logits_), targets, N, V);
  cuda::cross_entropy_mean(&scalars()->loss_sum, at<float>(losses_), targets, N, loss_weight);
}

// The attention op of layer l (after RoPE), flash or cuDNN or simple; stats saved for the backward.
template <typename A>
void CudaModel::attend(int l, A* att, const A* qkv, float* stats) {
  const size_t Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const AttentionShape s = attention_shape(cfg_, l, B_, T_, packed_ ? at<int32_t>(seg_start_) : nullptr);
  if constexpr (std::is_same_v<A, bf16>) {
    if (cudnn_) return cuda::cudnn_attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
    if (flash_) return cuda::flash_attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
  }
  cuda::attention_forward(att, stats, qkv, qkv + Q, qkv + Q + KV, s);
}

// dqkv (the packed q|k|v gradient rows) overwritten from d_att, the gradient at the attention output.
template <typename A>
void CudaModel::attend_backward(int l, A* dqkv, const A* d_att, const A* qkv, const A* att, const float* stats) {
  const size_t Q = cfg_.q_dim(), KV = cfg_.kv_dim();
  const AttentionShape s = attention_shape(cfg_, l, B_, T_, packed_ ? at<int32_t>(seg_start_) : nullptr);
  if constexpr (std::is_same_v<A, bf16>) {
    if (cudnn_)
      return cuda::cudnn_attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, d_att, att, stats, qkv, qkv + Q,
                                            qkv + Q + KV, s);
    if (flash_)
      return cuda::flash_attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, at<float>(d_scores_), d_att, att, stats, qkv,
                                            qkv + Q, qkv + Q + KV, s);
  }
  cuda::attention_backward(dqkv, dqkv + Q, dqkv + Q + KV, at<float>(d_scores_), d_att, stats, qkv, qkv + Q,
                           qkv + Q + KV, s);
}

template <typename A>
void CudaModel::backward_t(float loss_scale) {
  const int N = B_ * T_, C = cfg_.hidden, V = cfg_.vocab_size;
  Ops<A> ops(*this);
  A *logits = at<A>(logits_), *d_lnf = at<A>(d_lnf_), *d_res = at<A>(d_res_);
  // dlogits (in place over the logits), then back through the head and the final norm.
  cuda::cross_entropy_backward(logits, logits, at<int32_t>(targets_), loss_scale / static_cast<float>(n_targets_), N,
                               V);
  ops.linear_backward(d_lnf, logits, at<A>(lnf_), layout_.lm_head, kAbsent, N, C, V, WeightLayout::out_in);
  ops.zero(d_res, (size_t)N * C);
  ops.norm_backward(d_res, d_lnf, at<A>(res_[cfg_.n_layers]), at<float>(lnf_mean_), at<float>(lnf_rstd_),
                    layout_.normf_w, layout_.normf_b, N);
  const BlockGrads<A> g{at<A>(d_tmp_), at<A>(d_h_),  at<A>(d_r_),  at<A>(d_qkv_),
                        at<A>(d_att_), at<A>(d_fc_), at<A>(d_act_)};
  for (int l = cfg_.n_layers - 1; l >= 0; l--) block_backward(ops, l, N, layer_acts<A>(l), at<A>(res_[l]), d_res, g);
  cuda::embedding_backward(ops.g + layout_.wte, opt(ops.g, layout_.wpe), d_res, at<int32_t>(tokens_), B_, T_, C, 0,
                           positions());
}

}  // namespace mindllm
