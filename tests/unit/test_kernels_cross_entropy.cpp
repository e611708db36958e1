// Softmax cross-entropy: exact ignored rows, the statistics path, determinism (its shapes against
// float64 and finite differences are in the op table, tests/ops).
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cross_entropy.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

// What the op table (tests/ops) does not check: ignored rows are exactly 0, and the path with the
// forward's softmax statistics (also in place) gives the same bytes as the one without.
TEST(CrossEntropyKernel, StatsPathAndIgnoredRowsAreExact) {
  for (const ops::CrossEntropyOp c : {ops::CrossEntropyOp{7, 37, 2.f, 0.f}, ops::CrossEntropyOp{6, 50, 1.f, 1000.f}}) {
    const ops::Tensors in = ops::case_inputs(c);
    const auto& x = in.f.at("logits");
    const auto& tg = in.i.at("targets");
    const float scale = c.kScale;
    std::vector<float> loss(c.N, 9.f), d(x.size(), 9.f);
    cpu::cross_entropy_forward(loss.data(), x.data(), tg.data(), c.N, c.V);
    cpu::cross_entropy_backward(d.data(), x.data(), tg.data(), scale, c.N, c.V);
    for (int n = 0; n < c.N; n++)
      if (tg[n] < 0) {
        EXPECT_EQ(loss[n], 0.0f);
        for (int i = 0; i < c.V; i++) ASSERT_EQ(d[(size_t)n * c.V + i], 0.0f);
      }
    std::vector<cpu::SoftmaxStats> stats(c.N);
    std::vector<float> loss2(c.N, 9.f);
    cpu::cross_entropy_forward(loss2.data(), x.data(), tg.data(), c.N, c.V, stats.data());
    EXPECT_TRUE(same_bytes(loss2, loss));
    std::vector<float> d2 = x;
    cpu::cross_entropy_backward(d2.data(), d2.data(), tg.data(), scale, c.N, c.V, stats.data());
    EXPECT_TRUE(same_bytes(d2, d));
  }
}

TEST(CrossEntropyKernel, SameBytesForAnyThreadCount) {
  const int N = 33, V = 1001;
  Rng rng(3);
  auto x = random_normal((size_t)N * V, rng, 2.f);
  std::vector<int32_t> tg(N);
  for (auto& t : tg) t = (int32_t)rng.below(V);
  tg[5] = -1;
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> loss(N), d(x.size());
    cpu::cross_entropy_forward(loss.data(), x.data(), tg.data(), N, V);
    cpu::cross_entropy_backward(d.data(), x.data(), tg.data(), 0.5f, N, V);
    d.insert(d.end(), loss.begin(), loss.end());
    return d;
  };
  auto a = run(2);
  EXPECT_TRUE(same_bytes(a, run(2)));
  EXPECT_TRUE(same_bytes(a, run(1)));
}

}  // namespace
