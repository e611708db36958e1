#include "serve/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace mindllm {

void check_sampling_params(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    bad_input("temperature must be a finite number >= 0 (0: greedy), got " + std::to_string(p.temperature));
  if (p.top_k < 0) bad_input("top-k must be >= 0 (0: off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad_input("top-p must be in (0, 1], got " + std::to_string(p.top_p));
}

int32_t sample_token(const float* logits, int vocab, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
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
  double total = 0.0;
  for (int i = 0; i < keep; i++) total += prob[i];
  double r = rng.uniform_double() * total;
  for (int i = 0; i < keep; i++) {
    r -= prob[i];
    if (r < 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace mindllm
