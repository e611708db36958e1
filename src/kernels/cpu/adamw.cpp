#include "kernels/cpu/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

MINDLLM_SIMD_CLONES void adamw_range(float* params, const float* grads, float* m, float* v, size_t n, float b1,
                                     float b2, float step_size, float bc2_sqrt, float eps, float decay,
                                     float grad_scale) {
  for (size_t i = 0; i < n; i++) {
    float g = grads[i] * grad_scale;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) / bc2_sqrt + eps;
    params[i] = params[i] * decay - step_size * (mi / denom);
  }
}

MINDLLM_SIMD_CLONES double squares_range(const float* x, size_t n) {
  return lane_sum(n, [&](size_t i) { return static_cast<double>(x[i]) * x[i]; });
}

}  // namespace

void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, float grad_scale) {
  PROFILE("adamw");
  const double bc1 = 1.0 - std::pow(static_cast<double>(p.beta1), p.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(p.beta2), p.step);
  const float step_size = static_cast<float>(p.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = 1.0f - p.lr * p.weight_decay;
  parallel_ranges(count, 1, [&](size_t b, size_t) {
    const AdamWSpan& s = spans[b];
    adamw_range(params + s.offset, grads + s.offset, m + s.offset, v + s.offset, s.n, p.beta1, p.beta2, step_size,
                bc2_sqrt, p.eps, s.decay ? decay : 1.0f, grad_scale);
  });
}

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale) {
  constexpr size_t kChunk = 1 << 15;
  std::vector<AdamWSpan> spans;
  for (size_t o = 0; o < n; o += kChunk) spans.push_back({o, std::min(kChunk, n - o), true});
  adamw_update_spans(params, grads, m, v, spans.data(), spans.size(), p, grad_scale);
}

double sum_of_squares(const float* x, size_t n) {
  PROFILE("grad_norm");
  // Fixed 64Ki-element chunks added in order: the same bytes for any thread count.
  constexpr size_t kChunk = 1 << 16;
  size_t nchunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(nchunks, 0.0);
  parallel_ranges(n, kChunk, [&](size_t b, size_t e) { part[b / kChunk] = squares_range(x + b, e - b); });
  double total = 0.0;
  for (double s : part) total += s;
  return total;
}

}  // namespace mindllm::cpu
