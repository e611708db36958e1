// Rotary embedding at long positions (float32 angles, as Hugging Face) and its determinism (its
// shapes against float64 and finite differences are in the op table, tests/ops).
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/rope.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

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
