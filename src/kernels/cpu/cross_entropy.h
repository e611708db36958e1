// Softmax cross-entropy over a vocabulary of V logits per row. A target < 0 is ignored
// (loss 0, gradient 0): padding and SFT loss masks.
#pragma once
#include <cstdint>

namespace mindllm::cpu {

// losses[n] = logsumexp(logits[n]) - logits[n][target[n]]  (0 where target < 0).
void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V);

// dlogits[n] = scale * (softmax(logits[n]) - onehot(target[n])), 0 rows where target < 0.
// dlogits may equal logits (in place).
void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V);

}  // namespace mindllm::cpu
