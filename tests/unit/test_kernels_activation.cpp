// Activations (gelu_tanh, gelu_erf, silu) and the GLU at extreme inputs and with padded rows,
// elementwise against float64 and finite differences (the op table, tests/ops, covers the shapes).
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"
#include "kernels/cpu/activation.h"

using namespace mindllm;
using namespace mindllm::test;

using ops::ref_act;
using ops::ref_act_grad;

namespace {

// Inputs: normals of scale 3 plus fixed extremes (saturation, exp overflow, 0).
std::vector<float> test_inputs(size_t n, Rng& rng) {
  auto x = random_normal(n, rng, 3.0f);
  const float extremes[] = {0.0f,  -0.0f, 1e-8f, -1e-8f, 10.f,   -10.f, 30.f,
                            -30.f, 89.f,  -89.f, 100.f,  -100.f, 1e4f,  -1e4f};
  for (size_t i = 0; i < sizeof(extremes) / sizeof(float) && i < n; i++) x[i] = extremes[i];
  return x;
}

// Elementwise: |got - want| <= tol * (1 + |want|) (an activation's output spans many magnitudes).
::testing::AssertionResult elementwise_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                                             const char* what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " != " << want.size();
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); i++) {
    double e = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
    if (!(e <= worst)) worst = e, at = i;
  }
  if (std::getenv("MINDLLM_TEST_VERBOSE")) std::printf("  [err] %-40s %.3g\n", what, worst);
  if (worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": error " << worst << " > " << tol << " at " << at << " got "
                                       << got[at] << " want " << want[at];
}

class ActivationKernel : public ::testing::TestWithParam<Activation> {};

TEST_P(ActivationKernel, ForwardBackwardMatchFloat64) {
  const Activation act = GetParam();
  const size_t n = 1001;
  Rng rng(4 + (int)act);
  auto x = test_inputs(n, rng);
  auto dout = random_normal(n, rng);
  std::vector<float> out(n, 3.f);
  cpu::activation_forward(out.data(), x.data(), n, act);
  std::vector<double> want(n), want_grad(n);
  for (size_t i = 0; i < n; i++) want[i] = ref_act(x[i], act);
  EXPECT_TRUE(elementwise_close(out, want, kFwdTol, "activation_forward"));

  auto din0 = random_normal(n, rng);
  auto din = din0;
  cpu::activation_backward(din.data(), dout.data(), x.data(), n, act);
  for (size_t i = 0; i < n; i++) want_grad[i] = din0[i] + dout[i] * ref_act_grad(x[i], act);
  EXPECT_TRUE(elementwise_close(din, want_grad, kBwdTol, "activation_backward (accumulated)"));

  // Finite differences of the float64 activation (skip |x| huge where h is below float spacing).
  std::vector<double> fd(n), got(n);
  const double h = 1e-6;
  for (size_t i = 0; i < n; i++) {
    double xi = x[i];
    fd[i] = dout[i] * (ref_act(xi + h, act) - ref_act(xi - h, act)) / (2 * h);
    got[i] = (double)din[i] - din0[i];
  }
  std::vector<float> gotf(got.begin(), got.end());
  EXPECT_TRUE(elementwise_close(gotf, fd, kFdTol, "activation_backward vs finite differences"));
}

