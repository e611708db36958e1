// Elementwise ops on the GPU: activations, the gated MLP (SwiGLU/GeGLU), the residual add with
// DeepNorm's scale, and fp32 <-> bf16 casts. Same math and semantics as kernels/cpu/activation.h.
#pragma once
#include <cstddef>

#include "core/types.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

void activation_forward(float* out, const float* inp, size_t n, Activation act);
void activation_forward(bf16* out, const bf16* inp, size_t n, Activation act);
// dinp += dout * act'(inp)
void activation_backward(float* dinp, const float* dout, const float* inp, size_t n, Activation act);
void activation_backward(bf16* dinp, const bf16* dout, const bf16* inp, size_t n, Activation act);

// out[N,H] = act(gate) * up; gate and up rows `ld` elements apart (ld = 2H for a fused [N,2H]
// GEMM output with up = gate + H).
void glu_forward(float* out, const float* gate, const float* up, int N, int H, int ld, Activation act);
void glu_forward(bf16* out, const bf16* gate, const bf16* up, int N, int H, int ld, Activation act);
// dgate = dout * up * act'(gate), dup = dout * act(gate) (overwritten; row stride ld).
void glu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int H, int ld,
                  Activation act);
void glu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int N, int H, int ld,
                  Activation act);

// y += alpha * x: the residual connection (alpha = 1) and DeepNorm's scaled residual.
void add_scaled(float* y, const float* x, float alpha, size_t n);
void add_scaled(bf16* y, const bf16* x, float alpha, size_t n);

// Casts (round to nearest even): bf16 compute copies of fp32 master weights, and back.
void convert(bf16* out, const float* inp, size_t n);
void convert(float* out, const bf16* inp, size_t n);

}  // namespace mindllm::cuda
