// Softmax cross-entropy over V logits per row on the GPU; same semantics as
// kernels/cpu/cross_entropy.h (a target < 0 is ignored: loss 0, gradient row 0).
#pragma once
#include <cstdint>

#include "kernels/cuda/device.h"

namespace mindllm::cuda {

// losses[n] = logsumexp(logits[n]) - logits[n][target[n]] (0 where target < 0; NaN where
// target >= V, which the caller must not pass). One block per row, fp32 accumulation.
void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V);
void cross_entropy_forward(float* losses, const bf16* logits, const int32_t* targets, int N, int V);

// dlogits[n] = scale * (softmax(logits[n]) - onehot(target[n])), 0 rows where target < 0.
// dlogits may equal logits (in place).
void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V);
void cross_entropy_backward(bf16* dlogits, const bf16* logits, const int32_t* targets, float scale, int N, int V);

// *acc += weight * the mean of losses[n] over the rows with target[n] >= 0, rounded to float
// (nothing when no target counts): the mean loss of a micro-batch, summed over micro-batches on
// the device with the trainer's weights. Deterministic (one block, fixed order); acc is one
// device double.
void cross_entropy_mean(double* acc, const float* losses, const int32_t* targets, int N, double weight = 1.0);

}  // namespace mindllm::cuda
