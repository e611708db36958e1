// Rotary embedding (rotate_half convention) against a float64 reference and finite differences.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/rope.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

struct RopeCase {
  int B, T, H, head_dim, row_stride, rot_dim, pos_offset;
  float theta;
};

// Float64 rotate_half RoPE over the whole strided buffer (elements outside the heads pass through).
std::vector<double> ref_rope(const std::vector<double>& x, const RopeCase& c, double sign = 1.0) {
  std::vector<double> y = x;
  const int half = c.rot_dim / 2;
  for (int r = 0; r < c.B * c.T; r++) {
    double pos = r % c.T + c.pos_offset;
    for (int h = 0; h < c.H; h++) {
      size_t base = (size_t)r * c.row_stride + (size_t)h * c.head_dim;
      for (int i = 0; i < half; i++) {
        double a = pos * std::pow((double)c.theta, -2.0 * i / c.rot_dim);
        double cs = std::cos(a), sn = sign * std::sin(a);
        double u = x[base + i], v = x[base + i + half];
        y[base + i] = u * cs - v * sn;
        y[base + i + half] = v * cs + u * sn;
      }
    }
  }
  return y;
}

class RopeKernel : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeKernel, ForwardBackwardMatchFloat64AndFiniteDifferences) {
  const RopeCase c = GetParam();
  Rng rng(31 + c.head_dim + c.rot_dim + c.T);
  const size_t n = (size_t)c.B * c.T * c.row_stride;
  auto x = random_normal(n, rng), R = random_normal(n, rng);
  auto xd = to_double(x), Rd = to_double(R);

  auto y = x;
  cpu::rope_forward(y.data(), c.B, c.T, c.H, c.head_dim, c.row_stride, c.rot_dim, c.theta, c.pos_offset);
  auto want = ref_rope(xd, c);
  EXPECT_REL_LE(y, want, kFwdTol);
  // Everything not rotated (partial-rotary tail, the rest of a strided row) is untouched, bit for bit.
  for (int r = 0; r < c.B * c.T; r++)
    for (int j = 0; j < c.row_stride; j++) {
      bool rotated = j < c.H * c.head_dim && (j % c.head_dim) < c.rot_dim;
      size_t i = (size_t)r * c.row_stride + j;
      if (!rotated) { ASSERT_EQ(0, std::memcmp(&y[i], &x[i], sizeof(float))) << "row " << r << " col " << j; }
    }

  // Backward (in place) of L = sum(rope(x) * R): the inverse rotation of R.
  auto g = R;
  cpu::rope_backward(g.data(), c.B, c.T, c.H, c.head_dim, c.row_stride, c.rot_dim, c.theta, c.pos_offset);
  EXPECT_REL_LE(g, ref_rope(Rd, c, -1.0), kBwdTol);
  if (n <= 4096) {
    auto fd = finite_diff([&](const std::vector<double>& v) { return dot(ref_rope(v, c), Rd); }, xd);
    EXPECT_REL_LE(g, fd, kFdTol);
  }

  // Backward undoes forward.
  cpu::rope_backward(y.data(), c.B, c.T, c.H, c.head_dim, c.row_stride, c.rot_dim, c.theta, c.pos_offset);
  EXPECT_REL_LE(y, xd, kFwdTol);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RopeKernel,
    ::testing::Values(RopeCase{2, 7, 3, 12, 36, 12, 0, 10000.f},      // odd-ish head dim, contiguous
                      RopeCase{2, 7, 3, 12, 36, 8, 0, 10000.f},       // partial rotary
                      RopeCase{1, 19, 2, 64, 3 * 128 + 5, 64, 5, 10000.f},  // strided (fused qkv) row + offset
                      RopeCase{2, 13, 4, 64, 256, 32, 0, 500000.f},   // partial rotary, head dim 64
                      RopeCase{3, 1, 1, 2, 2, 2, 41, 10000.f},        // minimal
                      RopeCase{1, 5, 2, 16, 40, 0, 0, 10000.f}));     // rot_dim 0: identity

TEST(RopeKernel, LongPositionsMatchFloat32AnglesAsHuggingFace) {
  // At position ~4000, float32 angles (as HF computes them) differ from exact ones by ~2e-4;
  // the kernel follows HF: compare against a reference with float32 angles, cos/sin in float64.
  const int T = 9, H = 2, D = 64, offset = 4000;
  Rng rng(2);
  auto x = random_normal((size_t)T * H * D, rng);
  auto y = x;
  cpu::rope_forward(y.data(), 1, T, H, D, H * D, D, 10000.f, offset);
  std::vector<double> want(x.size());
  for (int t = 0; t < T; t++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < D / 2; i++) {
        // HF: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
        float inv_freq = 1.0f / std::pow(10000.0f, (float)(2 * i) / (float)D);
        float a = (float)(t + offset) * inv_freq;
        size_t b = (size_t)t * H * D + (size_t)h * D;
        double u = x[b + i], v = x[b + i + D / 2];
        want[b + i] = u * std::cos((double)a) - v * std::sin((double)a);
        want[b + i + D / 2] = v * std::cos((double)a) + u * std::sin((double)a);
      }
  EXPECT_REL_LE(y, want, 1e-5);
}

TEST(RopeKernel, SameBytesForAnyThreadCount) {
  const int B = 3, T = 37, H = 5, D = 12;
  Rng rng(6);
  auto x = random_normal((size_t)B * T * H * D, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    auto y = x;
    cpu::rope_forward(y.data(), B, T, H, D, H * D, D, 10000.f, 3);
    auto z = y;
    cpu::rope_backward(z.data(), B, T, H, D, H * D, D, 10000.f, 3);
    y.insert(y.end(), z.begin(), z.end());
    return y;
  };
  auto a = run(2);
  EXPECT_TRUE(same_bytes(a, run(2)));
  EXPECT_TRUE(same_bytes(a, run(1)));
}

}  // namespace
