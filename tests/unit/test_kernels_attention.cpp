// Causal attention (GQA, local windows, strided q/k/v) against float64 references and finite
// differences.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/attention.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

struct AttnCase {
  int B, T, Hq, Hkv, D, window;
  bool neo_scale;  // scale 1 (GPT-Neo) instead of 1/sqrt(D)
  bool fused;      // q, k, v interleaved in one buffer with padded rows (as a fused QKV GEMM writes)
};

double scale_of(const AttnCase& c) { return c.neo_scale ? 1.0 : 1.0 / std::sqrt((double)c.D); }

bool allowed(const AttnCase& c, int t, int s) { return s <= t && (c.window <= 0 || t - s < c.window); }

// Logical tensors: q[(b*T+t)*Hq+h][D], k and v with Hkv heads, out like q.
struct Ref {
  std::vector<double> out, probs;
  std::vector<double> stats;  // per (b, h, t): max score, 1 / sum of exponentials
};

Ref ref_forward(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                const AttnCase& c) {
  Ref r;
  r.out.assign((size_t)c.B * c.T * c.Hq * c.D, 0.0);
  r.probs.assign((size_t)c.B * c.Hq * c.T * c.T, 0.0);
  r.stats.assign((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats, 0.0);
  const int group = c.Hq / c.Hkv;
  const double sc = scale_of(c);
  std::vector<double> sc_row(c.T);
  for (int b = 0; b < c.B; b++)
    for (int h = 0; h < c.Hq; h++) {
      int hk = h / group;
      for (int t = 0; t < c.T; t++) {
        const double* qr = &q[((size_t)(b * c.T + t) * c.Hq + h) * c.D];
        double mx = -INFINITY;
        for (int s = 0; s <= t; s++) {
          if (!allowed(c, t, s)) continue;
          const double* kr = &k[((size_t)(b * c.T + s) * c.Hkv + hk) * c.D];
          double d = 0;
          for (int i = 0; i < c.D; i++) d += qr[i] * kr[i];
          sc_row[s] = sc * d;
          mx = std::max(mx, sc_row[s]);
        }
        double sum = 0;
        for (int s = 0; s <= t; s++)
          if (allowed(c, t, s)) sum += std::exp(sc_row[s] - mx);
        double* P = &r.probs[(((size_t)b * c.Hq + h) * c.T + t) * c.T];
        double* st = &r.stats[(((size_t)b * c.Hq + h) * c.T + t) * cpu::kAttentionStats];
        st[0] = mx, st[1] = 1.0 / sum;
        double* o = &r.out[((size_t)(b * c.T + t) * c.Hq + h) * c.D];
        for (int s = 0; s <= t; s++) {
          if (!allowed(c, t, s)) continue;
          P[s] = std::exp(sc_row[s] - mx) / sum;
          const double* vr = &v[((size_t)(b * c.T + s) * c.Hkv + hk) * c.D];
          for (int i = 0; i < c.D; i++) o[i] += P[s] * vr[i];
        }
      }
    }
  return r;
}

// Analytic float64 gradients of L = sum(out * R): dP = R·V^T, dS = P ⊙ (dP - rowsum(P ⊙ dP)),
// dq = scale dS·K, dk = scale dS^T·Q, dv = P^T·R (dk, dv summed over the query heads of a group).
void ref_backward(const std::vector<double>& R, const std::vector<double>& q, const std::vector<double>& k,
                  const std::vector<double>& v, const AttnCase& c, std::vector<double>& dq, std::vector<double>& dk,
                  std::vector<double>& dv) {
  Ref f = ref_forward(q, k, v, c);
  dq.assign(q.size(), 0.0);
  dk.assign(k.size(), 0.0);
  dv.assign(v.size(), 0.0);
  const int group = c.Hq / c.Hkv;
  const double sc = scale_of(c);
  std::vector<double> dP(c.T);
  for (int b = 0; b < c.B; b++)
    for (int h = 0; h < c.Hq; h++) {
      int hk = h / group;
      auto qi = [&](int t) { return ((size_t)(b * c.T + t) * c.Hq + h) * c.D; };
      auto ki = [&](int t) { return ((size_t)(b * c.T + t) * c.Hkv + hk) * c.D; };
      for (int t = 0; t < c.T; t++) {
        const double* P = &f.probs[(((size_t)b * c.Hq + h) * c.T + t) * c.T];
        double rowdot = 0;
        for (int s = 0; s <= t; s++) {
          double d = 0;
          for (int i = 0; i < c.D; i++) d += R[qi(t) + i] * v[ki(s) + i];
          dP[s] = d;
          rowdot += P[s] * d;
        }
        for (int s = 0; s <= t; s++) {
          double dS = P[s] * (dP[s] - rowdot);
          for (int i = 0; i < c.D; i++) {
            dq[qi(t) + i] += sc * dS * k[ki(s) + i];
            dk[ki(s) + i] += sc * dS * q[qi(t) + i];
            dv[ki(s) + i] += P[s] * R[qi(t) + i];
          }
        }
      }
    }
}

// Physical layout of q, k, v (and of dq, dk, dv) and of out / dout.
struct Layout {
  int ldq, ldk, ldv, ldo, qoff, koff, voff;
  size_t qkv_rows_floats;  // total floats of the q/k/v buffer (one buffer when fused)
};

Layout layout_of(const AttnCase& c) {
  Layout l;
  if (c.fused) {
    int w = (c.Hq + 2 * c.Hkv) * c.D + 3;  // 3 floats of padding per row
    l = {w, w, w, c.Hq * c.D + 5, 0, c.Hq * c.D, (c.Hq + c.Hkv) * c.D, 0};
    l.qkv_rows_floats = (size_t)c.B * c.T * w;
  } else {
    // Separate contiguous tensors placed one after another in one allocation.
    size_t nq = (size_t)c.B * c.T * c.Hq * c.D, nk = (size_t)c.B * c.T * c.Hkv * c.D;
    l = {c.Hq * c.D, c.Hkv * c.D, c.Hkv * c.D, c.Hq * c.D, 0, (int)nq, (int)(nq + nk), 0};
    l.qkv_rows_floats = nq + 2 * nk;
  }
  return l;
}

cpu::AttentionShape shape_of(const AttnCase& c, const Layout& l) {
  return {c.B, c.T, c.Hq, c.Hkv, c.D, l.ldq, l.ldk, l.ldv, l.ldo, (float)scale_of(c), c.window};
}

// Index of logical element (row, head, i) of a tensor with `heads` heads in the physical buffer.
size_t phys(const AttnCase& c, const Layout& l, char which, int row, int head, int i) {
  if (c.fused) {
    int off = which == 'q' ? l.qoff : which == 'k' ? l.koff : l.voff;
    return (size_t)row * l.ldq + off + (size_t)head * c.D + i;
  }
  int heads = which == 'q' ? c.Hq : c.Hkv;
  size_t off = which == 'q' ? l.qoff : which == 'k' ? l.koff : l.voff;
  return off + ((size_t)row * heads + head) * c.D + i;
}

std::vector<double> gather(const std::vector<float>& buf, const AttnCase& c, const Layout& l, char which) {
  int heads = which == 'q' ? c.Hq : c.Hkv;
  std::vector<double> r((size_t)c.B * c.T * heads * c.D);
  for (int row = 0; row < c.B * c.T; row++)
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < c.D; i++) r[((size_t)row * heads + h) * c.D + i] = buf[phys(c, l, which, row, h, i)];
  return r;
}

