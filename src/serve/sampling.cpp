#include "serve/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"

namespace mindllm {

void check_sampling_params(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    bad_input("temperature must be a finite number >= 0 (0: greedy), got " + std::to_string(p.temperature));
  if (p.top_k < 0) bad_input("top-k must be >= 0 (0: off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad_input("top-p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) bad_input("min-p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    bad_input("presence-penalty must be in [-2, 2], got " + std::to_string(p.presence_penalty));
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    bad_input("frequency-penalty must be in [-2, 2], got " + std::to_string(p.frequency_penalty));
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f))
    bad_input("repetition-penalty must be a finite number > 0 (1: off), got " + std::to_string(p.repetition_penalty));
}

TokenHistory::TokenHistory(std::span<const int32_t> prompt, int vocab) : count_(vocab, 0), seen_(vocab, 0) {
  for (int32_t t : prompt)
    if (!seen_[t]) seen_[t] = 1, seen_list_.push_back(t);
}

void TokenHistory::add_generated(int32_t token) {
  count_[token]++;
  if (!seen_[token]) seen_[token] = 1, seen_list_.push_back(token);
}

void apply_penalties(float* logits, const SamplingParams& p, const TokenHistory& h) {
  for (int32_t t : h.seen_tokens()) {
    float& l = logits[t];
    if (p.repetition_penalty != 1.0f) l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    const int c = h.generated(t);
    if (c > 0) l -= p.presence_penalty + p.frequency_penalty * static_cast<float>(c);
  }
}

std::vector<std::pair<int32_t, double>> token_distribution(const float* logits, int vocab, const SamplingParams& p) {
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  int k = (p.top_k > 0 && p.top_k < vocab) ? p.top_k : vocab;
  // Highest logits first; ties by lower id, so the order is deterministic.
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  std::vector<double> prob(k);
  double mx = logits[idx[0]], sum = 0.0;
  for (int i = 0; i < k; i++) sum += prob[i] = std::exp((logits[idx[i]] - mx) / p.temperature);
  int keep = k;
  if (p.top_p < 1.0f) {
    double acc = 0.0;
    for (int i = 0; i < k; i++) {
      acc += prob[i] / sum;
      if (acc >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  // min-p: prob[0] is the largest (1 before normalizing).
  if (p.min_p > 0.0f)
    while (keep > 1 && prob[keep - 1] < p.min_p * prob[0]) keep--;
  double total = 0.0;
  for (int i = 0; i < keep; i++) total += prob[i];
  std::vector<std::pair<int32_t, double>> out(keep);
  for (int i = 0; i < keep; i++) out[i] = {idx[i], prob[i] / total};
  return out;
}

TokenLogprob token_logprob(const float* logits, int vocab, int32_t token, int k) {
  const double mx = *std::max_element(logits, logits + vocab);
  double sum = 0.0;
  for (int i = 0; i < vocab; i++) sum += std::exp((double)logits[i] - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob out;
  out.token = token;
  out.logprob = logits[token] - lse;
  k = std::clamp(k, 0, vocab);
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int i = 0; i < k; i++) out.top.emplace_back(idx[i], logits[idx[i]] - lse);
  return out;
}

int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  const std::vector<std::pair<int32_t, double>> dist = token_distribution(logits, vocab, p);
  double r = rng.uniform_double();
  for (const auto& [id, prob] : dist) {
    r -= prob;
    if (r < 0) return id;
  }
  return dist.back().first;
}

}  // namespace mindllm
