#include "kernels/cpu/cross_entropy.h"

#include <cmath>

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

// log-sum-exp pieces of one row: max and sum of exp(x - max).
inline void row_max_sum(const float* x, int V, float* mx_out, double* sum_out) {
  float mx = lane_max(x, V);
  *mx_out = mx;
  *sum_out = lane_sum(V, [&](size_t i) { return vexp(x[i] - mx); });
}

MINDLLM_SIMD_CLONES void xent_fwd_rows(float* losses, SoftmaxStats* stats, const float* logits, const int32_t* targets,
                                       int r0, int r1, int V) {
  for (int n = r0; n < r1; n++) {
    if (targets[n] < 0) {
      losses[n] = 0.0f;
      continue;
    }
    const float* x = logits + (size_t)n * V;
    float mx;
    double sum;
    row_max_sum(x, V, &mx, &sum);
    if (stats) stats[n] = {mx, sum};
    losses[n] = static_cast<float>(std::log(sum) + mx - x[targets[n]]);
  }
}

MINDLLM_SIMD_CLONES void xent_bwd_rows(float* dlogits, const float* logits, const int32_t* targets,
                                       const SoftmaxStats* stats, float scale, int r0, int r1, int V) {
  for (int n = r0; n < r1; n++) {
    const float* x = logits + (size_t)n * V;
    float* d = dlogits + (size_t)n * V;
    if (targets[n] < 0) {
      for (int i = 0; i < V; i++) d[i] = 0.0f;
      continue;
    }
    float mx;
    double sum;
    if (stats) mx = stats[n].max, sum = stats[n].sum;
    else row_max_sum(x, V, &mx, &sum);
    float f = static_cast<float>(scale / sum);
    for (int i = 0; i < V; i++) d[i] = f * vexp(x[i] - mx);
    d[targets[n]] -= scale;
  }
}

}  // namespace

void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                           SoftmaxStats* stats) {
  PROFILE("xent_fwd");
  parallel_ranges(N, 4, [&](size_t b, size_t e) { xent_fwd_rows(losses, stats, logits, targets, (int)b, (int)e, V); });
}

void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V,
                            const SoftmaxStats* stats) {
  PROFILE("xent_bwd");
  parallel_ranges(
      N, 4, [&](size_t b, size_t e) { xent_bwd_rows(dlogits, logits, targets, stats, scale, (int)b, (int)e, V); });
}

}  // namespace mindllm::cpu
