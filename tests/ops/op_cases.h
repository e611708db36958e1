// The op-case table: every kernel op with the shapes it is checked at, run the same way on every
// backend (in the spirit of llama.cpp's test-backend-ops). Each case
//   - makes its named inputs (random, seeded by the case name),
//   - runs forward and backward on a backend K (`run<K>`: CpuBackend below, CudaBackend in
//     tests/cuda/test_ops_table.cpp) and returns its named outputs and gradients,
//   - computes the same outputs in float64 (`reference`), and
//   - for gradient mode, names each gradient's input and the scalar loss whose gradient it is
//     (`grads`, `loss64`): small cases are checked against central finite differences too.
// An output whose name is also an input (e.g. "dW") is a gradient that accumulates (+=) onto
// that input; the reference gives the part added. Outputs that are overwritten start as NaN.
// Runners: tests/unit/test_ops_table.cpp (CPU vs float64) and tests/cuda/test_ops_table.cpp
// (GPU fp32 and bf16 vs CPU). How to add a case: tests/README.md.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../unit/kernel_test_util.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_paged.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "core/dtype.h"

namespace mindllm::ops {

using cpu::WeightLayout;
using test::random_normal;

struct Tensors {
  std::map<std::string, std::vector<float>> f;
  std::map<std::string, std::vector<int32_t>> i;
};
using Out = std::map<std::string, std::vector<float>>;
using Ref = std::map<std::string, std::vector<double>>;
using Grads = std::vector<std::pair<std::string, std::string>>;  // {gradient output, input}

inline std::vector<float> nans(size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

// A backend forwards every op (same signature on each backend) to its namespace.
#define MINDLLM_OP_FORWARD(ns, fn)    \
  template <class... Args>            \
  static void fn(Args&&... a) {       \
    ns::fn(std::forward<Args>(a)...); \
  }
// clang-format 14 re-indents this list differently on every pass: kept as written.
// clang-format off
#define MINDLLM_OPS_OF(ns)                                                                              \
  MINDLLM_OP_FORWARD(ns, linear_forward) MINDLLM_OP_FORWARD(ns, linear_backward)                      \
  MINDLLM_OP_FORWARD(ns, layernorm_forward) MINDLLM_OP_FORWARD(ns, layernorm_backward)                \
  MINDLLM_OP_FORWARD(ns, rmsnorm_forward) MINDLLM_OP_FORWARD(ns, rmsnorm_backward)                    \
  MINDLLM_OP_FORWARD(ns, activation_forward) MINDLLM_OP_FORWARD(ns, activation_backward)              \
  MINDLLM_OP_FORWARD(ns, glu_forward) MINDLLM_OP_FORWARD(ns, glu_backward)                            \
  MINDLLM_OP_FORWARD(ns, rope_forward) MINDLLM_OP_FORWARD(ns, rope_backward)                          \
  MINDLLM_OP_FORWARD(ns, embedding_forward) MINDLLM_OP_FORWARD(ns, embedding_backward)                \
  MINDLLM_OP_FORWARD(ns, cross_entropy_forward) MINDLLM_OP_FORWARD(ns, cross_entropy_backward)        \
  MINDLLM_OP_FORWARD(ns, adamw_update)
// clang-format on

struct PagedInputs;

// The CPU backend: host vectors; activations fp32. A backend K provides A (activation type),
// act/f32/i32 (a buffer from host floats or ints), host (back to floats), the ops, and attention
// with its saved state (CPU: softmax statistics; CUDA: probabilities and scratch).
struct CpuBackend {
  using A = float;
  static constexpr bool bf16 = false;
  static std::vector<float> act(const std::vector<float>& v) { return v; }
  static std::vector<float> f32(const std::vector<float>& v) { return v; }
  static std::vector<int32_t> i32(const std::vector<int32_t>& v) { return v; }
  static std::vector<float> host(const std::vector<float>& v) { return v; }
  MINDLLM_OPS_OF(cpu)
  struct AttnState {
    std::vector<float> stats;
  };
  static AttnState attention_state(const cpu::AttentionShape& s) {
    return {std::vector<float>((size_t)s.B * s.Hq * s.T * cpu::kAttentionStats)};
  }
  static void attention_forward(float* out, AttnState& st, const float* q, const float* k, const float* v,
                                const cpu::AttentionShape& s) {
    cpu::attention_forward(out, st.stats.data(), q, k, v, s);
  }
  static void attention_backward(float* dq, float* dk, float* dv, AttnState& st, const float* dout, const float* q,
                                 const float* k, const float* v, const cpu::AttentionShape& s) {
    cpu::attention_backward(dq, dk, dv, dout, st.stats.data(), q, k, v, s);
  }
  static std::vector<float> attention_paged(const PagedInputs& in);  // below
};

// ---------------------------------------------------------------- linear
struct LinearOp {
  int N, I, O;
  WeightLayout layout;
  bool bias;
  std::string name() const {
    return "linear_" + std::to_string(N) + "x" + std::to_string(I) + "x" + std::to_string(O) +
           (layout == WeightLayout::out_in ? "_outin" : "_inout") + (bias ? "_bias" : "");
  }
  Tensors inputs(Rng& rng) const {
    Tensors t;
    t.f["x"] = random_normal((size_t)N * I, rng);
    t.f["W"] = random_normal((size_t)O * I, rng, 0.3f);
    t.f["b"] = random_normal(O, rng);
    t.f["dout"] = random_normal((size_t)N * O, rng);
    t.f["dW"] = random_normal((size_t)O * I, rng);
    t.f["db"] = random_normal(O, rng);
    return t;
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto x = K::act(in.f.at("x")), W = K::act(in.f.at("W")), b = K::act(in.f.at("b")), dout = K::act(in.f.at("dout"));
    auto out = K::act(nans((size_t)N * O)), dx = K::act(nans((size_t)N * I));
    auto dW = K::f32(in.f.at("dW")), db = K::f32(in.f.at("db"));
    K::linear_forward(out.data(), x.data(), W.data(), bias ? b.data() : nullptr, N, I, O, layout);
    K::linear_backward(dx.data(), dW.data(), bias ? db.data() : nullptr, dout.data(), x.data(), W.data(), N, I, O,
                       layout);
    return {{"out", K::host(out)}, {"dx", K::host(dx)}, {"dW", K::host(dW)}, {"db", K::host(db)}};
  }
  double w_at(const std::vector<double>& W, int o, int i) const {
    return layout == WeightLayout::out_in ? W[(size_t)o * I + i] : W[(size_t)i * O + o];
  }
  std::vector<double> forward64(const std::vector<double>& x, const std::vector<double>& W,
                                const std::vector<double>* b) const {
    std::vector<double> out((size_t)N * O);
    for (int n = 0; n < N; n++)
      for (int o = 0; o < O; o++) {
        double s = b ? (*b)[o] : 0.0;
        for (int i = 0; i < I; i++) s += x[(size_t)n * I + i] * w_at(W, o, i);
        out[(size_t)n * O + o] = s;
      }
    return out;
  }
  // Analytic float64 gradients of L = sum(out * R).
  void backward64(std::vector<double>& dx, std::vector<double>& dW, std::vector<double>& db,
                  const std::vector<double>& R, const std::vector<double>& x, const std::vector<double>& W) const {
    dx.assign((size_t)N * I, 0.0);
    dW.assign((size_t)O * I, 0.0);
    db.assign(O, 0.0);
    for (int n = 0; n < N; n++)
      for (int o = 0; o < O; o++) {
        double r = R[(size_t)n * O + o];
        db[o] += r;
        for (int i = 0; i < I; i++) {
          dx[(size_t)n * I + i] += r * w_at(W, o, i);
          dW[layout == WeightLayout::out_in ? (size_t)o * I + i : (size_t)i * O + o] += r * x[(size_t)n * I + i];
        }
      }
  }
  Ref reference(const Ref& in, const Tensors&) const {
    Ref r;
    r["out"] = forward64(in.at("x"), in.at("W"), bias ? &in.at("b") : nullptr);
    backward64(r["dx"], r["dW"], r["db"], in.at("dout"), in.at("x"), in.at("W"));
    if (!bias) r["db"].assign(O, 0.0);
    return r;
  }
  double loss64(const Ref& in, const Tensors&) const {
    return test::dot(forward64(in.at("x"), in.at("W"), &in.at("b")), in.at("dout"));
  }
  Grads grads() const {
    Grads g{{"dx", "x"}, {"dW", "W"}};
    if (bias) g.push_back({"db", "b"});
    return g;
  }
};

// ---------------------------------------------------------------- layernorm / rmsnorm
constexpr float kNormEps = 1e-5f;

// Float64 LayerNorm (bias may be null); also returns mean and rstd.
inline std::vector<double> ref_layernorm(const std::vector<double>& x, const std::vector<double>& w,
                                         const std::vector<double>* b, int N, int C,
                                         std::vector<double>* mean = nullptr, std::vector<double>* rstd = nullptr) {
  std::vector<double> out((size_t)N * C);
  if (mean) mean->resize(N);
  if (rstd) rstd->resize(N);
  for (int n = 0; n < N; n++) {
    const double* r = x.data() + (size_t)n * C;
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += r[c];
    m /= C;
    for (int c = 0; c < C; c++) v += (r[c] - m) * (r[c] - m);
    double rs = 1.0 / std::sqrt(v / C + kNormEps);
    for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (r[c] - m) * rs * w[c] + (b ? (*b)[c] : 0.0);
    if (mean) (*mean)[n] = m;
    if (rstd) (*rstd)[n] = rs;
  }
  return out;
}

inline std::vector<double> ref_rmsnorm(const std::vector<double>& x, const std::vector<double>& w, int N, int C,
                                       std::vector<double>* rstd = nullptr) {
  std::vector<double> out((size_t)N * C);
  if (rstd) rstd->resize(N);
  for (int n = 0; n < N; n++) {
    const double* r = x.data() + (size_t)n * C;
    double ss = 0;
    for (int c = 0; c < C; c++) ss += r[c] * r[c];
    double rs = 1.0 / std::sqrt(ss / C + kNormEps);
    for (int c = 0; c < C; c++) out[(size_t)n * C + c] = r[c] * rs * w[c];
    if (rstd) (*rstd)[n] = rs;
  }
  return out;
}

// Analytic float64 gradients of L = sum(out * R). LayerNorm: xhat = (x-m) rs, g = R w,
// dx = rs (g - mean(g) - xhat mean(g xhat)); RMSNorm: the same without the mean(g) term.
inline void ref_norm_backward(bool layer, const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& R, int N, int C, std::vector<double>& dx,
                              std::vector<double>& dw, std::vector<double>& db) {
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

// C >= 2: at C = 1 the normalised value is flat in x and dx is float32 rounding noise.
struct NormOp {
  int N, C;
  bool rms, bias;
  std::string name() const {
    return std::string(rms ? "rmsnorm_" : "layernorm_") + std::to_string(N) + "x" + std::to_string(C) +
           (bias ? "_bias" : "");
  }
  Tensors inputs(Rng& rng) const {
    Tensors t;
    auto x = random_normal((size_t)N * C, rng, 2.0f);
    for (int n = 0; n < N; n++) x[(size_t)n * C] += 3.0f;  // a nonzero mean per row
    t.f["x"] = x;
    t.f["w"] = random_normal(C, rng);
    t.f["b"] = random_normal(C, rng);
    t.f["dout"] = random_normal((size_t)N * C, rng);
    t.f["dx"] = random_normal((size_t)N * C, rng);  // dinp accumulates too
    t.f["dw"] = random_normal(C, rng);
    t.f["db"] = random_normal(C, rng);
    return t;
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto x = K::act(in.f.at("x")), w = K::act(in.f.at("w")), b = K::act(in.f.at("b")), dout = K::act(in.f.at("dout"));
    auto out = K::act(nans((size_t)N * C)), dx = K::act(in.f.at("dx"));
    auto mean = K::f32(nans(N)), rstd = K::f32(nans(N)), dw = K::f32(in.f.at("dw")), db = K::f32(in.f.at("db"));
    if (rms) {
      K::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kNormEps);
      K::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), N, C);
      return {{"out", K::host(out)}, {"rstd", K::host(rstd)}, {"dx", K::host(dx)}, {"dw", K::host(dw)}};
    }
    K::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), bias ? b.data() : nullptr, N, C,
                         kNormEps);
    K::layernorm_backward(dx.data(), dw.data(), bias ? db.data() : nullptr, dout.data(), x.data(), w.data(),
                          mean.data(), rstd.data(), N, C);
    return {{"out", K::host(out)}, {"mean", K::host(mean)}, {"rstd", K::host(rstd)},
            {"dx", K::host(dx)},   {"dw", K::host(dw)},     {"db", K::host(db)}};
  }
  std::vector<double> forward64(const Ref& in, std::vector<double>* mean = nullptr,
                                std::vector<double>* rstd = nullptr) const {
    return rms ? ref_rmsnorm(in.at("x"), in.at("w"), N, C, rstd)
               : ref_layernorm(in.at("x"), in.at("w"), bias ? &in.at("b") : nullptr, N, C, mean, rstd);
  }
  Ref reference(const Ref& in, const Tensors&) const {
    Ref r;
    r["out"] = forward64(in, &r["mean"], &r["rstd"]);
    ref_norm_backward(!rms, in.at("x"), in.at("w"), in.at("dout"), N, C, r["dx"], r["dw"], r["db"]);
    if (rms) r.erase("mean"), r.erase("db");
    if (!bias && !rms) r["db"].assign(C, 0.0);
    return r;
  }
  double loss64(const Ref& in, const Tensors&) const { return test::dot(forward64(in), in.at("dout")); }
  Grads grads() const {
    Grads g{{"dx", "x"}, {"dw", "w"}};
    if (bias && !rms) g.push_back({"db", "b"});
    return g;
  }
};

