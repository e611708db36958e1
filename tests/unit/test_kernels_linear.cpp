// The bf16 linear layer against float64 on bf16-rounded operands, and edge cases of the fp32 one
// (its shapes are in the op table, tests/ops).
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"
#include "core/dtype.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_bf16.h"

using namespace mindllm;
using namespace mindllm::test;
using cpu::WeightLayout;

namespace {

using LinearCase = ops::LinearOp;

// Input x, weight W (scaled 0.3), bias b and incoming gradient R of one case, in that order.
struct LinearOperands {
  std::vector<float> x, W, b, R;
};
LinearOperands random_operands(const LinearCase& c, Rng& rng) {
  LinearOperands o;
  o.x = random_normal((size_t)c.N * c.I, rng);
  o.W = random_normal((size_t)c.O * c.I, rng, 0.3f);
  o.b = random_normal(c.O, rng);
  o.R = random_normal((size_t)c.N * c.O, rng);
  return o;
}

class LinearKernel : public ::testing::TestWithParam<LinearCase> {};

std::vector<float> bf16_rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = bf16_to_float(float_to_bf16(v[i]));
  return r;
}

std::vector<uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = float_to_bf16(v[i]);
  return r;
}

// The bf16 path: the float64 reference on bf16-rounded operands (x, W, and the incoming gradient
// R), which it must match to fp32 accumulation error; the bias and its gradient stay fp32.
TEST_P(LinearKernel, Bf16MatchesFloat64OnRoundedOperands) {
  std::string why;
  if (!cpu::bf16_gemm_available(&why)) GTEST_SKIP() << why;
  const LinearCase c = GetParam();
  Rng rng(4321 + c.N * 7 + c.I * 3 + c.O);
  auto [x, W, b, R] = random_operands(c, rng);
  auto Wbits = bf16_bits(W);
  auto xd = to_double(bf16_rounded(x)), Wd = to_double(bf16_rounded(W)), bd = to_double(b);
  auto Rd = to_double(bf16_rounded(R));

  std::vector<float> out((size_t)c.N * c.O, 7.0f);
  cpu::linear_forward_bf16(out.data(), x.data(), Wbits.data(), c.bias ? b.data() : nullptr, c.N, c.I, c.O, c.layout);
  auto want = c.forward64(xd, Wd, c.bias ? &bd : nullptr);
  EXPECT_REL_LE(out, want, kFwdTol);
  auto exact = c.forward64(to_double(x), to_double(W), c.bias ? &bd : nullptr);
  if (c.I > 8) { EXPECT_GT(rel_err(out, exact), 10 * kFwdTol) << "the operands were not rounded to bf16"; }

  auto dx0 = std::vector<float>(x.size(), std::numeric_limits<float>::quiet_NaN());
  auto dW0 = random_normal(W.size(), rng), db0 = random_normal(b.size(), rng);
  auto dx = dx0, dW = dW0, db = db0;
  cpu::linear_backward_bf16(dx.data(), dW.data(), c.bias ? db.data() : nullptr, R.data(), x.data(), Wbits.data(), c.N,
                            c.I, c.O, c.layout);
  std::vector<double> rdx, rdW, rdb;
  c.backward64(rdx, rdW, rdb, Rd, xd, Wd);
  EXPECT_REL_LE(dx, rdx, kBwdTol);
  EXPECT_REL_LE(dW, plus(dW0, rdW), kBwdTol);
  if (c.bias) {  // the bias gradient sums the fp32 incoming gradient
    c.backward64(rdx, rdW, rdb, to_double(R), xd, Wd);
    EXPECT_REL_LE(db, plus(db0, rdb), kBwdTol);
  } else {
    EXPECT_TRUE(same_bytes(db, db0));
  }
  // Null gradients are skipped.
  auto dW1 = dW0;
  cpu::linear_backward_bf16(nullptr, dW1.data(), nullptr, R.data(), x.data(), Wbits.data(), c.N, c.I, c.O, c.layout);
  EXPECT_TRUE(same_bytes(dW1, dW));
}

