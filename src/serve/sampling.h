// Next-token sampling from logits: temperature, top-k, top-p (nucleus); temperature 0 = greedy.
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace mindllm {

struct SamplingParams {
  float temperature = 1.0f;
  int top_k = 0;        // 0: off
  float top_p = 1.0f;   // 1: off
};

// Bad input (one line naming the parameter) unless temperature is finite and >= 0, top_k >= 0
// and top_p in (0, 1].
void check_sampling_params(const SamplingParams& p);

int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng);

}  // namespace mindllm
