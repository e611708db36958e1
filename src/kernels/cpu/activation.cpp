#include "kernels/cpu/activation.h"

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr size_t kGrain = 1 << 14;

template <Activation A>
inline float act_value(float x) {
  // 0.5 x (1 + tanh u) = x sigmoid(2u): exact, and accurate in both tails.
  if constexpr (A == Activation::gelu_tanh) return x * vsigmoid(2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x));
  else if constexpr (A == Activation::gelu_erf) return 0.5f * x * (1.0f + verf(x * kInvSqrt2));
  else return x * vsigmoid(x);
}

template <Activation A>
inline float act_grad(float x) {
  if constexpr (A == Activation::gelu_tanh) {
    // d/dx [x s(2u)] = s + x s (1 - s) 2 u'
    float s = vsigmoid(2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x));
    return s + x * s * (1.0f - s) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
  } else if constexpr (A == Activation::gelu_erf) {
    return 0.5f * (1.0f + verf(x * kInvSqrt2)) + x * kInvSqrt2Pi * vexp(-0.5f * x * x);
  } else {
    float s = vsigmoid(x);
    return s * (1.0f + x * (1.0f - s));
  }
}

// Each kernel body is a template over the activation, instantiated inside one function that is
// compiled per instruction set (MINDLLM_SIMD_CLONES).
template <Activation A>
inline void fwd(float* out, const float* inp, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = act_value<A>(inp[i]);
}
template <Activation A>
inline void bwd(float* dinp, const float* dout, const float* inp, size_t n) {
  for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * act_grad<A>(inp[i]);
}
template <Activation A>
inline void glu_fwd(float* o, const float* g, const float* u, int H) {
  for (int i = 0; i < H; i++) o[i] = act_value<A>(g[i]) * u[i];
}
template <Activation A>
inline void glu_bwd(float* dg, float* du, const float* d, const float* g, const float* u, int H) {
  for (int i = 0; i < H; i++) {
    float gi = g[i], di = d[i], ui = u[i];
    float a = act_value<A>(gi);
    dg[i] = di * ui * act_grad<A>(gi);
    du[i] = di * a;
  }
}

#define MINDLLM_ACT_DISPATCH(act, CALL)                             \
  switch (act) {                                                    \
    case Activation::gelu_tanh: CALL(Activation::gelu_tanh); break; \
    case Activation::gelu_erf: CALL(Activation::gelu_erf); break;   \
    case Activation::silu: CALL(Activation::silu); break;           \
  }

MINDLLM_SIMD_CLONES void act_fwd_range(float* out, const float* inp, size_t n, Activation act){
#define CALL(A) fwd<A>(out, inp, n)
    MINDLLM_ACT_DISPATCH(act, CALL)
#undef CALL
}

MINDLLM_SIMD_CLONES void act_bwd_range(float* dinp, const float* dout, const float* inp, size_t n, Activation act){
#define CALL(A) bwd<A>(dinp, dout, inp, n)
    MINDLLM_ACT_DISPATCH(act, CALL)
#undef CALL
}

MINDLLM_SIMD_CLONES
    void glu_fwd_rows(float* out, const float* gate, const float* up, int r0, int r1, int H, int ld, Activation act) {
  for (int n = r0; n < r1; n++) {
    const float* g = gate + (size_t)n * ld;
    const float* u = up + (size_t)n * ld;
    float* o = out + (size_t)n * H;
#define CALL(A) glu_fwd<A>(o, g, u, H)
    MINDLLM_ACT_DISPATCH(act, CALL)
#undef CALL
  }
}

MINDLLM_SIMD_CLONES void glu_bwd_rows(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                                      int r0, int r1, int H, int ld, Activation act) {
  for (int n = r0; n < r1; n++) {
    size_t off = (size_t)n * ld;
#define CALL(A) glu_bwd<A>(dgate + off, dup + off, dout + (size_t)n * H, gate + off, up + off, H)
    MINDLLM_ACT_DISPATCH(act, CALL)
#undef CALL
  }
}
}  // namespace

void activation_forward(float* out, const float* inp, size_t n, Activation act) {
  PROFILE("act_fwd");
  parallel_ranges(n, kGrain, [&](size_t b, size_t e) { act_fwd_range(out + b, inp + b, e - b, act); });
}

void activation_backward(float* dinp, const float* dout, const float* inp, size_t n, Activation act) {
  PROFILE("act_bwd");
  parallel_ranges(n, kGrain, [&](size_t b, size_t e) { act_bwd_range(dinp + b, dout + b, inp + b, e - b, act); });
}

void glu_forward(float* out, const float* gate, const float* up, int N, int H, int ld, Activation act) {
  PROFILE("glu_fwd");
  size_t rows = std::max<size_t>(1, kGrain / std::max(1, H));
  parallel_ranges(N, rows, [&](size_t b, size_t e) { glu_fwd_rows(out, gate, up, (int)b, (int)e, H, ld, act); });
}

void glu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int N, int H, int ld,
                  Activation act) {
  PROFILE("glu_bwd");
  size_t rows = std::max<size_t>(1, kGrain / std::max(1, H));
  parallel_ranges(N, rows,
                  [&](size_t b, size_t e) { glu_bwd_rows(dgate, dup, dout, gate, up, (int)b, (int)e, H, ld, act); });
}

}  // namespace mindllm::cpu