// ---------------------------------------------------------------- activations and the GLU
inline double ref_act(double x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::gelu_erf: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case Activation::silu: return x / (1.0 + std::exp(-x));
  }
  return 0.0;
}

inline double ref_act_grad(double x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: {
      double k = std::sqrt(2.0 / M_PI), u = k * (x + 0.044715 * x * x * x), th = std::tanh(u);
      return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case Activation::gelu_erf:
      return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
    case Activation::silu: {
      double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 + x * (1.0 - s));
    }
  }
  return 0.0;
}

inline const char* act_name(Activation a) {
  return a == Activation::gelu_tanh ? "gelu_tanh" : a == Activation::gelu_erf ? "gelu_erf" : "silu";
}

struct ActivationOp {
  size_t n;
  Activation act;
  std::string name() const { return std::string("act_") + act_name(act) + "_" + std::to_string(n); }
  Tensors inputs(Rng& rng) const {
    return {{{"x", random_normal(n, rng, 3.0f)}, {"dout", random_normal(n, rng)}, {"dx", random_normal(n, rng)}}, {}};
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto x = K::act(in.f.at("x")), dout = K::act(in.f.at("dout")), out = K::act(nans(n)), dx = K::act(in.f.at("dx"));
    K::activation_forward(out.data(), x.data(), n, act);
    K::activation_backward(dx.data(), dout.data(), x.data(), n, act);
    return {{"out", K::host(out)}, {"dx", K::host(dx)}};
  }
  Ref reference(const Ref& in, const Tensors&) const {
    Ref r{{"out", std::vector<double>(n)}, {"dx", std::vector<double>(n)}};
    for (size_t i = 0; i < n; i++) {
      r["out"][i] = ref_act(in.at("x")[i], act);
      r["dx"][i] = in.at("dout")[i] * ref_act_grad(in.at("x")[i], act);
    }
    return r;
  }
  double loss64(const Ref& in, const Tensors& t) const { return test::dot(reference(in, t)["out"], in.at("dout")); }
  Grads grads() const { return {{"dx", "x"}}; }
};

