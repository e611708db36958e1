// Rotary position embedding on the GPU, in place, Hugging Face LLaMA's rotate_half convention;
// same semantics as kernels/cpu/rope.h (rows [B*T] of H heads x head_dim, row_stride apart; row
// b*T+t at position pos_offset + t, or pos_offset + positions[b*T+t] with device position ids
// (packed samples); dimensions rot_dim..head_dim-1 pass through).
#pragma once
#include <cstdint>

#include "kernels/cuda/device.h"

namespace mindllm::cuda {

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset = 0, const int32_t* positions = nullptr);
void rope_forward(bf16* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset = 0, const int32_t* positions = nullptr);
// The inverse rotation applied to a gradient, in place.
void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset = 0, const int32_t* positions = nullptr);
void rope_backward(bf16* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset = 0, const int32_t* positions = nullptr);

}  // namespace mindllm::cuda
