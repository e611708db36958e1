// Rotary position embedding, in place, in Hugging Face LLaMA's "rotate_half" convention:
// for i < rot/2 with angle a = pos * theta^(-2i/rot):
//   y[i] = x[i] cos a - x[i + rot/2] sin a,   y[i + rot/2] = x[i + rot/2] cos a + x[i] sin a.
// Dimensions rot..head_dim-1 pass through (partial rotary). Rows are [B*T] of H heads × head_dim,
// `row_stride` floats apart; row b*T+t has position pos_offset + t, or pos_offset + positions[b*T+t]
// when positions is given (packed samples: positions restart at 0 for each sample; each < T).
#pragma once
#include <cstdint>

namespace mindllm::cpu {

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset = 0, const int32_t* positions = nullptr);
// The inverse rotation applied to a gradient, in place.
void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset = 0, const int32_t* positions = nullptr);

}  // namespace mindllm::cpu