// gate and up in one buffer gu of 2·N·H floats: fused, rows [gate | up] with ld = 2H (one GEMM's
// output); separate, all of gate then all of up with ld = H.
struct GluOp {
  int N, H;
  bool fused;
  Activation act;
  std::string name() const {
    return std::string("glu_") + act_name(act) + "_" + std::to_string(N) + "x" + std::to_string(H) +
           (fused ? "_fused" : "");
  }
  int ld() const { return fused ? 2 * H : H; }
  size_t gate_at(int n, int h) const { return (size_t)n * ld() + h; }
  size_t up_at(int n, int h) const { return fused ? (size_t)n * ld() + H + h : (size_t)N * H + (size_t)n * H + h; }
  Tensors inputs(Rng& rng) const {
    return {{{"gu", random_normal((size_t)2 * N * H, rng, 2.0f)}, {"dout", random_normal((size_t)N * H, rng)}}, {}};
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto gu = K::act(in.f.at("gu")), dout = K::act(in.f.at("dout"));
    auto out = K::act(nans((size_t)N * H)), dgu = K::act(nans((size_t)2 * N * H));
    const size_t up = fused ? H : (size_t)N * H;
    K::glu_forward(out.data(), gu.data(), gu.data() + up, N, H, ld(), act);
    K::glu_backward(dgu.data(), dgu.data() + up, dout.data(), gu.data(), gu.data() + up, N, H, ld(), act);
    return {{"out", K::host(out)}, {"dgu", K::host(dgu)}};
  }
  Ref reference(const Ref& in, const Tensors&) const {
    const auto &gu = in.at("gu"), &R = in.at("dout");
    Ref r{{"out", std::vector<double>((size_t)N * H)}, {"dgu", std::vector<double>(gu.size())}};
    for (int n = 0; n < N; n++)
      for (int h = 0; h < H; h++) {
        double g = gu[gate_at(n, h)], u = gu[up_at(n, h)], d = R[(size_t)n * H + h];
        r["out"][(size_t)n * H + h] = ref_act(g, act) * u;
        r["dgu"][gate_at(n, h)] = d * u * ref_act_grad(g, act);
        r["dgu"][up_at(n, h)] = d * ref_act(g, act);
      }
    return r;
  }
  double loss64(const Ref& in, const Tensors& t) const { return test::dot(reference(in, t)["out"], in.at("dout")); }
  Grads grads() const { return {{"dgu", "gu"}}; }
};

// ---------------------------------------------------------------- rope
// `first`: where the rotated heads start in a row (K sits after Q in a packed qkv row).
// Position ids of packed rows (sft --packing): samples of seg, 1 and 2·seg + 1 positions in turn,
// each from 0, the last one cut at T. Empty for seg 0 (positions 0..T-1 in every row).
inline std::vector<int32_t> packed_positions(int B, int T, int seg) {
  std::vector<int32_t> pos;
  if (seg == 0) return pos;
  const int lens[3] = {seg, 1, 2 * seg + 1};
  for (int b = 0; b < B; b++)
    for (int t = 0, k = b; t < T; k++)
      for (int p = 0; p < lens[k % 3] && t < T; p++, t++) pos.push_back(p);
  return pos;
}

struct RopeOp {
  int B, T, H, head_dim, row_stride, rot_dim, pos_offset;
  float theta;
  int first = 0;
  int packed = 0;  // > 0: position ids of packed rows (packed_positions)
  std::string name() const {
    return "rope_" + std::to_string(B) + "x" + std::to_string(T) + "x" + std::to_string(H) + "_hd" +
           std::to_string(head_dim) + "_ld" + std::to_string(row_stride) + "_rot" + std::to_string(rot_dim) + "_pos" +
           std::to_string(pos_offset) + "_theta" + std::to_string((int)theta) +
           (first ? "_at" + std::to_string(first) : "") + (packed ? "_packed" + std::to_string(packed) : "");
  }
  size_t n() const { return (size_t)B * T * row_stride; }
  Tensors inputs(Rng& rng) const { return {{{"x", random_normal(n(), rng)}, {"dout", random_normal(n(), rng)}}, {}}; }
  template <class K>
  Out run(const Tensors& in) const {
    auto x = K::act(in.f.at("x")), d = K::act(in.f.at("dout"));
    auto pos = K::i32(packed_positions(B, T, packed));
    const int32_t* p = packed ? pos.data() : nullptr;
    K::rope_forward(x.data() + first, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, p);
    K::rope_backward(d.data() + first, B, T, H, head_dim, row_stride, rot_dim, theta, pos_offset, p);
    return {{"out", K::host(x)}, {"dx", K::host(d)}};
  }
  // Float64 rotate_half over the whole strided buffer (elements outside the heads pass through);
  // sign -1: the inverse rotation (the backward).
  std::vector<double> rotate(const std::vector<double>& x, double sign) const {
    std::vector<double> y = x;
    const int half = rot_dim / 2;
    const std::vector<int32_t> ids = packed_positions(B, T, packed);
    for (int r = 0; r < B * T; r++) {
      double pos = (packed ? ids[r] : r % T) + pos_offset;
      for (int h = 0; h < H; h++) {
        size_t base = (size_t)r * row_stride + first + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
          double a = pos * std::pow((double)theta, -2.0 * i / rot_dim);
          double cs = std::cos(a), sn = sign * std::sin(a);
          double u = x[base + i], v = x[base + i + half];
          y[base + i] = u * cs - v * sn;
          y[base + i + half] = v * cs + u * sn;
        }
      }
    }
    return y;
  }
  Ref reference(const Ref& in, const Tensors&) const {
    return {{"out", rotate(in.at("x"), 1.0)}, {"dx", rotate(in.at("dout"), -1.0)}};
  }
  double loss64(const Ref& in, const Tensors&) const { return test::dot(rotate(in.at("x"), 1.0), in.at("dout")); }
  Grads grads() const { return {{"dx", "x"}}; }
};

