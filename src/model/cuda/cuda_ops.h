// The forward half of the decoder's Ops (model/decoder.h) on the GPU: kernels/cuda over one
// model's device weights (fp32, or the bf16 compute copy), shared by GPU training
// (model/cuda/cuda_model.cpp adds the backward and its attention) and GPU inference
// (model/cuda/cuda_engine.cpp adds paged attention against the device K/V cache). Also the
// stream-ordered copies both use. Built only with MINDLLM_CUDA.
#pragma once
#include <type_traits>
#include <vector>

#include "kernels/cuda/activation.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/rope.h"
#include "model/config.h"
#include "model/params.h"

namespace mindllm {

template <typename T>
T* opt(T* base, size_t off) {
  return off == kAbsent ? nullptr : base + off;
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
// Waits: the host buffer is ready on return.
template <typename T>
void to_host(T* dst, const T* src, size_t n) {
  MINDLLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, cuda::stream()));
  cuda::synchronize();
}
// Device activations (fp32 or bf16) as host floats.
template <typename A>
std::vector<float> download_floats(const A* x, size_t n) {
  std::vector<float> out(n);
  if constexpr (std::is_same_v<A, float>) {
    to_host(out.data(), x, n);
  } else {
    std::vector<A> raw(n);
    to_host(raw.data(), x, n);
    for (size_t i = 0; i < n; i++) out[i] = __bfloat162float(raw[i]);
  }
  return out;
}

template <typename A>
struct CudaForwardOps {
  using Act = A;
  const ModelConfig& cfg;
  const ParamLayout& layout;
  const A* p;  // device weights in the model's flat layout

  void linear(A* out, const A* in, size_t w, size_t b, int N, int I, int O, cuda::WeightLayout wl) const {
    cuda::linear_forward(out, in, p + w, opt(p, b), N, I, O, wl);
  }
  void norm(A* out, float* mean, float* rstd, const A* in, size_t w, size_t b, int N) const {
    if (cfg.norm == NormKind::layernorm)
      cuda::layernorm_forward(out, mean, rstd, in, p + w, opt(p, b), N, cfg.hidden, cfg.norm_eps);
    else cuda::rmsnorm_forward(out, rstd, in, p + w, N, cfg.hidden, cfg.norm_eps);
  }
  void add_scaled(A* y, const A* x, float alpha, size_t n) const { cuda::add_scaled(y, x, alpha, n); }
  void zero(A* x, size_t n) const { mindllm::zero(x, n); }
  void copy(A* dst, const A* src, size_t n) const { mindllm::copy(dst, src, n); }
  void activation(A* act, const A* fc, int N) const {
    const int H = cfg.intermediate;
    if (cfg.gated_mlp) cuda::glu_forward(act, fc, fc + H, N, H, 2 * H, cfg.act);
    else cuda::activation_forward(act, fc, (size_t)N * H, cfg.act);
  }
  // RoPE (in place) over B x T packed q|k|v rows at positions 0..T-1 of each, or at device
  // positions[B*T]; backward: the inverse rotation.
  void rope(A* qkv, int B, int T, const int32_t* positions, bool backward = false) const {
    if (!cfg.rotary()) return;
    const int Q = cfg.q_dim(), QKV = Q + 2 * cfg.kv_dim();
    auto f = [&](A* x, int H) {
      if (backward) cuda::rope_backward(x, B, T, H, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, 0, positions);
      else cuda::rope_forward(x, B, T, H, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, 0, positions);
    };
    f(qkv, cfg.n_heads);
    f(qkv + Q, cfg.n_kv_heads);
  }
  bool recompute_mlp() const { return false; }
  std::vector<float> to_host(const A* x, size_t n) const { return download_floats(x, n); }
};

}  // namespace mindllm
