#include "kernels/cpu/activation.h"

#include "core/profile.h"

#include <cmath>

namespace mindllm::cpu {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

inline float act_value(float x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case Activation::gelu_erf: return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
    case Activation::silu: return x / (1.0f + std::exp(-x));
  }
  return 0.0f;
}

inline float act_grad(float x, Activation a) {
  switch (a) {
    case Activation::gelu_tanh: {
      float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      float th = std::tanh(u);
      float sech2 = 1.0f - th * th;
      return 0.5f * (1.0f + th) + 0.5f * x * sech2 * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case Activation::gelu_erf:
      return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
    case Activation::silu: {
      float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f + x * (1.0f - s));
    }
  }
  return 0.0f;
}
}  // namespace

void activation_forward(float* out, const float* inp, size_t n, Activation act) {
  PROFILE("act_fwd");
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) out[i] = act_value(inp[i], act);
}

void activation_backward(float* dinp, const float* dout, const float* inp, size_t n, Activation act) {
  PROFILE("act_bwd");
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * act_grad(inp[i], act);
}

void glu_forward(float* out, const float* gate, const float* up, int N, int H, int ld, Activation act) {
  PROFILE("glu_fwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* g = gate + (size_t)n * ld;
    const float* u = up + (size_t)n * ld;
    float* o = out + (size_t)n * H;
    for (int i = 0; i < H; i++) o[i] = act_value(g[i], act) * u[i];
  }
}

void glu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                  int N, int H, int ld, Activation act) {
  PROFILE("glu_bwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* g = gate + (size_t)n * ld;
    const float* u = up + (size_t)n * ld;
    const float* d = dout + (size_t)n * H;
    float* dg = dgate + (size_t)n * ld;
    float* du = dup + (size_t)n * ld;
    for (int i = 0; i < H; i++) {
      float gi = g[i], di = d[i];
      float a = act_value(gi, act);
      float ui = u[i];
      dg[i] = di * ui * act_grad(gi, act);
      du[i] = di * a;
    }
  }
}

}  // namespace mindllm::cpu