// ---------------------------------------------------------------- embedding
struct EmbeddingOp {
  int B, T, C, V, P, pos_offset;  // P: rows of wpe (0: none)
  int packed = 0;                 // > 0: position ids of packed rows (packed_positions)
  std::string name() const {
    return "embedding_" + std::to_string(B) + "x" + std::to_string(T) + "x" + std::to_string(C) + "_V" +
           std::to_string(V) + "_P" + std::to_string(P) + "_pos" + std::to_string(pos_offset) +
           (packed ? "_packed" + std::to_string(packed) : "");
  }
  int position(int i) const { return (packed ? packed_positions(B, T, packed)[i] : i % T) + pos_offset; }
  Tensors inputs(Rng& rng) const {
    Tensors t;
    std::vector<int32_t> tok((size_t)B * T);
    for (size_t i = 0; i < tok.size(); i++) tok[i] = (int32_t)rng.below(i % 3 == 0 ? std::min(V, 7) : V);  // repeats
    tok[0] = V - 1;                       // the last row of the table
    if (tok.size() > 3) tok[2] = tok[1];  // repeated ids accumulate
    t.i["tokens"] = tok;
    const size_t np = (size_t)std::max(P, 1) * C;
    t.f = {{"wte", random_normal((size_t)V * C, rng)},
           {"wpe", random_normal(np, rng)},
           {"dout", random_normal((size_t)B * T * C, rng)},
           {"dwte", random_normal((size_t)V * C, rng)},
           {"dwpe", random_normal(np, rng)}};
    return t;
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto tok = K::i32(in.i.at("tokens"));
    auto wte = K::act(in.f.at("wte")), wpe = K::act(in.f.at("wpe")), dout = K::act(in.f.at("dout"));
    auto out = K::act(nans((size_t)B * T * C)), dwte = K::f32(in.f.at("dwte")), dwpe = K::f32(in.f.at("dwpe"));
    auto pos = K::i32(packed_positions(B, T, packed));
    const int32_t* p = packed ? pos.data() : nullptr;
    K::embedding_forward(out.data(), tok.data(), wte.data(), P ? wpe.data() : nullptr, B, T, C, pos_offset, p);
    K::embedding_backward(dwte.data(), P ? dwpe.data() : nullptr, dout.data(), tok.data(), B, T, C, pos_offset, p);
    return {{"out", K::host(out)}, {"dwte", K::host(dwte)}, {"dwpe", K::host(dwpe)}};
  }
  std::vector<double> forward64(const Ref& in, const Tensors& t) const {
    const auto& tok = t.i.at("tokens");
    const auto &wte = in.at("wte"), &wpe = in.at("wpe");
    std::vector<double> out((size_t)B * T * C);
    for (int i = 0; i < B * T; i++)
      for (int c = 0; c < C; c++)
        out[(size_t)i * C + c] = wte[(size_t)tok[i] * C + c] + (P ? wpe[(size_t)position(i) * C + c] : 0.0);
    return out;
  }
  Ref reference(const Ref& in, const Tensors& t) const {
    const auto& tok = t.i.at("tokens");
    const auto& R = in.at("dout");
    Ref r{{"out", forward64(in, t)},
          {"dwte", std::vector<double>(in.at("wte").size())},
          {"dwpe", std::vector<double>(in.at("wpe").size())}};
    for (int i = 0; i < B * T; i++)
      for (int c = 0; c < C; c++) {
        r["dwte"][(size_t)tok[i] * C + c] += R[(size_t)i * C + c];
        if (P) r["dwpe"][(size_t)position(i) * C + c] += R[(size_t)i * C + c];
      }
    return r;
  }
  double loss64(const Ref& in, const Tensors& t) const { return test::dot(forward64(in, t), in.at("dout")); }
  Grads grads() const {
    Grads g{{"dwte", "wte"}};
    if (P) g.push_back({"dwpe", "wpe"});
    return g;
  }
};

// ---------------------------------------------------------------- attention
// Logical tensors q [B*T, Hq, D], k and v [B*T, Hkv, D], out like q. `fused` runs the kernel on
// one interleaved qkv buffer with 3 floats of padding per row and an out stride of Hq·D + 5 (as a
// fused QKV GEMM writes); otherwise q, k, v are separate contiguous tensors.
struct AttentionOp {
  int B, T, Hq, Hkv, D, window;
  bool neo_scale;  // scale 1 (GPT-Neo) instead of 1/sqrt(D)
  bool fused;
  float input_scale = 1.0f;  // < 1 keeps unscaled (GPT-Neo) scores of a large D from saturating
  // Packed rows (sft --packing): segment lengths, cycled from entry b in row b (the last one cut at
  // T); a position attends only within its segment. Empty: one sequence per row.
  std::vector<int> segs = {};
  std::string name() const {
    std::string seg_name;
    for (int n : segs) seg_name += (seg_name.empty() ? "_seg" : "-") + std::to_string(n);
    return "attention_" + std::to_string(B) + "x" + std::to_string(T) + "_Hq" + std::to_string(Hq) + "_Hkv" +
           std::to_string(Hkv) + "_D" + std::to_string(D) + "_win" + std::to_string(window) +
           (neo_scale ? "_scale1" : "") + (fused ? "_fused" : "") + (input_scale != 1.0f ? "_small" : "") + seg_name;
  }
  // The first position of each row's segment, [B*T] (empty without segments).
  std::vector<int32_t> seg_start() const {
    std::vector<int32_t> st;
    if (segs.empty()) return st;
    for (int b = 0; b < B; b++)
      for (int t = 0, k = b; t < T; k++)
        for (int i = 0, start = t; i < segs[k % segs.size()] && t < T; i++, t++) st.push_back(start);
    return st;
  }
  double scale() const { return neo_scale ? 1.0 : 1.0 / std::sqrt((double)D); }
  size_t nq() const { return (size_t)B * T * Hq * D; }
  size_t nk() const { return (size_t)B * T * Hkv * D; }
  int ldqkv() const { return (Hq + 2 * Hkv) * D + 3; }
  int ldo() const { return fused ? Hq * D + 5 : Hq * D; }
  cpu::AttentionShape shape() const {
    const int lq = fused ? ldqkv() : Hq * D, lk = fused ? ldqkv() : Hkv * D;
    return {B, T, Hq, Hkv, D, lq, lk, lk, ldo(), (float)scale(), window};
  }
  // Offsets of q, k, v in the one physical buffer, and its size.
  size_t off(char which) const {
    if (fused) return which == 'q' ? 0 : which == 'k' ? (size_t)Hq * D : (size_t)(Hq + Hkv) * D;
    return which == 'q' ? 0 : which == 'k' ? nq() : nq() + nk();
  }
  size_t phys_size() const { return fused ? (size_t)B * T * ldqkv() : nq() + 2 * nk(); }
  size_t phys(char which, int row, int j) const {  // j < heads * D
    if (fused) return (size_t)row * ldqkv() + off(which) + j;
    return off(which) + (size_t)row * (which == 'q' ? Hq : Hkv) * D + j;
  }
  std::vector<float> pack(const Tensors& in) const {
    std::vector<float> p(phys_size(), 0.5f);
    for (char w : {'q', 'k', 'v'}) {
      const auto& t = in.f.at(std::string(1, w));
      const int width = (w == 'q' ? Hq : Hkv) * D;
      for (int row = 0; row < B * T; row++)
        for (int j = 0; j < width; j++) p[phys(w, row, j)] = t[(size_t)row * width + j];
    }
    return p;
  }
  std::vector<float> unpack(const std::vector<float>& p, char which) const {
    const int width = (which == 'q' ? Hq : Hkv) * D;
    std::vector<float> t((size_t)B * T * width);
    for (int row = 0; row < B * T; row++)
      for (int j = 0; j < width; j++) t[(size_t)row * width + j] = p[phys(which, row, j)];
    return t;
  }
  // Fused: out and dq/dk/dv start as NaN with kPad in the padding of their rows, which must stay.
  static constexpr float kPad = 7.0f;
  bool is_pad(size_t i, int ld, int width) const { return fused && (int)(i % ld) >= width; }
  std::vector<float> poisoned_rows(size_t n, int ld, int width) const {
    std::vector<float> v = nans(n);
    for (size_t i = 0; i < n; i++)
      if (is_pad(i, ld, width)) v[i] = kPad;
    return v;
  }
  size_t pad_count() const { return fused ? (size_t)B * T * (ldo() - Hq * D + 3) : 0; }
  std::vector<float> strided(const std::vector<float>& x, int from, int to) const {  // rows of Hq·D
    std::vector<float> r((size_t)B * T * to, 0.25f);
    for (int row = 0; row < B * T; row++)
      for (int j = 0; j < Hq * D; j++) r[(size_t)row * to + j] = x[(size_t)row * from + j];
    return r;
  }
  Tensors inputs(Rng& rng) const {
    return {{{"q", random_normal(nq(), rng, input_scale)},
             {"k", random_normal(nk(), rng, input_scale)},
             {"v", random_normal(nk(), rng, input_scale)},
             {"dout", random_normal(nq(), rng)}},
            {}};
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto s = shape();
    auto qkv = K::act(pack(in)), dout = K::act(strided(in.f.at("dout"), Hq * D, ldo()));
    const int qkv_width = (Hq + 2 * Hkv) * D;
    auto out = K::act(poisoned_rows((size_t)B * T * ldo(), ldo(), Hq * D));
    auto d = K::act(poisoned_rows(phys_size(), ldqkv(), qkv_width));
    auto st = K::attention_state(s);
    auto seg = K::i32(seg_start());
    if (!segs.empty()) s.seg_start = seg.data();
    auto at = [&](auto& buf, char w) { return buf.data() + off(w); };
    K::attention_forward(out.data(), st, at(qkv, 'q'), at(qkv, 'k'), at(qkv, 'v'), s);
    K::attention_backward(at(d, 'q'), at(d, 'k'), at(d, 'v'), st, dout.data(), at(qkv, 'q'), at(qkv, 'k'), at(qkv, 'v'),
                          s);
    auto dh = K::host(d), oh = K::host(out);
    std::vector<float> pad;
    for (size_t i = 0; i < oh.size(); i++)
      if (is_pad(i, ldo(), Hq * D)) pad.push_back(oh[i]);
    for (size_t i = 0; i < dh.size(); i++)
      if (is_pad(i, ldqkv(), qkv_width)) pad.push_back(dh[i]);
    return {{"out", strided(oh, ldo(), Hq * D)},
            {"pad", pad},
            {"dq", unpack(dh, 'q')},
            {"dk", unpack(dh, 'k')},
            {"dv", unpack(dh, 'v')}};
  }
  bool allowed(int b, int t, int s) const {
    return s <= t && (window <= 0 || t - s < window) && (segs.empty() || s >= seg_start()[(size_t)b * T + t]);
  }
  size_t qi(int b, int t, int h) const { return ((size_t)(b * T + t) * Hq + h) * D; }
  size_t ki(int b, int t, int h) const { return ((size_t)(b * T + t) * Hkv + h / (Hq / Hkv)) * D; }
  // The float64 probabilities [B, Hq, T, T] and output.
  std::vector<double> forward64(const Ref& in, std::vector<double>* probs = nullptr) const {
    const auto &q = in.at("q"), &k = in.at("k"), &v = in.at("v");
    std::vector<double> out(nq(), 0.0), P((size_t)B * Hq * T * T, 0.0), row(T);
    for (int b = 0; b < B; b++)
      for (int h = 0; h < Hq; h++)
        for (int t = 0; t < T; t++) {
          double mx = -INFINITY, sum = 0;
          for (int s = 0; s <= t; s++) {
            if (!allowed(b, t, s)) continue;
            double d = 0;
            for (int i = 0; i < D; i++) d += q[qi(b, t, h) + i] * k[ki(b, s, h) + i];
            row[s] = scale() * d;
            mx = std::max(mx, row[s]);
          }
          for (int s = 0; s <= t; s++)
            if (allowed(b, t, s)) sum += std::exp(row[s] - mx);
          double* p = &P[(((size_t)b * Hq + h) * T + t) * T];
          for (int s = 0; s <= t; s++) {
            if (!allowed(b, t, s)) continue;
            p[s] = std::exp(row[s] - mx) / sum;
            for (int i = 0; i < D; i++) out[qi(b, t, h) + i] += p[s] * v[ki(b, s, h) + i];
          }
        }
    if (probs) *probs = std::move(P);
    return out;
  }
  // Analytic float64 gradients of L = sum(out * R): dP = R·V^T, dS = P ⊙ (dP - rowsum(P ⊙ dP)),
  // dq = scale dS·K, dk = scale dS^T·Q, dv = P^T·R (dk, dv summed over the query heads of a group).
  Ref reference(const Ref& in, const Tensors&) const {
    const auto &q = in.at("q"), &k = in.at("k"), &v = in.at("v"), &R = in.at("dout");
    std::vector<double> P;
    Ref r{{"out", forward64(in, &P)}, {"pad", std::vector<double>(pad_count(), kPad)}};
    auto &dq = r["dq"], &dk = r["dk"], &dv = r["dv"];
    dq.assign(nq(), 0.0), dk.assign(nk(), 0.0), dv.assign(nk(), 0.0);
    std::vector<double> dP(T);
    for (int b = 0; b < B; b++)
      for (int h = 0; h < Hq; h++)
        for (int t = 0; t < T; t++) {
          const double* p = &P[(((size_t)b * Hq + h) * T + t) * T];
          double rowdot = 0;
          for (int s = 0; s <= t; s++) {
            double d = 0;
            for (int i = 0; i < D; i++) d += R[qi(b, t, h) + i] * v[ki(b, s, h) + i];
            dP[s] = d;
            rowdot += p[s] * d;
          }
          for (int s = 0; s <= t; s++) {
            double dS = p[s] * (dP[s] - rowdot);
            for (int i = 0; i < D; i++) {
              dq[qi(b, t, h) + i] += scale() * dS * k[ki(b, s, h) + i];
              dk[ki(b, s, h) + i] += scale() * dS * q[qi(b, t, h) + i];
              dv[ki(b, s, h) + i] += p[s] * R[qi(b, t, h) + i];
            }
          }
        }
    return r;
  }
  double loss64(const Ref& in, const Tensors&) const { return test::dot(forward64(in), in.at("dout")); }
  Grads grads() const { return {{"dq", "q"}, {"dk", "k"}, {"dv", "v"}}; }
};

