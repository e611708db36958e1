// LayerNorm and RMSNorm forward/backward against float64 references and finite differences.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/norm.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

constexpr float kEps = 1e-5f;

// Float64 LayerNorm (bias may be null); also returns mean and rstd.
std::vector<double> ref_layernorm(const std::vector<double>& x, const std::vector<double>& w,
                                  const std::vector<double>* b, int N, int C, std::vector<double>* mean = nullptr,
                                  std::vector<double>* rstd = nullptr) {
  std::vector<double> out((size_t)N * C);
  if (mean) mean->resize(N);
  if (rstd) rstd->resize(N);
  for (int n = 0; n < N; n++) {
    const double* r = x.data() + (size_t)n * C;
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += r[c];
    m /= C;
    for (int c = 0; c < C; c++) v += (r[c] - m) * (r[c] - m);
    double rs = 1.0 / std::sqrt(v / C + kEps);
    for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (r[c] - m) * rs * w[c] + (b ? (*b)[c] : 0.0);
    if (mean) (*mean)[n] = m;
    if (rstd) (*rstd)[n] = rs;
  }
  return out;
}

std::vector<double> ref_rmsnorm(const std::vector<double>& x, const std::vector<double>& w, int N, int C,
                                std::vector<double>* rstd = nullptr) {
  std::vector<double> out((size_t)N * C);
  if (rstd) rstd->resize(N);
  for (int n = 0; n < N; n++) {
    const double* r = x.data() + (size_t)n * C;
    double ss = 0;
    for (int c = 0; c < C; c++) ss += r[c] * r[c];
    double rs = 1.0 / std::sqrt(ss / C + kEps);
    for (int c = 0; c < C; c++) out[(size_t)n * C + c] = r[c] * rs * w[c];
    if (rstd) (*rstd)[n] = rs;
  }
  return out;
}

// Analytic float64 gradients of L = sum(out * R). LayerNorm: xhat = (x-m) rs, g = R w,
// dx = rs (g - mean(g) - xhat mean(g xhat)); RMSNorm: the same without the mean(g) term.
void ref_norm_backward(bool layer, const std::vector<double>& x, const std::vector<double>& w,
                       const std::vector<double>& R, int N, int C, std::vector<double>& dx, std::vector<double>& dw,
                       std::vector<double>& db) {
  std::vector<double> mean(N, 0.0), rstd;
  if (layer) ref_layernorm(x, w, nullptr, N, C, &mean, &rstd);
  else ref_rmsnorm(x, w, N, C, &rstd);
  dx.assign((size_t)N * C, 0.0);
  dw.assign(C, 0.0);
  db.assign(C, 0.0);
  for (int n = 0; n < N; n++) {
    double mg = 0, mgx = 0;
    for (int c = 0; c < C; c++) {
      size_t i = (size_t)n * C + c;
      double xhat = (x[i] - mean[n]) * rstd[n], g = R[i] * w[c];
      mg += g;
      mgx += g * xhat;
      dw[c] += R[i] * xhat;
      db[c] += R[i];
    }
    mg /= C;
    mgx /= C;
    for (int c = 0; c < C; c++) {
      size_t i = (size_t)n * C + c;
      double xhat = (x[i] - mean[n]) * rstd[n], g = R[i] * w[c];
      dx[i] = rstd[n] * (g - (layer ? mg : 0.0) - xhat * mgx);
    }
  }
}

struct NormCase {
  int N, C;
};

class NormKernel : public ::testing::TestWithParam<NormCase> {};

