// Softmax cross-entropy over a vocabulary of V logits per row. A target < 0 is ignored
// (loss 0, gradient 0): padding and SFT loss masks.
#pragma once
#include <cstdint>

namespace mindllm::cpu {

// A row's softmax normaliser: its max logit and the sum of exp(logit - max).
struct SoftmaxStats {
  float max;
  double sum;
};

// losses[n] = logsumexp(logits[n]) - logits[n][target[n]]  (0 where target < 0). With stats
// (N entries), also keeps each counted row's normaliser for the backward.
void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                           SoftmaxStats* stats = nullptr);

// dlogits[n] = scale * (softmax(logits[n]) - onehot(target[n])), 0 rows where target < 0.
// dlogits may equal logits (in place). With the forward's stats (same logits) it makes one pass
// over each row instead of three; the result is the same to the bit.
void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V,
                            const SoftmaxStats* stats = nullptr);

}  // namespace mindllm::cpu