// ---------------------------------------------------------------- paged attention (inference)
// New query rows of a few sequences against a K/V cache in blocks (kernels/cpu/attention_paged.h,
// kernels/cuda/attention_paged.h): sequence s has past[s] cached positions and n_rows[s] new rows
// (their keys in the cache too). The blocks sit in one pool in a shuffled order (the block tables
// matter); `kv`: the element type the pool holds (each pool row of Hkv·D values encoded by
// kernels/cpu/attention_paged's kv_encode_row). Forward only.
struct PagedInputs {
  std::vector<float> q;               // [rows, Hq·D + 3] (a fused qkv row's stride)
  std::vector<float> k_pool, v_pool;  // [n_blocks, block_size, Hkv·D]
  std::vector<int32_t> tables;        // every sequence's block ids, in turn
  std::vector<int> table_at, past, n_rows;
  int Hq, Hkv, D, block_size, window;
  float scale;
  KvType kv;
  int ldq() const { return Hq * D + 3; }
  int rows() const {
    int n = 0;
    for (int r : n_rows) n += r;
    return n;
  }
  // Pool element of position p of sequence s, kv head element j.
  size_t at(int s, int p, int j) const {
    return ((size_t)tables[table_at[s] + p / block_size] * block_size + p % block_size) * (Hkv * D) + j;
  }
};

// A pool of rows of n values in type t (kv_encode_row per row).
inline std::vector<uint8_t> encode_kv_pool(KvType t, const std::vector<float>& pool, int n) {
  const size_t rows = pool.size() / n, row_bytes = kv_row_bytes(t, n);
  std::vector<uint8_t> out(rows * row_bytes);
  for (size_t r = 0; r < rows; r++) cpu::kv_encode_row(t, pool.data() + r * n, n, out.data() + r * row_bytes);
  return out;
}
// The values a pool of type t holds: each row encoded and decoded.
inline std::vector<float> kv_pool_values(KvType t, const std::vector<float>& pool, int n) {
  const std::vector<uint8_t> enc = encode_kv_pool(t, pool, n);
  std::vector<float> out(pool.size());
  for (size_t r = 0; r < pool.size() / n; r++)
    cpu::kv_decode_row(t, enc.data() + r * kv_row_bytes(t, n), n, out.data() + r * n);
  return out;
}

