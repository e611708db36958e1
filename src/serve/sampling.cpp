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

namespace {

// A token in sampling order: highest logit first, ties by lower id; w = exp((logit - max) / T).
struct Ranked {
  float logit;
  int32_t id;
  double w;
};
bool better(const Ranked& a, const Ranked& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

// The first position i in sampling order of a[0, n) whose cumulative weight (a[0].w + ... + a[i].w
// in that order) exceeds `target` (strict) or reaches it, or n if none. Rearranges a so that a[0, i]
// are the i + 1 first tokens in order, a[i] the i-th. A quickselect on prefix sums: O(n) expected
// instead of sorting the vocabulary for each token (sums differ from the sorted walk's by rounding).
size_t first_reaching(Ranked* a, size_t n, double target, bool strict) {
  auto passes = [&](double cum) { return strict ? cum > target : cum >= target; };
  size_t lo = 0, hi = n;
  double before = 0.0;  // weight of a[0, lo)
  while (hi - lo > 32) {
    Ranked x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];  // median of three as the pivot
    if (better(y, x)) std::swap(x, y);
    if (better(z, y)) std::swap(y, z);
    if (better(y, x)) std::swap(x, y);
    const Ranked pivot = y;
    const size_t mid = std::partition(a + lo, a + hi, [&](const Ranked& r) { return better(r, pivot); }) - a;
    std::iter_swap(a + mid, std::find_if(a + mid, a + hi, [&](const Ranked& r) { return r.id == pivot.id; }));
    double s = 0.0;
    for (size_t i = lo; i < mid; i++) s += a[i].w;
    if (passes(before + s)) {
      hi = mid;
      continue;
    }
    before += s + a[mid].w;
    if (passes(before)) return mid;
    lo = mid + 1;
  }
  std::sort(a + lo, a + hi, better);
  for (size_t i = lo; i < hi; i++)
    if (passes(before += a[i].w)) return i;
  return n;
}

// The tokens top-k, top-p and min-p keep, as a[0, keep) (in no particular order), with their summed
// weight. a: the whole vocabulary.
std::pair<size_t, double> keep_tokens(std::vector<Ranked>& a, const SamplingParams& p) {
  size_t n = a.size();
  if (p.top_k > 0 && (size_t)p.top_k < n) {
    std::nth_element(a.begin(), a.begin() + p.top_k, a.end(), better);
    n = p.top_k;
  }
  float mx = a[0].logit;
  for (size_t i = 1; i < n; i++) mx = std::max(mx, a[i].logit);
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += a[i].w = std::exp((a[i].logit - (double)mx) / p.temperature);
  if (p.top_p < 1.0f) {
    const size_t i = first_reaching(a.data(), n, p.top_p * sum, false);
    if (i < n) n = i + 1, sum = -1.0;
  }
  // min-p: the top token weighs 1 and weights fall along the order, so the kept ones are a prefix.
  if (p.min_p > 0.0f) {
    const size_t m =
        std::partition(a.begin(), a.begin() + n, [&](const Ranked& r) { return r.w >= p.min_p; }) - a.begin();
    if (m < n) n = std::max<size_t>(m, 1), sum = -1.0;
  }
  if (sum < 0) {
    sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += a[i].w;
  }
  return {n, sum};
}

std::vector<Ranked> ranked(const float* logits, int vocab) {
  std::vector<Ranked> a(vocab);
  for (int i = 0; i < vocab; i++) a[i] = Ranked{logits[i], i, 0.0};
  return a;
}

}  // namespace

std::vector<std::pair<int32_t, double>> token_distribution(const float* logits, int vocab, const SamplingParams& p) {
  std::vector<Ranked> a = ranked(logits, vocab);
  const auto [keep, total] = keep_tokens(a, p);
  std::sort(a.begin(), a.begin() + keep, better);
  std::vector<std::pair<int32_t, double>> out(keep);
  for (size_t i = 0; i < keep; i++) out[i] = {a[i].id, a[i].w / total};
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
  // The token where token_distribution's cumulative probability passes a uniform draw.
  std::vector<Ranked> a = ranked(logits, vocab);
  const auto [keep, total] = keep_tokens(a, p);
  const double u = rng.uniform_double();
  const size_t i = first_reaching(a.data(), keep, u * total, true);
  if (i < keep) return a[i].id;
  return std::max_element(a.begin(), a.begin() + keep, better)->id;  // rounding: the last kept token
}

}  // namespace mindllm