TEST_P(NormKernel, LayerNormMatchesFloat64AndFiniteDifferences) {
  const auto [N, C] = GetParam();
  Rng rng(10 + N * 31 + C);
  auto x = random_normal((size_t)N * C, rng, 2.0f);
  for (int n = 0; n < N; n++) x[(size_t)n * C] += 3.0f;  // a nonzero mean per row
  auto w = random_normal(C, rng), b = random_normal(C, rng), R = random_normal((size_t)N * C, rng);
  auto xd = to_double(x), wd = to_double(w), bd = to_double(b), Rd = to_double(R);

  for (bool with_bias : {true, false}) {
    std::vector<float> out((size_t)N * C, 9.f), mean(N, 9.f), rstd(N, 9.f);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), with_bias ? b.data() : nullptr,
                           N, C, kEps);
    std::vector<double> rmean, rrstd;
    EXPECT_REL_LE(out, ref_layernorm(xd, wd, with_bias ? &bd : nullptr, N, C, &rmean, &rrstd), kFwdTol);
    EXPECT_REL_LE(mean, rmean, kFwdTol);
    EXPECT_REL_LE(rstd, rrstd, kFwdTol);

    // From zero: against the analytic float64 gradients and finite differences.
    std::vector<float> gx(x.size(), 0.f), gw(C, 0.f), gb(C, 0.f);
    cpu::layernorm_backward(gx.data(), gw.data(), with_bias ? gb.data() : nullptr, R.data(), x.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
    std::vector<double> rdx, rdw, rdb;
    ref_norm_backward(true, xd, wd, Rd, N, C, rdx, rdw, rdb);
    // C = 1: x - mean is 0 and dx is pure rounding noise of a zero gradient; skip dx there.
    if (C > 1) EXPECT_REL_LE(gx, rdx, kBwdTol);
    EXPECT_REL_LE(gw, rdw, kBwdTol);
    if (with_bias) EXPECT_REL_LE(gb, rdb, kBwdTol);
    if (with_bias && C > 1 && (size_t)N * C <= 2048) {
      auto fdx = finite_diff([&](const std::vector<double>& v) { return dot(ref_layernorm(v, wd, &bd, N, C), Rd); }, xd);
      auto fdw = finite_diff([&](const std::vector<double>& v) { return dot(ref_layernorm(xd, v, &bd, N, C), Rd); }, wd);
      auto fdb = finite_diff([&](const std::vector<double>& v) { return dot(ref_layernorm(xd, wd, &v, N, C), Rd); }, bd);
      EXPECT_REL_LE(gx, fdx, kFdTol);
      EXPECT_REL_LE(gw, fdw, kFdTol);
      EXPECT_REL_LE(gb, fdb, kFdTol);
    }

    // Accumulates (+=) onto nonzero gradients.
    auto dx0 = random_normal(x.size(), rng), dw0 = random_normal(C, rng), db0 = random_normal(C, rng);
    auto dx = dx0, dw = dw0, db = db0;
    cpu::layernorm_backward(dx.data(), dw.data(), with_bias ? db.data() : nullptr, R.data(), x.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
    EXPECT_REL_LE(dx, plus(dx0, to_double(gx)), 1e-6);
    EXPECT_REL_LE(dw, plus(dw0, to_double(gw)), 1e-6);
    if (with_bias) {
      EXPECT_REL_LE(db, plus(db0, to_double(gb)), 1e-6);
    } else {
      EXPECT_TRUE(same_bytes(db, db0));
    }

    // dinp may be null: parameter gradients are unchanged by that.
    auto ew = dw0, eb = db0;
    cpu::layernorm_backward(nullptr, ew.data(), with_bias ? eb.data() : nullptr, R.data(), x.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
    EXPECT_TRUE(same_bytes(ew, dw));
    EXPECT_TRUE(same_bytes(eb, db));
  }
}

TEST_P(NormKernel, RmsNormMatchesFloat64AndFiniteDifferences) {
  const auto [N, C] = GetParam();
  Rng rng(20 + N * 31 + C);
  auto x = random_normal((size_t)N * C, rng, 2.0f);
  auto w = random_normal(C, rng), R = random_normal((size_t)N * C, rng);
  auto xd = to_double(x), wd = to_double(w), Rd = to_double(R);

  std::vector<float> out((size_t)N * C, 9.f), rstd(N, 9.f);
  cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kEps);
  std::vector<double> rrstd;
  EXPECT_REL_LE(out, ref_rmsnorm(xd, wd, N, C, &rrstd), kFwdTol);
  EXPECT_REL_LE(rstd, rrstd, kFwdTol);

  std::vector<float> gx(x.size(), 0.f), gw(C, 0.f);
  cpu::rmsnorm_backward(gx.data(), gw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  std::vector<double> rdx, rdw, rdb;
  ref_norm_backward(false, xd, wd, Rd, N, C, rdx, rdw, rdb);
  // C = 1: y = w x / sqrt(x^2 + eps) is flat (dy/dx ~ eps / |x|^3), so float32 dx is all
  // cancellation noise; skip dx there.
  if (C > 1) EXPECT_REL_LE(gx, rdx, kBwdTol);
  EXPECT_REL_LE(gw, rdw, kBwdTol);
  if (C > 1 && (size_t)N * C <= 2048) {
    auto fdx = finite_diff([&](const std::vector<double>& v) { return dot(ref_rmsnorm(v, wd, N, C), Rd); }, xd);
    auto fdw = finite_diff([&](const std::vector<double>& v) { return dot(ref_rmsnorm(xd, v, N, C), Rd); }, wd);
    EXPECT_REL_LE(gx, fdx, kFdTol);
    EXPECT_REL_LE(gw, fdw, kFdTol);
  }

  auto dx0 = random_normal(x.size(), rng), dw0 = random_normal(C, rng);
  auto dx = dx0, dw = dw0;
  cpu::rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_REL_LE(dx, plus(dx0, to_double(gx)), 1e-6);
  EXPECT_REL_LE(dw, plus(dw0, to_double(gw)), 1e-6);

  auto ew = dw0;
  cpu::rmsnorm_backward(nullptr, ew.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_TRUE(same_bytes(ew, dw));
}

INSTANTIATE_TEST_SUITE_P(Shapes, NormKernel,
                         ::testing::Values(NormCase{5, 12}, NormCase{37, 64}, NormCase{3, 1}, NormCase{1, 7},
                                           NormCase{64, 100}, NormCase{33, 768}));

TEST(NormKernel, LargeOffsetRowsStayAccurate) {
  // LayerNorm of rows with a large common offset (mean >> std): two-pass statistics keep it exact.
  const int N = 4, C = 256;
  Rng rng(3);
  auto x = random_normal((size_t)N * C, rng);
  for (auto& v : x) v += 1000.0f;
  std::vector<float> w(C, 1.0f), out(x.size()), mean(N), rstd(N);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, N, C, kEps);
  auto xd = to_double(x), wd = to_double(w);
  EXPECT_REL_LE(out, ref_layernorm(xd, wd, nullptr, N, C), 1e-4);
}

TEST(NormKernel, DeterministicRunToRun) {
  const int N = 301, C = 96;
  Rng rng(8);
  auto x = random_normal((size_t)N * C, rng), w = random_normal(C, rng), b = random_normal(C, rng),
       R = random_normal((size_t)N * C, rng);
  auto run = [&] {
    std::vector<float> out(x.size()), mean(N), rstd(N), dx(x.size(), 0.f), dw(C, 0.f), db(C, 0.f), rdx(x.size(), 0.f),
        rdw(C, 0.f), rout(x.size()), rr(N);
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, kEps);
    cpu::layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(), rstd.data(),
                            N, C);
    cpu::rmsnorm_forward(rout.data(), rr.data(), x.data(), w.data(), N, C, kEps);
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