TEST(LinearKernel, RoundToBf16MatchesScalarRounding) {
  Rng rng(3);
  auto v = random_normal(100003, rng, 1e3f);
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f + 1.0f / 256,
                            1.0f + 3.0f / 512,
                            3.4e38f,
                            -3.4e38f,
                            1e-40f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN()};
  for (size_t i = 0; i < std::size(specials); i++) v[i * 997] = specials[i];
  std::vector<uint16_t> got(v.size());
  cpu::round_to_bf16(got.data(), v.data(), v.size());
  for (size_t i = 0; i < v.size(); i++) ASSERT_EQ(got[i], float_to_bf16(v[i])) << "element " << i << " = " << v[i];
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearKernel,
                         ::testing::Values(LinearCase{7, 13, 9, WeightLayout::out_in, true},
                                           LinearCase{7, 13, 9, WeightLayout::in_out, true},
                                           LinearCase{5, 12, 3, WeightLayout::out_in, false},
                                           LinearCase{1, 1, 1, WeightLayout::in_out, true},
                                           LinearCase{33, 64, 129, WeightLayout::out_in, true},
                                           LinearCase{33, 64, 129, WeightLayout::in_out, false},
                                           LinearCase{100, 70, 50, WeightLayout::out_in, true}));

TEST(LinearKernel, NullGradientPointersAreSkipped) {
  const int N = 6, I = 10, O = 7;
  Rng rng(99);
  auto x = random_normal((size_t)N * I, rng), W = random_normal((size_t)O * I, rng),
       R = random_normal((size_t)N * O, rng);
  for (auto layout : {WeightLayout::out_in, WeightLayout::in_out}) {
    // Full reference run.
    std::vector<float> dx(x.size(), 0.f), dW(W.size(), 0.f), db(O, 0.f);
    cpu::linear_backward(dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), N, I, O, layout);
    for (int mask = 0; mask < 8; mask++) {
      std::vector<float> ex(x.size(), 0.f), eW(W.size(), 0.f), eb(O, 0.f);
      cpu::linear_backward(mask & 1 ? ex.data() : nullptr, mask & 2 ? eW.data() : nullptr,
                           mask & 4 ? eb.data() : nullptr, R.data(), x.data(), W.data(), N, I, O, layout);
      EXPECT_TRUE(same_bytes(ex, mask & 1 ? dx : std::vector<float>(x.size(), 0.f))) << mask;
      EXPECT_TRUE(same_bytes(eW, mask & 2 ? dW : std::vector<float>(W.size(), 0.f))) << mask;
      EXPECT_TRUE(same_bytes(eb, mask & 4 ? db : std::vector<float>(O, 0.f))) << mask;
    }
  }
}

TEST(LinearKernel, DeterministicBiasGradientForAnyThreadCount) {
  const int N = 257, I = 24, O = 200;
  Rng rng(5);
  auto x = random_normal((size_t)N * I, rng), W = random_normal((size_t)O * I, rng),
       R = random_normal((size_t)N * O, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> dx(x.size(), 0.5f), dW(W.size(), 0.5f), db(O, 0.5f), out((size_t)N * O);
    cpu::linear_forward(out.data(), x.data(), W.data(), db.data(), N, I, O, WeightLayout::out_in);
    cpu::linear_backward(dx.data(), dW.data(), db.data(), R.data(), x.data(), W.data(), N, I, O, WeightLayout::out_in);
    return std::vector<std::vector<float>>{out, dx, dW, db};
  };
  auto a = run(2), b = run(2), c = run(1);
  for (int i = 0; i < 4; i++) EXPECT_TRUE(same_bytes(a[i], b[i])) << "run-to-run, tensor " << i;
  EXPECT_TRUE(same_bytes(a[3], c[3])) << "dbias must not depend on the thread count";
}

}  // namespace
