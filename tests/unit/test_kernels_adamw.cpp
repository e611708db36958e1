// AdamW against a float64 transcription of torch.optim.AdamW (single-tensor path), and
// sum_of_squares.
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"
#include "kernels/cpu/adamw.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

using ops::torch_adamw_step;

struct AdamCase {
  size_t n;
  float lr, beta1, beta2, eps, wd, grad_scale;
};

class AdamWKernel : public ::testing::TestWithParam<AdamCase> {};

TEST_P(AdamWKernel, TenStepsMatchTorchFormulaInFloat64) {
  const AdamCase c = GetParam();
  Rng rng(321 + c.n);
  auto p = random_normal(c.n, rng);
  std::vector<float> m(c.n, 0.f), v(c.n, 0.f);
  auto pd = to_double(p);
  std::vector<double> md(c.n, 0.0), vd(c.n, 0.0);
  for (int step = 1; step <= 10; step++) {
    // Gradients of mixed magnitudes, some exactly zero, one huge.
    auto g = random_normal(c.n, rng, step % 2 ? 1.0f : 1e-3f);
    g[0] = 0.0f;
    if (c.n > 1) g[1] = 1e3f;
    std::vector<double> gd(c.n);
    for (size_t i = 0; i < c.n; i++) gd[i] = (double)g[i] * c.grad_scale;
    cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), c.n,
                      cpu::AdamWParams{c.lr, c.beta1, c.beta2, c.eps, c.wd, step}, c.grad_scale);
    // The reference runs with the float32 hyperparameters the kernel received.
    torch_adamw_step(pd, gd, md, vd, c.lr, c.beta1, c.beta2, c.eps, c.wd, step);
  }
  // Compare the parameter *updates* (p - p0 is ~1e-2 of |p|), so check p, m, v each relative
  // to their own magnitude.
  EXPECT_REL_LE(p, pd, 1e-6);
  EXPECT_REL_LE(m, md, kFwdTol);
  EXPECT_REL_LE(v, vd, kFwdTol);
}

INSTANTIATE_TEST_SUITE_P(Hyper, AdamWKernel,
                         ::testing::Values(AdamCase{1000, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 1.0f},
                                           AdamCase{1, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f},
                                           AdamCase{4097, 6e-4f, 0.9f, 0.95f, 1e-6f, 0.1f, 0.25f},  // clipping
                                           AdamCase{70000, 1e-2f, 0.8f, 0.99f, 1e-8f, 0.01f, 1.0f}));

TEST(AdamWKernel, UpdateStepsAreAccurate) {
  // A stricter view than comparing p: the accumulated update p - p0 after 10 steps.
  const size_t n = 513;
  Rng rng(12);
  auto p = random_normal(n, rng);
  auto p0 = p;
  std::vector<float> m(n, 0.f), v(n, 0.f);
  auto pd = to_double(p);
  std::vector<double> md(n, 0.0), vd(n, 0.0);
  for (int step = 1; step <= 10; step++) {
    auto g = random_normal(n, rng);
    cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, step});
    torch_adamw_step(pd, to_double(g), md, vd, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
  }
  std::vector<double> upd(n);
  for (size_t i = 0; i < n; i++) upd[i] = pd[i] - p0[i];
  EXPECT_REL_LE(minus(p, p0), upd, 3e-4);  // 10 roundings of p ~ 3 (ulp 2.4e-7) vs updates ~1e-2
}

TEST(AdamWKernel, SameBytesForAnyThreadCount) {
  const size_t n = 100003;
  Rng rng(13);
  auto p = random_normal(n, rng), g = random_normal(n, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    auto q = p;
    std::vector<float> m(n, 0.01f), v(n, 0.02f);
    cpu::adamw_update(q.data(), g.data(), m.data(), v.data(), n, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3}, 0.5f);
    q.insert(q.end(), m.begin(), m.end());
    q.insert(q.end(), v.begin(), v.end());
    return q;
  };
  auto a = run(2);
  EXPECT_TRUE(same_bytes(a, run(2)));
  EXPECT_TRUE(same_bytes(a, run(1)));
}

TEST(SumOfSquaresKernel, MatchesFloat64AndSameBytesForAnyThreadCount) {
  for (size_t n : {(size_t)0, (size_t)1, (size_t)1000, (size_t)65536, (size_t)3 * 65536 + 17}) {
    Rng rng(n + 1);
    auto x = random_normal(n, rng, 3.f);
    long double want = 0;
    for (float f : x) want += (long double)f * f;
    double a, b, c;
    {
      ScopedThreads st(2);
      a = cpu::sum_of_squares(x.data(), n);
      b = cpu::sum_of_squares(x.data(), n);
    }
    {
      ScopedThreads st(1);
      c = cpu::sum_of_squares(x.data(), n);
    }
    EXPECT_NEAR(a, (double)want, 1e-11 * (double)want + 1e-300) << n;
    EXPECT_EQ(0, std::memcmp(&a, &b, sizeof a)) << n;
    EXPECT_EQ(0, std::memcmp(&a, &c, sizeof a)) << n;
    {
      ScopedThreads st(3);
      double d = cpu::sum_of_squares(x.data(), n);
      EXPECT_EQ(0, std::memcmp(&a, &d, sizeof a)) << n;
    }
  }
}

}  // namespace
