// LayerNorm and RMSNorm edge cases: null dinp, rows with a large offset, determinism (their
// shapes against float64 and finite differences are in the op table, tests/ops).
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"
#include "kernels/cpu/norm.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

using ops::kNormEps;

// dinp may be null: the parameter gradients are the same bytes as with it.
TEST(NormKernel, NullDinpLeavesParameterGradients) {
  const int N = 7, C = 33;
  Rng rng(4);
  auto x = random_normal((size_t)N * C, rng), w = random_normal(C, rng), R = random_normal((size_t)N * C, rng);
  std::vector<float> out(x.size()), mean(N), rstd(N), dx(x.size(), 0.f);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, N, C, kNormEps);
  std::vector<float> dw(C, 0.5f), db(C, 0.5f), ew = dw, eb = db;
  cpu::layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                          C);
  cpu::layernorm_backward(nullptr, ew.data(), eb.data(), R.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C);
  EXPECT_TRUE(same_bytes(ew, dw));
  EXPECT_TRUE(same_bytes(eb, db));
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kNormEps);
  std::vector<float> rw(C, 0.5f), erw = rw;
  cpu::rmsnorm_backward(dx.data(), rw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  cpu::rmsnorm_backward(nullptr, erw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_TRUE(same_bytes(erw, rw));
}

TEST(NormKernel, LargeOffsetRowsStayAccurate) {
  // LayerNorm of rows with a large common offset (mean >> std): two-pass statistics keep it exact.
  const int N = 4, C = 256;
  Rng rng(3);
  auto x = random_normal((size_t)N * C, rng);
  for (auto& v : x) v += 1000.0f;
  std::vector<float> w(C, 1.0f), out(x.size()), mean(N), rstd(N);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, N, C, kNormEps);
  auto xd = to_double(x), wd = to_double(w);
  EXPECT_REL_LE(out, ops::ref_layernorm(xd, wd, nullptr, N, C), 1e-4);
}

TEST(NormKernel, DeterministicRunToRun) {
  const int N = 301, C = 96;
  Rng rng(8);
  auto x = random_normal((size_t)N * C, rng), w = random_normal(C, rng), b = random_normal(C, rng),
       R = random_normal((size_t)N * C, rng);
  auto run = [&] {
    std::vector<float> out(x.size()), mean(N), rstd(N), dx(x.size(), 0.f), dw(C, 0.f), db(C, 0.f), rdx(x.size(), 0.f),
        rdw(C, 0.f), rout(x.size()), rr(N);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, kNormEps);
    cpu::layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                            C);
    cpu::rmsnorm_forward(rout.data(), rr.data(), x.data(), w.data(), N, C, kNormEps);
    cpu::rmsnorm_backward(rdx.data(), rdw.data(), R.data(), x.data(), w.data(), rr.data(), N, C);
    return std::vector<std::vector<float>>{out, dx, dw, db, rout, rdx, rdw};
  };
  auto a = run(), b2 = run();
  for (size_t i = 0; i < a.size(); i++) EXPECT_TRUE(same_bytes(a[i], b2[i])) << i;
  // Forward and dinp are per row: independent of the thread count too.
  std::vector<std::vector<float>> c;
  {
    ScopedThreads st(1);
    c = run();
  }
  for (size_t i : {0, 1, 4, 5}) EXPECT_TRUE(same_bytes(a[i], c[i])) << i;
}

}  // namespace
