#include "kernels/cpu/rope.h"

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

#include <cmath>
#include <vector>

namespace mindllm::cpu {

namespace {

// sign = -1 applies the inverse rotation (the backward pass).
MINDLLM_SIMD_CLONES void rope_rows(float* x, const float* cs, const float* sn, float sign, int r0, int r1, int T, int H,
                                   int head_dim, int row_stride, int half, const int32_t* positions) {
  for (int r = r0; r < r1; r++) {
    const int t = positions ? positions[r] : r % T;  // index into the table of positions [offset, offset + T)
    const float* c = cs + (size_t)t * half;
    const float* s = sn + (size_t)t * half;
    for (int h = 0; h < H; h++) {
      float* v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        float si = sign * s[i];
        v[i] = a * c[i] - b * si;
        v[i + half] = b * c[i] + a * si;
      }
    }
  }
}

}  // namespace

// cos/sin tables for positions [pos_offset, pos_offset + T): angles in float32 as Hugging Face
// computes them. The last table is kept: training calls RoPE 4 times per layer with the same
// positions (one table per calling thread, so concurrent callers never share one).
struct RopeTable {
  int T = -1, half = -1, pos_offset = -1;
  float theta = 0.0f;
  std::vector<float> cs, sn;
};

static const RopeTable& rope_table(int T, int half, int rot_dim, float theta, int pos_offset) {
  thread_local RopeTable table;
  if (table.T == T && table.half == half && table.theta == theta && table.pos_offset == pos_offset) return table;
  table.cs.resize((size_t)T * half);
  table.sn.resize((size_t)T * half);
  for (int i = 0; i < half; i++) {
    float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rot_dim));
    for (int t = 0; t < T; t++) {
      float a = static_cast<float>(t + pos_offset) * inv_freq;
      table.cs[(size_t)t * half + i] = std::cos(a);
      table.sn[(size_t)t * half + i] = std::sin(a);
    }
  }
  table.T = T, table.half = half, table.theta = theta, table.pos_offset = pos_offset;
  return table;
}

static void rope_apply(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                       int pos_offset, const int32_t* positions, float sign) {
  const int half = rot_dim / 2;
  if (half == 0) return;
  const RopeTable& tab = rope_table(T, half, rot_dim, theta, pos_offset);
  parallel_ranges(B * T, 8, [&](size_t b, size_t e) {
    rope_rows(x, tab.cs.data(), tab.sn.data(), sign, (int)b, (int)e, T, H, head_dim, row_stride, half, positions);
  });
}

void rope_forward(float* x, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta, int pos_offset,
                  const int32_t* positions) {
  PROFILE("rope");
  rope_apply(x, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, 1.0f);
}

void rope_backward(float* dx, int B, int T, int H, int head_dim, int row_stride, int rot_dim, float theta,
                   int pos_offset, const int32_t* positions) {
  PROFILE("rope");
  rope_apply(dx, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, positions, -1.0f);
}

}  // namespace mindllm::cpu
