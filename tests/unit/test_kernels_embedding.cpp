// embedding_forward / embedding_backward against float64 references and finite differences.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/embedding.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

std::vector<double> ref_forward(const std::vector<int32_t>& tok, const std::vector<double>& wte,
                                const std::vector<double>* wpe, int B, int T, int C, int pos_offset) {
  std::vector<double> out((size_t)B * T * C);
  for (int i = 0; i < B * T; i++)
    for (int c = 0; c < C; c++)
      out[(size_t)i * C + c] =
          wte[(size_t)tok[i] * C + c] + (wpe ? (*wpe)[(size_t)(i % T + pos_offset) * C + c] : 0.0);
  return out;
}

struct EmbCase {
  int B, T, C, V, P, pos_offset;  // P: rows of wpe (0: none)
};

class EmbeddingKernel : public ::testing::TestWithParam<EmbCase> {};

TEST_P(EmbeddingKernel, MatchesFloat64AndFiniteDifferences) {
  const EmbCase e = GetParam();
  Rng rng(77 + e.C + e.T);
  std::vector<int32_t> tok((size_t)e.B * e.T);
  for (auto& t : tok) t = (int32_t)rng.below(e.V);
  tok[0] = e.V - 1;  // the last row of the table
  if (tok.size() > 3) tok[2] = tok[1];  // repeated ids accumulate
  auto wte = random_normal((size_t)e.V * e.C, rng), wpe = random_normal((size_t)std::max(e.P, 1) * e.C, rng);
  auto R = random_normal((size_t)e.B * e.T * e.C, rng);
  auto wted = to_double(wte), wped = to_double(wpe), Rd = to_double(R);
  const bool has_pe = e.P > 0;

  std::vector<float> out(R.size(), 5.f);
  cpu::embedding_forward(out.data(), tok.data(), wte.data(), has_pe ? wpe.data() : nullptr, e.B, e.T, e.C,
                         e.pos_offset);
  auto want = ref_forward(tok, wted, has_pe ? &wped : nullptr, e.B, e.T, e.C, e.pos_offset);
  EXPECT_REL_LE(out, want, kFwdTol);

  auto dwte0 = random_normal(wte.size(), rng), dwpe0 = random_normal(wpe.size(), rng);
  auto dwte = dwte0, dwpe = dwpe0;
  cpu::embedding_backward(dwte.data(), has_pe ? dwpe.data() : nullptr, R.data(), tok.data(), e.B, e.T, e.C,
                          e.pos_offset);
  // Reference: scatter-add in float64.
  std::vector<double> rte(wte.size(), 0.0), rpe(wpe.size(), 0.0);
  for (int i = 0; i < e.B * e.T; i++)
    for (int c = 0; c < e.C; c++) {
      rte[(size_t)tok[i] * e.C + c] += Rd[(size_t)i * e.C + c];
      if (has_pe) rpe[(size_t)(i % e.T + e.pos_offset) * e.C + c] += Rd[(size_t)i * e.C + c];
    }
  EXPECT_REL_LE(dwte, plus(dwte0, rte), kBwdTol);
  if (has_pe) EXPECT_REL_LE(dwpe, plus(dwpe0, rpe), kBwdTol);
  else EXPECT_TRUE(same_bytes(dwpe, dwpe0));

  if (wte.size() <= 2048) {
    auto fte = finite_diff(
        [&](const std::vector<double>& v) {
          return dot(ref_forward(tok, v, has_pe ? &wped : nullptr, e.B, e.T, e.C, e.pos_offset), Rd);
        },
        wted);
    EXPECT_REL_LE(minus(dwte, dwte0), fte, kFdTol);
    if (has_pe) {
      auto fpe = finite_diff(
          [&](const std::vector<double>& v) { return dot(ref_forward(tok, wted, &v, e.B, e.T, e.C, e.pos_offset), Rd); },
          wped);
      EXPECT_REL_LE(minus(dwpe, dwpe0), fpe, kFdTol);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingKernel,
                         ::testing::Values(EmbCase{2, 5, 12, 11, 9, 3}, EmbCase{2, 5, 12, 11, 0, 0},
                                           EmbCase{3, 17, 64, 13, 17, 0}, EmbCase{1, 1, 1, 1, 1, 0},
                                           EmbCase{4, 33, 100, 50, 40, 7}, EmbCase{2, 7, 17, 1000, 0, 0}));

TEST(EmbeddingKernel, BackwardSameBytesForAnyThreadCount) {
  // Many repeated ids (vocab 5): a racy or thread-order-dependent scatter-add would show here.
  const int B = 4, T = 63, C = 70, V = 5;
  Rng rng(11);
  std::vector<int32_t> tok((size_t)B * T);
  for (auto& t : tok) t = (int32_t)rng.below(V);
  auto dout = random_normal((size_t)B * T * C, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> dwte((size_t)V * C, 0.25f), dwpe((size_t)T * C, 0.25f);
    cpu::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), B, T, C);
    dwte.insert(dwte.end(), dwpe.begin(), dwpe.end());
    return dwte;
  };
  auto a = run(2), b = run(2), c = run(1), d = run(3);
  EXPECT_TRUE(same_bytes(a, b));
  EXPECT_TRUE(same_bytes(a, c));
  EXPECT_TRUE(same_bytes(a, d));
}

}  // namespace
