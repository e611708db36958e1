// Next-token sampling from logits: repetition / presence / frequency penalties, temperature,
// top-k, top-p (nucleus), min-p; temperature 0 = greedy (on the penalized logits).
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace mindllm {

struct SamplingParams {
  float temperature = 1.0f;
  int top_k = 0;       // 0: off
  float top_p = 1.0f;  // 1: off
  float min_p = 0.0f;  // keep tokens with p >= min_p * p_max (after temperature); 0: off
  // OpenAI: logit -= presence * [count > 0] + frequency * count, count = times the token was
  // generated so far in this sequence (the prompt does not count). 0: off.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Hugging Face / llama.cpp: a token in the prompt or generated gets logit / r when its logit
  // is > 0, else logit * r. 1: off.
  float repetition_penalty = 1.0f;
  bool has_penalties() const {
    return presence_penalty != 0.0f || frequency_penalty != 0.0f || repetition_penalty != 1.0f;
  }
};

// Bad input (one line naming the parameter) unless temperature is finite and >= 0, top_k >= 0,
// top_p in (0, 1], min_p in [0, 1], presence and frequency penalties in [-2, 2] and the
// repetition penalty finite and > 0.
void check_sampling_params(const SamplingParams& p);

// The tokens of one sequence the penalties look at: counts of the generated ones, and which
// appeared at all (prompt or generated).
class TokenHistory {
 public:
  TokenHistory() = default;
  TokenHistory(std::span<const int32_t> prompt, int vocab);
  void add_generated(int32_t token);
  int generated(int32_t token) const { return count_[token]; }
  bool seen(int32_t token) const { return seen_[token] != 0; }
  // The tokens that appeared (each once), for applying penalties without scanning the vocabulary.
  const std::vector<int32_t>& seen_tokens() const { return seen_list_; }

 private:
  std::vector<int32_t> count_;
  std::vector<uint8_t> seen_;
  std::vector<int32_t> seen_list_;
};

// Applies the repetition penalty, then presence and frequency penalties (llama.cpp's order) to
// logits [vocab] in place.
void apply_penalties(float* logits, const SamplingParams& p, const TokenHistory& h);

// The distribution sample_token draws from (temperature > 0): token ids with their probabilities
// (summing to 1), most likely first; ties by lower id.
std::vector<std::pair<int32_t, double>> token_distribution(const float* logits, int vocab, const SamplingParams& p);

// A sampled token's log-probability and the k most likely tokens' (ties by lower id), from the
// log-softmax of `logits` (the server passes the penalized logits, before temperature).
struct TokenLogprob {
  int32_t token = 0;
  double logprob = 0.0;
  std::vector<std::pair<int32_t, double>> top;
};
TokenLogprob token_logprob(const float* logits, int vocab, int32_t token, int k);

int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng);

}  // namespace mindllm
