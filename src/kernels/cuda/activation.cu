#include "kernels/cuda/activation.h"

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// The formulas of kernels/cpu/activation.cpp (gelu_tanh as x * sigmoid(2u), exact and accurate
// in both tails).
__device__ __forceinline__ float act_value(float x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: return x * sigmoid(2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x));
    case Activation::gelu_erf: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    default: return x * sigmoid(x);
  }
}

__device__ __forceinline__ float act_grad(float x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: {
      float s = sigmoid(2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x));
      return s + x * s * (1.0f - s) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case Activation::gelu_erf: return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    default: {
      float s = sigmoid(x);
      return s * (1.0f + x * (1.0f - s));
    }
  }
}

#define GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

template <typename T>
__global__ void act_forward_kernel(T* out, const T* inp, size_t n, Activation a) {
  GRID_STRIDE(i, n) out[i] = from_float<T>(act_value(to_float(inp[i]), a));
}

template <typename T>
__global__ void act_backward_kernel(T* dinp, const T* dout, const T* inp, size_t n, Activation a) {
  GRID_STRIDE(i, n) dinp[i] = from_float<T>(to_float(dinp[i]) + to_float(dout[i]) * act_grad(to_float(inp[i]), a));
}

template <typename T>
__global__ void glu_forward_kernel(T* out, const T* gate, const T* up, int N, int H, int ld, Activation a) {
  GRID_STRIDE(i, (size_t)N * H) {
    size_t n = i / H, h = i % H, j = n * ld + h;
    out[i] = from_float<T>(act_value(to_float(gate[j]), a) * to_float(up[j]));
  }
}

template <typename T>
__global__ void glu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int N, int H, int ld,
                                    Activation a) {
  GRID_STRIDE(i, (size_t)N * H) {
    size_t n = i / H, h = i % H, j = n * ld + h;
    float g = to_float(gate[j]), u = to_float(up[j]), d = to_float(dout[i]);
    float av = act_value(g, a), ag = act_grad(g, a);
    // Read both inputs before writing: dgate/dup may overwrite gate/up in place.
    dgate[j] = from_float<T>(d * u * ag);
    dup[j] = from_float<T>(d * av);
  }
}

template <typename T>
__global__ void add_scaled_kernel(T* y, const T* x, float alpha, size_t n) {
  GRID_STRIDE(i, n) y[i] = from_float<T>(to_float(y[i]) + alpha * to_float(x[i]));
}

template <typename To, typename From>
__global__ void convert_kernel(To* out, const From* inp, size_t n) {
  GRID_STRIDE(i, n) out[i] = from_float<To>(to_float(inp[i]));
}

}  // namespace

// Launches an elementwise grid-stride kernel over n elements.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), size_t n, Args... args) {
  if (n == 0) return;
  kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(args...);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

void activation_forward(float* out, const float* inp, size_t n, Activation act) {
  launch(act_forward_kernel<float>, n, out, inp, n, act);
}
void activation_forward(bf16* out, const bf16* inp, size_t n, Activation act) {
  launch(act_forward_kernel<bf16>, n, out, inp, n, act);
}
void activation_backward(float* dinp, const float* dout, const float* inp, size_t n, Activation act) {
  launch(act_backward_kernel<float>, n, dinp, dout, inp, n, act);
}
void activation_backward(bf16* dinp, const bf16* dout, const bf16* inp, size_t n, Activation act) {
  launch(act_backward_kernel<bf16>, n, dinp, dout, inp, n, act);
}
void glu_forward(float* out, const float* gate, const float* up, int N, int H, int ld, Activation act) {
  launch(glu_forward_kernel<float>, (size_t)N * H, out, gate, up, N, H, ld, act);
}
void glu_forward(bf16* out, const bf16* gate, const bf16* up, int N, int H, int ld, Activation act) {
  launch(glu_forward_kernel<bf16>, (size_t)N * H, out, gate, up, N, H, ld, act);
}
void glu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int H, int ld,
                  Activation act) {
  launch(glu_backward_kernel<float>, (size_t)N * H, dgate, dup, dout, gate, up, N, H, ld, act);
}
void glu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int N, int H, int ld,
                  Activation act) {
  launch(glu_backward_kernel<bf16>, (size_t)N * H, dgate, dup, dout, gate, up, N, H, ld, act);
}
void add_scaled(float* y, const float* x, float alpha, size_t n) {
  launch(add_scaled_kernel<float>, n, y, x, alpha, n);
}
void add_scaled(bf16* y, const bf16* x, float alpha, size_t n) { launch(add_scaled_kernel<bf16>, n, y, x, alpha, n); }
void convert(bf16* out, const float* inp, size_t n) { launch(convert_kernel<bf16, float>, n, out, inp, n); }
void convert(float* out, const bf16* inp, size_t n) { launch(convert_kernel<float, bf16>, n, out, inp, n); }

}  // namespace mindllm::cuda
