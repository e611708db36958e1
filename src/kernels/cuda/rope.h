// Rotary position embedding on the GPU, in place, Hugging Face LLaMA's rotate_half convention;
// same semantics as kernels/cpu/rope.h (rows [B*T] of H heads x head_dim, row_stride apart; row
// b*T+t at position pos_offset + t; dimensions rot_dim..head_dim-1 pass through).
#pragma once
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset = 0);
void rope_forward(bf16* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset = 0);
// The inverse rotation applied to a gradient, in place.
void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset = 0);
void rope_backward(bf16* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset = 0);

}  // namespace mindllm::cuda
