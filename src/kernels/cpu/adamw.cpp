#include "kernels/cpu/adamw.h"

#include "core/profile.h"

#include <cmath>
#include <vector>

namespace mindllm::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale) {
  PROFILE("adamw");
  const float b1 = p.beta1, b2 = p.beta2;
  const double bc1 = 1.0 - std::pow(static_cast<double>(b1), p.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(b2), p.step);
  const float step_size = static_cast<float>(p.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = 1.0f - p.lr * p.weight_decay;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    float g = grads[i] * grad_scale;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) / bc2_sqrt + p.eps;
    params[i] = params[i] * decay - step_size * (mi / denom);
  }
}

double sum_of_squares(const float* x, size_t n) {
  PROFILE("grad_norm");
  constexpr size_t kChunk = 1 << 16;
  size_t nchunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(nchunks, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < nchunks; c++) {
    size_t end = (c + 1) * kChunk < n ? (c + 1) * kChunk : n;
    double s = 0.0;
    for (size_t i = c * kChunk; i < end; i++) s += (double)x[i] * x[i];
    part[c] = s;
  }
  double total = 0.0;
  for (double s : part) total += s;
  return total;
}

}  // namespace mindllm::cpu
