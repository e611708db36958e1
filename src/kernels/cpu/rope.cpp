#include "kernels/cpu/rope.h"

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

#include <cmath>
#include <vector>

namespace mindllm::cpu {

namespace {

MINDLLM_SIMD_CLONES void rope_rows(float* x, const float* cs, const float* sn, int r0, int r1, int T, int H,
                                   int head_dim, int row_stride, int half) {
  for (int r = r0; r < r1; r++) {
    const float* c = cs + (size_t)(r % T) * half;
    const float* s = sn + (size_t)(r % T) * half;
    for (int h = 0; h < H; h++) {
      float* v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace

static void rope_apply(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                       int pos_offset, float sign) {
  int half = rot_dim / 2;
  // cos/sin table for T positions: angles in float32 as Hugging Face computes them.
  std::vector<float> cs((size_t)T * half), sn((size_t)T * half);
  for (int i = 0; i < half; i++) {
    float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rot_dim));
    for (int t = 0; t < T; t++) {
      float a = static_cast<float>(t + pos_offset) * inv_freq;
      cs[(size_t)t * half + i] = std::cos(a);
      sn[(size_t)t * half + i] = sign * std::sin(a);
    }
  }
  parallel_ranges(B * T, 8, [&](size_t b, size_t e) {
    rope_rows(x, cs.data(), sn.data(), (int)b, (int)e, T, H, head_dim, row_stride, half);
  });
}

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                  int pos_offset) {
  PROFILE("rope");
  rope_apply(x, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, 1.0f);
}

void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset) {
  PROFILE("rope");
  rope_apply(dx, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, -1.0f);
}

}  // namespace mindllm::cpu
