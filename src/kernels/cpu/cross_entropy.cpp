#include "kernels/cpu/cross_entropy.h"

#include "core/profile.h"

#include <cmath>

namespace mindllm::cpu {

static void row_max_sum(const float* x, int V, float* mx_out, double* sum_out) {
  float mx = -INFINITY;
  for (int i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int i = 0; i < V; i++) sum += std::exp(x[i] - mx);
  *mx_out = mx;
  *sum_out = sum;
}

void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V) {
  PROFILE("xent_fwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    if (targets[n] < 0) {
      losses[n] = 0.0f;
      continue;
    }
    const float* x = logits + (size_t)n * V;
    float mx;
    double sum;
    row_max_sum(x, V, &mx, &sum);
    losses[n] = static_cast<float>(std::log(sum) + mx - x[targets[n]]);
  }
}

void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V) {
  PROFILE("xent_bwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* x = logits + (size_t)n * V;
    float* d = dlogits + (size_t)n * V;
    if (targets[n] < 0) {
      for (int i = 0; i < V; i++) d[i] = 0.0f;
      continue;
    }
    float mx;
    double sum;
    row_max_sum(x, V, &mx, &sum);
    float inv = static_cast<float>(1.0 / sum);
    for (int i = 0; i < V; i++) d[i] = scale * std::exp(x[i] - mx) * inv;
    d[targets[n]] -= scale;
  }
}

}  // namespace mindllm::cpu
