// Elementwise activations and the gated MLP (GLU) used by LLaMA-style blocks.
#pragma once
#include <cstddef>

#include "core/types.h"

namespace mindllm::cpu {

// The activations (Activation, core/types.h) applied elementwise.
void activation_forward(float* out, const float* inp, size_t n, Activation act);
// dinp += dout * act'(inp)
void activation_backward(float* dinp, const float* dout, const float* inp, size_t n, Activation act);

// out[N,H] = act(gate) * up  (SwiGLU with silu, GeGLU with a gelu). gate and up are N rows of H,
// `ld` floats apart (ld = H for separate arrays; ld = 2H when gate and up share one fused GEMM
// output [N, 2H] with up = gate + H).
void glu_forward(float* out, const float* gate, const float* up, int N, int H, int ld, Activation act);
// dgate = dout * up * act'(gate), dup = dout * act(gate)  (overwritten, not accumulated; same
// row stride ld as gate and up; dout is [N,H]).
void glu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int H, int ld,
                  Activation act);

}  // namespace mindllm::cpu