inline std::vector<float> CpuBackend::attention_paged(const PagedInputs& in) {
  const int ldc = in.Hkv * in.D;
  const std::vector<uint8_t> kp = encode_kv_pool(in.kv, in.k_pool, ldc), vp = encode_kv_pool(in.kv, in.v_pool, ldc);
  const size_t block_bytes = (size_t)in.block_size * kv_row_bytes(in.kv, ldc);
  std::vector<const void*> ptrs;
  for (int32_t b : in.tables) ptrs.push_back(kp.data() + b * block_bytes);
  for (int32_t b : in.tables) ptrs.push_back(vp.data() + b * block_bytes);
  std::vector<cpu::PagedSequence> seqs;
  for (size_t s = 0, row0 = 0; s < in.past.size(); row0 += in.n_rows[s], s++)
    seqs.push_back({(int)row0, in.n_rows[s], in.past[s], ptrs.data() + in.table_at[s],
                    ptrs.data() + in.tables.size() + in.table_at[s]});
  std::vector<float> out = nans((size_t)in.rows() * in.Hq * in.D);
  cpu::PagedAttentionShape shape{(int)seqs.size(), seqs.data(), in.Hq,         in.Hkv,   in.D,      in.ldq(),
                                 in.Hq * in.D,     ldc,         in.block_size, in.scale, in.window, in.kv};
  cpu::attention_paged_forward(out.data(), in.q.data(), shape);
  return out;
}

struct PagedAttentionOp {
  std::vector<int> past, n_rows;
  int Hq, Hkv, D, block_size, window;
  bool neo_scale;
  KvType kv;
  std::string name() const {
    std::string n = "attention_paged";
    for (size_t s = 0; s < past.size(); s++)
      n.append("_").append(std::to_string(past[s])).append("p").append(std::to_string(n_rows[s]));
    return n + "_Hq" + std::to_string(Hq) + "_Hkv" + std::to_string(Hkv) + "_D" + std::to_string(D) + "_bs" +
           std::to_string(block_size) + "_win" + std::to_string(window) + (neo_scale ? "_scale1" : "") +
           (kv != KvType::f32 ? std::string("_kv") + mindllm::name(kv) : "");
  }
  double scale() const { return neo_scale ? 1.0 : 1.0 / std::sqrt((double)D); }
  int rows() const {
    int n = 0;
    for (int r : n_rows) n += r;
    return n;
  }
  // Inputs "q" [rows, ldq], "k"/"v" pools; the block tables fixed by the shape (a shuffled pool).
  PagedInputs layout(const Tensors& in) const {
    PagedInputs p{in.f.at("q"), in.f.at("k"), in.f.at("v"),   {}, {}, past, n_rows, Hq, Hkv, D,
                  block_size,   window,       (float)scale(), kv};
    const int n_blocks = n_pool_blocks();
    for (size_t s = 0; s < past.size(); s++) {
      p.table_at.push_back((int)p.tables.size());
      for (int b = 0; b * block_size < past[s] + n_rows[s]; b++)
        p.tables.push_back((int32_t)((p.tables.size() * 7 + 3) % n_blocks));  // 7 is prime to n_blocks
    }
    return p;
  }
  int n_pool_blocks() const {
    int n = 0;
    for (size_t s = 0; s < past.size(); s++) n += (past[s] + n_rows[s] + block_size - 1) / block_size;
    return n % 7 == 0 ? n + 1 : n;
  }
  Tensors inputs(Rng& rng) const {
    const size_t pool = (size_t)n_pool_blocks() * block_size * Hkv * D;
    return {{{"q", random_normal((size_t)rows() * (Hq * D + 3), rng)},
             {"k", random_normal(pool, rng)},
             {"v", random_normal(pool, rng)}},
            {}};
  }
  template <class K>
  Out run(const Tensors& in) const {
    return {{"out", K::attention_paged(layout(in))}};
  }
  Ref reference(const Ref&, const Tensors& in) const {
    const PagedInputs p = layout(in);
    // The keys and values as the cache holds them.
    const std::vector<float> keys = kv_pool_values(this->kv, p.k_pool, Hkv * D),
                             values = kv_pool_values(this->kv, p.v_pool, Hkv * D);
    std::vector<double> out((size_t)rows() * Hq * D, 0.0);
    for (size_t s = 0, row0 = 0; s < past.size(); row0 += n_rows[s], s++)
      for (int t = 0; t < n_rows[s]; t++)
        for (int h = 0; h < Hq; h++) {
          const int pos = past[s] + t, lo = window > 0 ? std::max(0, pos - window + 1) : 0, hk = h / (Hq / Hkv);
          const size_t row = row0 + t;
          std::vector<double> sc(pos - lo + 1);
          double mx = -INFINITY, sum = 0.0;
          for (int j = lo; j <= pos; j++) {
            double d = 0.0;
            for (int i = 0; i < D; i++) d += (double)p.q[row * p.ldq() + h * D + i] * keys[p.at(s, j, hk * D + i)];
            sc[j - lo] = scale() * d, mx = std::max(mx, sc[j - lo]);
          }
          for (double& x : sc) sum += (x = std::exp(x - mx));
          for (int j = lo; j <= pos; j++)
            for (int i = 0; i < D; i++)
              out[(row * Hq + h) * D + i] += sc[j - lo] / sum * values[p.at(s, j, hk * D + i)];
        }
    return {{"out", out}};
  }
  double loss64(const Ref&, const Tensors&) const { return 0.0; }
  Grads grads() const { return {}; }
};

// ---------------------------------------------------------------- cross-entropy
// Backward of L = scale · Σ losses. Targets: row 0 the last class, row 1 ignored (-1), row 3
// ignored (-100, PyTorch's ignore_index).
struct CrossEntropyOp {
  int N, V;
  float logit_scale, logit_offset;
  std::string name() const {
    return "cross_entropy_" + std::to_string(N) + "x" + std::to_string(V) + "_s" + std::to_string((int)logit_scale) +
           "_off" + std::to_string((int)logit_offset);
  }
  static constexpr float kScale = 1.0f / 7.0f;
  Tensors inputs(Rng& rng) const {
    Tensors t;
    auto x = random_normal((size_t)N * V, rng, logit_scale);
    for (auto& v : x) v += logit_offset;
    std::vector<int32_t> tg(N);
    for (auto& v : tg) v = (int32_t)rng.below(V);
    tg[0] = V - 1;
    if (N > 2) tg[1] = -1;
    if (N > 4) tg[3] = -100;
    t.f["logits"] = x;
    t.i["targets"] = tg;
    return t;
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto x = K::act(in.f.at("logits")), d = K::act(nans((size_t)N * V));
    auto tg = K::i32(in.i.at("targets"));
    auto loss = K::f32(nans(N));
    K::cross_entropy_forward(loss.data(), x.data(), tg.data(), N, V);
    K::cross_entropy_backward(d.data(), x.data(), tg.data(), kScale, N, V);
    K::cross_entropy_backward(x.data(), x.data(), tg.data(), kScale, N, V);  // in place, as the model calls it
    return {{"loss", K::host(loss)}, {"dlogits", K::host(d)}, {"dlogits_inplace", K::host(x)}};
  }
  Ref reference(const Ref& in, const Tensors& t) const {
    const auto& x = in.at("logits");
    const auto& tg = t.i.at("targets");
    Ref r{{"loss", std::vector<double>(N, 0.0)}, {"dlogits", std::vector<double>(x.size(), 0.0)}};
    for (int n = 0; n < N; n++) {
      if (tg[n] < 0) continue;
      const double* row = &x[(size_t)n * V];
      double mx = -INFINITY, s = 0;
      for (int i = 0; i < V; i++) mx = std::max(mx, row[i]);
      for (int i = 0; i < V; i++) s += std::exp(row[i] - mx);
      r["loss"][n] = std::log(s) + mx - row[tg[n]];
      for (int i = 0; i < V; i++) r["dlogits"][(size_t)n * V + i] = kScale * (std::exp(row[i] - mx) / s - (i == tg[n]));
    }
    r["dlogits_inplace"] = r["dlogits"];
    return r;
  }
  double loss64(const Ref& in, const Tensors& t) const {
    const Ref r = reference(in, t);
    double s = 0;
    for (double l : r.at("loss")) s += l;
    return kScale * s;
  }
  Grads grads() const { return {{"dlogits", "logits"}}; }
};

