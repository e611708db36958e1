// Softmax cross-entropy forward/backward against float64 references and finite differences.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/cross_entropy.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

std::vector<double> ref_losses(const std::vector<double>& x, const std::vector<int32_t>& tg, int N, int V) {
  std::vector<double> l(N, 0.0);
  for (int n = 0; n < N; n++) {
    if (tg[n] < 0) continue;
    const double* r = &x[(size_t)n * V];
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++) mx = std::max(mx, r[i]);
    for (int i = 0; i < V; i++) s += std::exp(r[i] - mx);
    l[n] = std::log(s) + mx - r[tg[n]];
  }
  return l;
}

struct CeCase {
  int N, V;
  float logit_scale, logit_offset;
};

class CrossEntropyKernel : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyKernel, MatchesFloat64AndFiniteDifferences) {
  const CeCase c = GetParam();
  Rng rng(500 + c.N + c.V);
  auto x = random_normal((size_t)c.N * c.V, rng, c.logit_scale);
  for (auto& v : x) v += c.logit_offset;
  std::vector<int32_t> tg(c.N);
  for (auto& t : tg) t = (int32_t)rng.below(c.V);
  tg[0] = c.V - 1;
  if (c.N > 2) tg[1] = -1;     // ignored
  if (c.N > 4) tg[3] = -100;   // ignored (PyTorch's ignore_index)
  auto xd = to_double(x);

  std::vector<float> loss(c.N, 9.f);
  cpu::cross_entropy_forward(loss.data(), x.data(), tg.data(), c.N, c.V);
  auto want = ref_losses(xd, tg, c.N, c.V);
  EXPECT_REL_LE(loss, want, kFwdTol);
  for (int n = 0; n < c.N; n++)
    if (tg[n] < 0) { EXPECT_EQ(loss[n], 0.0f); }

  // Backward of L = scale * sum(losses): overwrites dlogits (start from garbage).
  const float scale = 1.0f / 7.0f;
  std::vector<float> d = random_normal(x.size(), rng, 50.f);
  cpu::cross_entropy_backward(d.data(), x.data(), tg.data(), scale, c.N, c.V);
  std::vector<double> rd(x.size(), 0.0);
  for (int n = 0; n < c.N; n++) {
    if (tg[n] < 0) continue;
    const double* r = &xd[(size_t)n * c.V];
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < c.V; i++) mx = std::max(mx, r[i]);
    for (int i = 0; i < c.V; i++) s += std::exp(r[i] - mx);
    for (int i = 0; i < c.V; i++) rd[(size_t)n * c.V + i] = scale * (std::exp(r[i] - mx) / s - (i == tg[n]));
  }
  EXPECT_REL_LE(d, rd, kBwdTol);
  for (int n = 0; n < c.N; n++)
    if (tg[n] < 0) {
      for (int i = 0; i < c.V; i++) ASSERT_EQ(d[(size_t)n * c.V + i], 0.0f);
    }

  // With the forward's softmax statistics: the same losses and the same gradient, to the bit,
  // also in place.
  std::vector<cpu::SoftmaxStats> stats(c.N);
  std::vector<float> loss2(c.N, 9.f);
  cpu::cross_entropy_forward(loss2.data(), x.data(), tg.data(), c.N, c.V, stats.data());
  EXPECT_TRUE(same_bytes(loss2, loss));
  std::vector<float> d2 = x;
  cpu::cross_entropy_backward(d2.data(), d2.data(), tg.data(), scale, c.N, c.V, stats.data());
  EXPECT_TRUE(same_bytes(d2, d));

  if (x.size() <= 4000) {
    auto fd = finite_diff(
        [&](const std::vector<double>& v) {
          double s = 0;
          for (double l : ref_losses(v, tg, c.N, c.V)) s += l;
          return scale * s;
        },
        xd);
    EXPECT_REL_LE(d, fd, kFdTol);
  }

  // In place: dlogits == logits gives the same bytes.
  auto inplace = x;
  cpu::cross_entropy_backward(inplace.data(), inplace.data(), tg.data(), scale, c.N, c.V);
  EXPECT_TRUE(same_bytes(inplace, d));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyKernel,
                         ::testing::Values(CeCase{7, 37, 2.f, 0.f}, CeCase{5, 1, 1.f, 0.f}, CeCase{9, 1003, 3.f, 0.f},
                                           CeCase{6, 50, 1.f, 1000.f},  // large logits: no overflow
                                           CeCase{4, 33, 30.f, -50.f},  // peaky softmax
                                           CeCase{65, 8191, 1.f, 0.f}));

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