TEST_P(ActivationKernel, GluForwardBackwardOverwrite) {
  const Activation act = GetParam();
  const int N = 37, H = 21;
  // ld = H: separate gate and up arrays; ld = 2H: one fused [N, 2H] gate|up buffer;
  // ld = 2H + 3: fused with row padding that must stay untouched.
  for (int ld : {H, 2 * H, 2 * H + 3}) {
    const bool fused = ld != H;
    Rng rng(40 + (int)act + ld);
    const size_t nbuf = (size_t)N * ld * (fused ? 1 : 2);
    auto in = test_inputs(nbuf, rng);
    for (size_t i = 0; i < nbuf; i++)
      if (fused && (i % ld) >= (size_t)H) in[i] = rng.normal();  // up: moderate values
    const float* gate = in.data();
    const float* up = fused ? in.data() + H : in.data() + (size_t)N * H;
    auto dout = random_normal((size_t)N * H, rng);
    std::vector<float> out((size_t)N * H, 3.f);
    cpu::glu_forward(out.data(), gate, up, N, H, ld, act);

    std::vector<double> want((size_t)N * H), wg(want.size()), wu(want.size()), fg(want.size()), fu(want.size());
    const double h = 1e-6;
    for (int n = 0; n < N; n++)
      for (int i = 0; i < H; i++) {
        size_t j = (size_t)n * H + i;
        double g = gate[(size_t)n * ld + i], u = up[(size_t)n * ld + i], d = dout[j];
        want[j] = ref_act(g, act) * u;
        wg[j] = d * u * ref_act_grad(g, act);
        wu[j] = d * ref_act(g, act);
        fg[j] = d * (ref_act(g + h, act) * u - ref_act(g - h, act) * u) / (2 * h);
        fu[j] = d * (ref_act(g, act) * (u + h) - ref_act(g, act) * (u - h)) / (2 * h);
      }
    EXPECT_TRUE(elementwise_close(out, want, kFwdTol, "glu_forward"));

    // dgate, dup are overwritten (start from garbage), in gate/up's layout.
    constexpr float kSentinel = -777.f;
    std::vector<float> dbuf(nbuf, 123.f);
    for (size_t i = 0; i < nbuf; i++)
      if (fused && (i % ld) >= (size_t)(2 * H)) dbuf[i] = kSentinel;
    float* dgate = dbuf.data();
    float* dup = fused ? dbuf.data() + H : dbuf.data() + (size_t)N * H;
    cpu::glu_backward(dgate, dup, dout.data(), gate, up, N, H, ld, act);
    std::vector<float> gg((size_t)N * H), gu((size_t)N * H);
    for (int n = 0; n < N; n++)
      for (int i = 0; i < H; i++) {
        gg[(size_t)n * H + i] = dgate[(size_t)n * ld + i];
        gu[(size_t)n * H + i] = dup[(size_t)n * ld + i];
      }
    EXPECT_TRUE(elementwise_close(gg, wg, kBwdTol, "glu_backward dgate"));
    EXPECT_TRUE(elementwise_close(gu, wu, kBwdTol, "glu_backward dup"));
    EXPECT_TRUE(elementwise_close(gg, fg, kFdTol, "glu_backward dgate vs finite differences"));
    EXPECT_TRUE(elementwise_close(gu, fu, kFdTol, "glu_backward dup vs finite differences"));
    for (size_t i = 0; i < nbuf; i++)
      if (fused && (i % ld) >= (size_t)(2 * H)) { ASSERT_EQ(dbuf[i], kSentinel) << "padding at " << i; }
  }
}

TEST_P(ActivationKernel, SameBytesForAnyThreadCount) {
  const Activation act = GetParam();
  const size_t n = 10007;
  Rng rng(9);
  auto x = test_inputs(n, rng), up = random_normal(n, rng), dout = random_normal(n, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> out(n), din(n, 1.f), glu(n), dg(n), du(n);
    cpu::activation_forward(out.data(), x.data(), n, act);
    cpu::activation_backward(din.data(), dout.data(), x.data(), n, act);
    // GLU as 10007 = 1 x 10007 would be one row; use 1 row here and rows in the GLU test.
    cpu::glu_forward(glu.data(), x.data(), up.data(), 1, (int)n, (int)n, act);
    cpu::glu_backward(dg.data(), du.data(), dout.data(), x.data(), up.data(), 1, (int)n, (int)n, act);
    for (auto* v : {&din, &glu, &dg, &du}) out.insert(out.end(), v->begin(), v->end());
    return out;
  };
  auto a = run(2);
  EXPECT_TRUE(same_bytes(a, run(2)));
  EXPECT_TRUE(same_bytes(a, run(1)));
  for (float v : a) ASSERT_TRUE(std::isfinite(v));
}

INSTANTIATE_TEST_SUITE_P(All, ActivationKernel,
                         ::testing::Values(Activation::gelu_tanh, Activation::gelu_erf, Activation::silu),
                         [](const auto& info) {
                           switch (info.param) {
                             case Activation::gelu_tanh: return std::string("gelu_tanh");
                             case Activation::gelu_erf: return std::string("gelu_erf");
                             default: return std::string("silu");
                           }
                         });

}  // namespace