// ---------------------------------------------------------------- adamw
// torch/optim/adamw.py (_single_tensor_adamw, amsgrad=False, maximize=False):
//   param.mul_(1 - lr * weight_decay)
//   exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   step_size = lr / (1 - beta1**step); bias_correction2_sqrt = sqrt(1 - beta2**step)
//   denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps; param.addcdiv_(exp_avg, denom, -step_size)
inline void torch_adamw_step(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                             std::vector<double>& v, double lr, double b1, double b2, double eps, double wd, int step) {
  double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  for (size_t i = 0; i < p.size(); i++) {
    p[i] *= 1 - lr * wd;
    m[i] += (g[i] - m[i]) * (1 - b1);
    v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];
    double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
    p[i] -= lr / bc1 * m[i] / denom;
  }
}

// One update from nonzero moments (fp32 only: the optimizer state is fp32 on every backend).
// Outputs: the change dp = p - p0 (p0 itself dwarfs the update) and the new moments m1, v1.
struct AdamWOp {
  size_t n;
  cpu::AdamWParams p;
  float grad_scale;
  std::string name() const {
    return "adamw_" + std::to_string(n) + "_step" + std::to_string(p.step) + (p.weight_decay > 0 ? "_wd" : "") +
           (grad_scale != 1.0f ? "_clip" : "");
  }
  Tensors inputs(Rng& rng) const {
    auto g = random_normal(n, rng);
    g[0] = 0.0f;
    if (n > 1) g[1] = 1e3f;
    auto v = random_normal(n, rng, 0.1f);
    for (auto& x : v) x = x * x;
    return {{{"p", random_normal(n, rng)}, {"g", g}, {"m", random_normal(n, rng, 0.1f)}, {"v", v}}, {}};
  }
  template <class K>
  Out run(const Tensors& in) const {
    auto w = K::f32(in.f.at("p")), g = K::f32(in.f.at("g")), m = K::f32(in.f.at("m")), v = K::f32(in.f.at("v"));
    K::adamw_update(w.data(), g.data(), m.data(), v.data(), n, p, grad_scale);
    auto dp = K::host(w);
    for (size_t i = 0; i < n; i++) dp[i] -= in.f.at("p")[i];
    return {{"dp", dp}, {"m1", K::host(m)}, {"v1", K::host(v)}};
  }
  Ref reference(const Ref& in, const Tensors&) const {
    auto w = in.at("p"), m = in.at("m"), v = in.at("v"), g = in.at("g");
    for (auto& x : g) x *= grad_scale;
    torch_adamw_step(w, g, m, v, p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, p.step);
    for (size_t i = 0; i < n; i++) w[i] -= in.at("p")[i];
    return {{"dp", w}, {"m1", m}, {"v1", v}};
  }
  double loss64(const Ref&, const Tensors&) const { return 0.0; }
  Grads grads() const { return {}; }
};

using OpCase = std::variant<LinearOp, NormOp, ActivationOp, GluOp, RopeOp, EmbeddingOp, AttentionOp, PagedAttentionOp,
                            CrossEntropyOp, AdamWOp>;

// Letters, digits and '_' only (a gtest name): "-" becomes "m".
inline std::string case_name(const OpCase& c) {
  std::string n = std::visit([](const auto& op) { return op.name(); }, c);
  for (auto& ch : n)
    if (ch == '-') ch = 'm';
  return n;
}

// The op family: the name up to its first '_' shape field ("linear", "layernorm", "act", ...).
inline std::string case_op(const OpCase& c) {
  const std::string n = case_name(c);
  if (n.rfind("cross_entropy", 0) == 0) return "cross_entropy";
  return n.substr(0, n.find('_'));
}

// Seeded by the name: the same inputs on every backend and in every run.
inline Tensors case_inputs(const OpCase& c) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : case_name(c)) h = (h ^ (uint8_t)ch) * 1099511628211ull;
  Rng rng(h);
  return std::visit([&](const auto& op) { return op.inputs(rng); }, c);
}

// Max error allowed, relative to the output's largest magnitude, per op, output and mode: a
// float32 CPU kernel against float64, a GPU kernel against the CPU in fp32, and in bf16 (both on
// the same bf16-rounded inputs).
enum class Mode { cpu_vs_f64, gpu_fp32, gpu_bf16 };
inline double tolerance(const OpCase& c, const std::string& out, Mode m) {
  const std::string op = case_op(c);
  // One ulp of a float32 inverse frequency moves the angle by pos · 6e-8.
  if (const auto* r = std::get_if<RopeOp>(&c); r && r->pos_offset >= 1000 && m != Mode::gpu_bf16) return 1e-3;
  if (m == Mode::cpu_vs_f64) return op == "adamw" && out == "dp" ? 1e-3 : test::kFwdTol;  // p - p0: ~1e-4 of a step
  if (m == Mode::gpu_fp32) return op == "adamw" && out == "dp" ? 1e-3 : 1e-5;
  if (op == "cross_entropy" && out == "loss") return 1e-5;  // fp32 math on the same inputs
  if ((op == "layernorm" || op == "rmsnorm") && (out == "mean" || out == "rstd")) return 1e-4;  // fp32 statistics
  if (op == "embedding" && out != "out") return 1e-5;  // fp32 sums of the same values
  return 1e-2;
}
// The magnitude below which errors count as absolute: elementwise ops of one small value.
inline double tolerance_floor(const OpCase& c) {
  const std::string op = case_op(c);
  return op == "act" || op == "glu" ? 1.0 : 1e-30;
}

// Checks max |got - want| / max(max |want|, floor) <= tol (NaN in got fails); returns the error.
inline double expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, double floor,
                           const std::string& what) {
  double e = test::max_abs_err(got, want) / std::max(test::max_abs(want), floor);
  EXPECT_LE(e, tol) << what << ": max rel err " << e;
  return e;
}

