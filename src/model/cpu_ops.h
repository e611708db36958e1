// The CPU binding of the decoder's Ops (model/decoder.h): kernels/cpu over one model's flat
// weights (fp32, or a bf16 copy for the matrix multiplies) and, when training, its gradients.
// Everything but the attention op, which training (full causal sequences, model/model.cpp) and
// inference (a K/V cache, model/engine.cpp) each add.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/norm.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/params.h"

namespace mindllm {

struct CpuOps {
  using Act = float;
  const ModelConfig& cfg;
  const ParamLayout& layout;
  const float* p;               // weights (fp32)
  const uint16_t* p_bf16;       // bf16 copy of p for the matrix multiplies, or null (fp32 GEMMs)
  float* g = nullptr;           // gradients (training only)
  LoraWeights* lora = nullptr;  // LoRA adapters on the projections (model/lora.h): the base is frozen

  static const float* opt(const float* base, size_t off) { return off == kAbsent ? nullptr : base + off; }
  static float* opt(float* base, size_t off) { return off == kAbsent ? nullptr : base + off; }

  void linear(float* out, const float* in, size_t w, size_t b, int N, int I, int O, cpu::WeightLayout wl) const {
    if (p_bf16) cpu::linear_forward_bf16(out, in, p_bf16 + w, opt(p, b), N, I, O, wl);
    else cpu::linear_forward(out, in, p + w, opt(p, b), N, I, O, wl);
    if (lora) lora_forward(*lora, out, in, w, N, I, O);
  }
  void linear_backward(float* din, const float* dout, const float* in, size_t w, size_t b, int N, int I, int O,
                       cpu::WeightLayout wl) const {
    float* gw = lora ? nullptr : g + w;  // a frozen base: no weight gradient
    float* gb = lora ? nullptr : opt(g, b);
    if (p_bf16) cpu::linear_backward_bf16(din, gw, gb, dout, in, p_bf16 + w, N, I, O, wl);
    else cpu::linear_backward(din, gw, gb, dout, in, p + w, N, I, O, wl);
    if (lora) lora_backward(*lora, din, dout, in, w, N, I, O);
  }
  void norm(float* out, float* mean, float* rstd, const float* in, size_t w, size_t b, int N) const {
    if (cfg.norm == NormKind::layernorm)
      cpu::layernorm_forward(out, mean, rstd, in, p + w, opt(p, b), N, cfg.hidden, cfg.norm_eps);
    else cpu::rmsnorm_forward(out, rstd, in, p + w, N, cfg.hidden, cfg.norm_eps);
  }
  void norm_backward(float* din, const float* dout, const float* in, const float* mean, const float* rstd, size_t w,
                     size_t b, int N) const {
    float* gw = lora ? nullptr : g + w;  // a frozen base: no weight gradient
    if (cfg.norm == NormKind::layernorm)
      cpu::layernorm_backward(din, gw, lora ? nullptr : opt(g, b), dout, in, p + w, mean, rstd, N, cfg.hidden);
    else cpu::rmsnorm_backward(din, gw, dout, in, p + w, rstd, N, cfg.hidden);
  }
  void add_scaled(float* y, const float* x, float alpha, size_t n) const {
#pragma omp parallel for schedule(static) if (n >= (1 << 16))  // a decode step's rows: not worth a region
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
  }
  void zero(float* x, size_t n) const { std::memset(x, 0, n * sizeof(float)); }
  void copy(float* dst, const float* src, size_t n) const { std::memcpy(dst, src, n * sizeof(float)); }
  void activation(float* act, const float* fc, int N) const {
    const int H = cfg.intermediate;
    if (cfg.gated_mlp) cpu::glu_forward(act, fc, fc + H, N, H, 2 * H, cfg.act);
    else cpu::activation_forward(act, fc, (size_t)N * H, cfg.act);
  }
  void activation_backward(float* d_fc, const float* d_act, const float* fc, int N) const {
    const int H = cfg.intermediate;
    if (cfg.gated_mlp) {
      cpu::glu_backward(d_fc, d_fc + H, d_act, fc, fc + H, N, H, 2 * H, cfg.act);
    } else {
      zero(d_fc, (size_t)N * H);
      cpu::activation_backward(d_fc, d_act, fc, (size_t)N * H, cfg.act);
    }
  }
  bool recompute_mlp() const { return false; }
  std::vector<float> to_host(const float* x, size_t n) const { return std::vector<float>(x, x + n); }
  // RoPE over packed q|k|v rows (B sequences of T rows at positions pos0.., or pos0 + positions[row]),
  // in place; and its inverse.
  void rope(float* qkv, int B, int T, int pos0, bool backward = false, const int32_t* positions = nullptr) const;
};

}  // namespace mindllm