std::vector<float> gather_out(const std::vector<float>& buf, const AttnCase& c, const Layout& l) {
  std::vector<float> r((size_t)c.B * c.T * c.Hq * c.D);
  for (int row = 0; row < c.B * c.T; row++)
    for (int j = 0; j < c.Hq * c.D; j++) r[(size_t)row * c.Hq * c.D + j] = buf[(size_t)row * l.ldo + j];
  return r;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

class AttentionKernel : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionKernel, ForwardBackwardMatchFloat64AndFiniteDifferences) {
  const AttnCase c = GetParam();
  const Layout l = layout_of(c);
  const auto s = shape_of(c, l);
  Rng rng(1000 + c.T * 13 + c.Hkv * 7 + c.D + c.window);
  constexpr float kSentinel = -12345.0f;

  auto qkv = random_normal(l.qkv_rows_floats, rng);
  const float* q = qkv.data() + (c.fused ? 0 : l.qoff);
  const float* k = qkv.data() + l.koff;
  const float* v = qkv.data() + l.voff;
  auto qd = gather(qkv, c, l, 'q'), kd = gather(qkv, c, l, 'k'), vd = gather(qkv, c, l, 'v');

  const size_t out_floats = (size_t)c.B * c.T * l.ldo;
  std::vector<float> out(out_floats, kSentinel), stats((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats, 7.f);
  cpu::attention_forward(out.data(), stats.data(), q, k, v, s);
  Ref want = ref_forward(qd, kd, vd, c);
  EXPECT_REL_LE(gather_out(out, c, l), want.out, kFwdTol);
  for (size_t i = 0; i < stats.size(); i++)
    ASSERT_NEAR(stats[i], want.stats[i], kFwdTol * (std::fabs(want.stats[i]) + 1.0)) << "stats " << i;
  for (int row = 0; row < c.B * c.T; row++)
    for (int j = c.Hq * c.D; j < l.ldo; j++) ASSERT_EQ(out[(size_t)row * l.ldo + j], kSentinel) << "out padding";

  // Backward: dout in out's layout; dq, dk, dv in q/k/v's layout, overwritten (start as garbage,
  // padding must survive).
  std::vector<float> dout(out_floats, 0.f);
  auto R = random_normal((size_t)c.B * c.T * c.Hq * c.D, rng);
  for (int row = 0; row < c.B * c.T; row++)
    for (int j = 0; j < c.Hq * c.D; j++) dout[(size_t)row * l.ldo + j] = R[(size_t)row * c.Hq * c.D + j];
  auto Rd = to_double(R);
  std::vector<float> dqkv = random_normal(l.qkv_rows_floats, rng, 100.f);
  if (c.fused)
    for (int row = 0; row < c.B * c.T; row++)
      for (int j = (c.Hq + 2 * c.Hkv) * c.D; j < l.ldq; j++) dqkv[(size_t)row * l.ldq + j] = kSentinel;
  cpu::attention_backward(dqkv.data() + l.qoff, dqkv.data() + l.koff, dqkv.data() + l.voff, dout.data(),
                          stats.data(), q, k, v, s);
  std::vector<double> rdq, rdk, rdv;
  ref_backward(Rd, qd, kd, vd, c, rdq, rdk, rdv);
  auto gq = to_float(gather(dqkv, c, l, 'q')), gk = to_float(gather(dqkv, c, l, 'k')),
       gv = to_float(gather(dqkv, c, l, 'v'));
  EXPECT_REL_LE(gq, rdq, kBwdTol);
  EXPECT_REL_LE(gk, rdk, kBwdTol);
  EXPECT_REL_LE(gv, rdv, kBwdTol);
  if (c.fused) {
    for (int row = 0; row < c.B * c.T; row++)
      for (int j = (c.Hq + 2 * c.Hkv) * c.D; j < l.ldq; j++)
        ASSERT_EQ(dqkv[(size_t)row * l.ldq + j], kSentinel) << "dqkv padding";
  }

  // Finite differences of the float64 forward (bounded work).
  double work = (double)(qd.size() + kd.size() + vd.size()) * c.B * c.Hq * c.T * c.T * c.D;
  if (work < 3e8) {
    auto L = [&](const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& cc) {
      return dot(ref_forward(a, b, cc, c).out, Rd);
    };
    EXPECT_REL_LE(gq, finite_diff([&](const std::vector<double>& x) { return L(x, kd, vd); }, qd), kFdTol);
    EXPECT_REL_LE(gk, finite_diff([&](const std::vector<double>& x) { return L(qd, x, vd); }, kd), kFdTol);
    EXPECT_REL_LE(gv, finite_diff([&](const std::vector<double>& x) { return L(qd, kd, x); }, vd), kFdTol);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionKernel,
                         ::testing::Values(AttnCase{2, 11, 4, 4, 12, 0, false, true},   // MHA, fused
                                           AttnCase{2, 11, 4, 2, 12, 3, false, true},   // GQA 2, window < T
                                           AttnCase{2, 11, 4, 1, 12, 50, false, false}, // GQA 4 (MQA), window > T
                                           AttnCase{1, 9, 4, 2, 64, 0, false, false},   // head dim 64
                                           AttnCase{2, 17, 2, 2, 16, 4, true, true},    // GPT-Neo: scale 1, local
                                           AttnCase{3, 1, 2, 1, 5, 0, false, true},     // T = 1
                                           AttnCase{2, 67, 8, 2, 64, 0, false, true},   // larger, analytic only
                                           AttnCase{1, 45, 8, 8, 64, 16, false, false},
                                           AttnCase{1, 150, 2, 1, 80, 70, false, true}));  // blocks past the window, D tail

TEST(AttentionKernel, SameBytesForAnyThreadCount) {
  const AttnCase c{2, 37, 4, 2, 64, 0, false, true};
  const Layout l = layout_of(c);
  const auto s = shape_of(c, l);
  Rng rng(17);
  auto qkv = random_normal(l.qkv_rows_floats, rng), dout = random_normal((size_t)c.B * c.T * l.ldo, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> out((size_t)c.B * c.T * l.ldo, 0.f), stats((size_t)c.B * c.Hq * c.T * cpu::kAttentionStats),
        d(qkv.size(), 0.f);
    cpu::attention_forward(out.data(), stats.data(), qkv.data(), qkv.data() + l.koff, qkv.data() + l.voff, s);
    cpu::attention_backward(d.data(), d.data() + l.koff, d.data() + l.voff, dout.data(), stats.data(), qkv.data(),
                            qkv.data() + l.koff, qkv.data() + l.voff, s);
    out.insert(out.end(), stats.begin(), stats.end());
    out.insert(out.end(), d.begin(), d.end());
    return out;
  };
  auto a = run(2);
  EXPECT_TRUE(same_bytes(a, run(2)));
  EXPECT_TRUE(same_bytes(a, run(1)));
}

}  // namespace