// THE TABLE. Awkward sizes on purpose: 1, odd, primes, not multiples of any tile, GQA ratios,
// windows shorter and longer than T, long T.
inline std::vector<OpCase> op_cases() {
  using L = WeightLayout;
  std::vector<OpCase> c;
  for (L l : {L::out_in, L::in_out}) {
    c.push_back(LinearOp{7, 13, 9, l, true});
    c.push_back(LinearOp{1, 1, 1, l, true});
    c.push_back(LinearOp{33, 64, 129, l, false});
  }
  c.push_back(LinearOp{5, 12, 3, L::out_in, false});
  c.push_back(LinearOp{100, 70, 50, L::out_in, true});
  // GPU tile sizes: no tile divides them
  c.push_back(LinearOp{37, 65, 131, L::out_in, true});
  c.push_back(LinearOp{37, 65, 131, L::in_out, true});
  c.push_back(LinearOp{128, 256, 200, L::out_in, false});
  c.push_back(LinearOp{5, 64, 1000, L::in_out, false});
  c.push_back(LinearOp{300, 96, 384, L::out_in, true});
  for (bool rms : {false, true})
    for (auto [N, C] : {std::pair{5, 12}, {37, 64}, {1, 7}, {3, 3}, {64, 100}, {33, 768}})
      c.push_back(NormOp{N, C, rms, !rms});
  c.push_back(NormOp{37, 64, false, false});  // LayerNorm without bias
  c.push_back(NormOp{37, 1000, false, false});
  c.push_back(NormOp{64, 4096, false, true});
  c.push_back(NormOp{37, 1000, true, false});
  c.push_back(NormOp{5, 2048, true, false});
  for (Activation a : {Activation::gelu_tanh, Activation::gelu_erf, Activation::silu}) {
    c.push_back(ActivationOp{1, a});
    c.push_back(ActivationOp{1003, a});
    c.push_back(ActivationOp{3 * 4097 + 5, a});
    c.push_back(GluOp{37, 129, true, a});
    c.push_back(GluOp{37, 129, false, a});
    c.push_back(GluOp{1, 1, false, a});
    c.push_back(GluOp{7, 33, true, a});
    c.push_back(GluOp{5, 64, false, a});
  }
  c.push_back(RopeOp{2, 7, 3, 12, 36, 12, 0, 10000.f});                  // contiguous
  c.push_back(RopeOp{2, 7, 3, 12, 36, 8, 0, 10000.f});                   // partial rotary
  c.push_back(RopeOp{1, 19, 2, 64, 3 * 128 + 5, 64, 5, 10000.f});        // strided (fused qkv) row + offset
  c.push_back(RopeOp{2, 13, 4, 64, 256, 32, 0, 500000.f});               // partial rotary, head dim 64
  c.push_back(RopeOp{3, 1, 1, 2, 2, 2, 41, 10000.f});                    // minimal
  c.push_back(RopeOp{1, 5, 2, 16, 40, 0, 0, 10000.f});                   // rot_dim 0: identity
  c.push_back(RopeOp{2, 77, 4, 64, 12 * 64, 64, 0, 10000.f, 64});        // heads one head into a packed row
  c.push_back(RopeOp{1, 50, 8, 128, 8 * 128, 128, 0, 1000000.f});        // head dim 128
  c.push_back(RopeOp{2, 33, 4, 64, 6 * 64, 32, 0, 10000.f, 64});         // partial rotary, packed row
  c.push_back(RopeOp{1, 20, 2, 128, 2 * 128, 128, 4000, 10000.f});       // long position offset
  c.push_back(RopeOp{2, 23, 3, 16, 3 * 48 + 5, 16, 0, 10000.f, 48, 4});  // packed rows: positions per sample
  c.push_back(RopeOp{1, 50, 2, 64, 2 * 64, 32, 0, 500000.f, 0, 9});      // packed, partial rotary
  c.push_back(EmbeddingOp{2, 5, 12, 11, 9, 3});
  c.push_back(EmbeddingOp{2, 5, 12, 11, 0, 0});
  c.push_back(EmbeddingOp{3, 17, 64, 13, 17, 0});
  c.push_back(EmbeddingOp{1, 1, 1, 1, 1, 0});
  c.push_back(EmbeddingOp{4, 33, 100, 50, 40, 7});
  c.push_back(EmbeddingOp{2, 7, 17, 1000, 0, 0});
  c.push_back(EmbeddingOp{3, 17, 96, 1000, 22, 5});   // C, V not multiples of the GPU's 128 tile
  c.push_back(EmbeddingOp{2, 33, 200, 50257, 0, 0});  // GPT-2's vocabulary
  c.push_back(EmbeddingOp{4, 64, 768, 333, 64, 0});
  c.push_back(EmbeddingOp{2, 17, 12, 11, 9, 0, 3});                 // packed rows: positions per sample, repeated
  c.push_back(EmbeddingOp{3, 33, 200, 50, 40, 5, 7});               // packed, offset, C not a multiple of 128
  c.push_back(AttentionOp{2, 11, 4, 4, 12, 0, false, true});        // MHA, fused
  c.push_back(AttentionOp{2, 11, 4, 2, 12, 3, false, true});        // GQA 2, window < T
  c.push_back(AttentionOp{2, 11, 4, 1, 12, 50, false, false});      // GQA 4 (MQA), window > T
  c.push_back(AttentionOp{1, 9, 4, 2, 64, 0, false, false});        // head dim 64
  c.push_back(AttentionOp{2, 17, 2, 2, 16, 4, true, true});         // GPT-Neo: scale 1, local
  c.push_back(AttentionOp{3, 1, 2, 1, 5, 0, false, true});          // T = 1
  c.push_back(AttentionOp{1, 45, 6, 2, 64, 16, false, false});      // GQA 3
  c.push_back(AttentionOp{1, 150, 2, 1, 80, 70, false, true});      // long T: blocks past the window, D tail
  c.push_back(AttentionOp{2, 77, 4, 4, 64, 0, false, false});       // T not a multiple of any tile
  c.push_back(AttentionOp{1, 100, 8, 2, 128, 0, false, true});      // GQA 4, head dim 128
  c.push_back(AttentionOp{2, 65, 4, 1, 64, 16, true, true, 0.3f});  // MQA, GPT-Neo local window
  c.push_back(AttentionOp{1, 33, 6, 3, 64, 256, false, false});     // window longer than T
  // Packed rows: block-diagonal causal attention (segments of 1 token, segments across the CPU's
  // 64-row blocks, with GQA, a local window and GPT-Neo's scale)
  c.push_back(AttentionOp{2, 13, 4, 2, 8, 0, false, true, 1.0f, {5, 1, 4, 3}});
  c.push_back(AttentionOp{2, 150, 4, 2, 16, 0, false, false, 1.0f, {70, 9, 1, 30, 40}});
  c.push_back(AttentionOp{2, 17, 2, 2, 16, 4, true, true, 1.0f, {6, 11}});
  c.push_back(AttentionOp{1, 100, 8, 2, 64, 16, false, true, 1.0f, {33, 2, 65}});
  // Paged attention: prefill chunks and decode rows of sequences of different lengths, partial last
  // blocks, GQA, GPT-Neo's local window and scale, head dim 128, bf16 and q8_0 blocks (q8_0: CPU
  // only), positions past a 128 tile.
  using enum KvType;
  c.push_back(PagedAttentionOp{{0, 5, 13}, {7, 1, 1}, 4, 2, 8, 4, 0, false, f32});
  c.push_back(PagedAttentionOp{{3, 0}, {1, 9}, 2, 2, 16, 16, 4, true, f32});
  c.push_back(PagedAttentionOp{{20, 2}, {3, 1}, 8, 2, 128, 16, 0, false, bf16});
  c.push_back(PagedAttentionOp{{150, 0, 31}, {2, 140, 1}, 4, 1, 32, 16, 0, false, f32});
  c.push_back(PagedAttentionOp{{140, 7}, {1, 2}, 6, 3, 64, 8, 50, false, bf16});
  c.push_back(PagedAttentionOp{{17}, {2}, 2, 1, 192, 16, 0, false, f32});  // two head dims per GPU thread
  c.push_back(PagedAttentionOp{{20, 2}, {3, 1}, 8, 2, 128, 16, 0, false, q8_0});
  c.push_back(PagedAttentionOp{{150, 0, 31}, {2, 140, 1}, 4, 1, 32, 16, 0, false, q8_0});
  c.push_back(PagedAttentionOp{{140, 7}, {1, 2}, 6, 3, 64, 8, 50, true, q8_0});
  c.push_back(CrossEntropyOp{7, 37, 2.f, 0.f});
  c.push_back(CrossEntropyOp{5, 1, 1.f, 0.f});
  c.push_back(CrossEntropyOp{9, 1003, 3.f, 0.f});
  c.push_back(CrossEntropyOp{6, 50, 1.f, 1000.f});  // large logits: no overflow
  c.push_back(CrossEntropyOp{4, 33, 30.f, -50.f});  // peaky softmax
  c.push_back(CrossEntropyOp{65, 8191, 1.f, 0.f});
  for (int V : {1000, 50257, 64000}) c.push_back(CrossEntropyOp{37, V, 3.f, 0.f});  // GPU block sizes
  c.push_back(AdamWOp{1, {3e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, 1}, 1.0f});
  c.push_back(AdamWOp{1000, {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 3}, 1.0f});
  c.push_back(AdamWOp{4097, {6e-4f, 0.9f, 0.95f, 1e-6f, 0.1f, 10}, 0.25f});  // clipping
  return c;
}

}  // namespace mindllm::ops
