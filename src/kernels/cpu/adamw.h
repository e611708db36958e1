// AdamW over a flat span of parameters, exactly as torch.optim.AdamW (decoupled decay):
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once
#include <cstddef>

namespace mindllm::cpu {

struct AdamWParams {
  float lr, beta1, beta2, eps, weight_decay;
  int step;  // 1-based step count after this update
};

// grad_scale multiplies every gradient first (global-norm clipping); m, v updated in place.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale = 1.0f);

// A piece of the flat buffers updated with or without weight decay.
struct AdamWSpan {
  size_t offset, n;
  bool decay;
};

// One AdamW update of many spans of the same flat buffers in one parallel pass (p.weight_decay
// applies to spans with decay set). Spans of at most a few 10k elements balance the threads.
void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, float grad_scale = 1.0f);

// Sum of squares in double, in fixed 64Ki-element chunks added in order: the same bytes for any
// thread count.
double sum_of_squares(const float* x, size_t n);

}  // namespace mindllm::cpu
