#include "serve/generator.h"

#include <algorithm>

#include "core/error.h"
#include "core/utf8.h"
#include "core/rng.h"

namespace mindllm {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::length: return "length";
    case FinishReason::stop: return "stop";
    case FinishReason::context: return "context";
    case FinishReason::cancelled: return "cancelled";
  }
  return "?";
}

namespace {

// Length of the longest suffix of s that is a proper prefix of some stop string.
size_t stop_prefix_tail(const std::string& s, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& u : stops)
    for (size_t k = std::min(u.size() - 1, s.size()); k > hold; k--)
      if (s.compare(s.size() - k, k, u, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

}  // namespace

SequenceGenerator::SequenceGenerator(const GenerationRequest& q, const InferenceEngine& engine,
                                     const TokenText& token_text, size_t index)
    : q_(q), token_text_(token_text), vocab_(engine.config().vocab_size), rng_(q.seed) {
  if (q.prompt.empty()) bad_input("generation request " + std::to_string(index) + ": empty prompt");
  if (!q.stop_strings.empty() && !token_text) bad_input("stop strings need the tokenizer");
  for (int32_t t : q.prompt)
    if (t < 0 || t >= vocab_) bad_input("prompt token " + std::to_string(t) + " is outside the model's vocabulary");
  max_len_ = q.max_length > 0 ? std::min(q.max_length, engine.max_length()) : engine.max_length();
  if ((int64_t)q.prompt.size() > max_len_)
    bad_input("a prompt of " + std::to_string(q.prompt.size()) + " tokens exceeds the model's " +
              std::to_string(max_len_) + " positions");
  done_ = q.max_new_tokens <= 0;
  if (q.sampling.has_penalties()) history_ = TokenHistory(q.prompt, vocab_);
}

void SequenceGenerator::cancel() {
  if (done_) return;
  res_.finish = FinishReason::cancelled;
  done_ = true;
}

SequenceGenerator::Step SequenceGenerator::step(const float* logits, int seq_len) {
  MINDLLM_CHECK(!done_, "SequenceGenerator::step after the end");
  if (q_.sampling.has_penalties()) {
    penalized_.assign(logits, logits + vocab_);
    apply_penalties(penalized_.data(), q_.sampling, history_);
    logits = penalized_.data();
  }
  const int32_t tok = sample_token(logits, vocab_, q_.sampling, rng_);
  if (q_.sampling.has_penalties()) history_.add_generated(tok);
  std::string& text = res_.text;
  if (std::find(q_.stop_tokens.begin(), q_.stop_tokens.end(), tok) != q_.stop_tokens.end()) {
    res_.finish = FinishReason::stop;
    done_ = true;
  } else {
    res_.tokens.push_back(tok);
    if (q_.logprobs >= 0) res_.logprobs.push_back(token_logprob(logits, vocab_, tok, q_.logprobs));
    const size_t before = text.size();
    if (token_text_) text += token_text_(tok);
    // The stop strings: the earliest occurrence ends generation. None was in the text before this
    // token, so a new one ends in its bytes: search only the tail (not the whole text per token).
    size_t cut = std::string::npos;
    for (const std::string& u : q_.stop_strings)
      if (!u.empty()) cut = std::min(cut, text.find(u, before >= u.size() ? before - u.size() + 1 : 0));
    if (cut != std::string::npos) {
      text.resize(cut);
      res_.finish = FinishReason::stop;
      done_ = true;
    } else if ((int)res_.tokens.size() >= q_.max_new_tokens) {
      res_.finish = FinishReason::length;
      done_ = true;
    } else if (seq_len + 1 > max_len_) {
      res_.finish = FinishReason::context;
      done_ = true;
    }
  }
  // Text that is final now: all of it at the end, else hold back what may still change.
  size_t final_end = text.size();
  if (!done_) final_end -= std::max(utf8::incomplete_tail(text), stop_prefix_tail(text, q_.stop_strings));
  final_end = std::max(final_end, emitted_);
  const std::string_view delta(text.data() + emitted_, final_end - emitted_);
  emitted_ = final_end;
  return {tok, delta};
}

std::vector<GenerationResult> generate(InferenceEngine& engine, KvCache& cache,
                                       std::span<const GenerationRequest> requests, const TokenText& token_text,
                                       const TokenCallback& on_token) {
  const int V = engine.config().vocab_size;
  const size_t n = requests.size();
  std::vector<SequenceGenerator> gens;
  gens.reserve(n);
  for (size_t r = 0; r < n; r++) gens.emplace_back(requests[r], engine, token_text, r);
  std::vector<int> seqs(n, -1);
  std::vector<int32_t> next(n);
  std::vector<BatchEntry> batch;
  std::vector<int> owner;  // request of each batch entry
  std::vector<float> logits;
  try {
    for (size_t r = 0; r < n; r++) {
      const GenerationRequest& q = requests[r];
      std::span<const int32_t> rest(q.prompt);
      if (q.prefix_seq >= 0) {
        const std::vector<int32_t>& pre = cache.tokens(q.prefix_seq);
        MINDLLM_CHECK(pre.size() <= q.prompt.size() && std::equal(pre.begin(), pre.end(), q.prompt.begin()),
                      "generate: prefix_seq is not a prefix of the prompt");
        seqs[r] = cache.fork(q.prefix_seq);
        // At least the prompt's last token runs: its logits give the first new token.
        const size_t keep = std::min(pre.size(), q.prompt.size() - 1);
        cache.truncate(seqs[r], static_cast<int>(keep));
        rest = rest.subspan(keep);
      } else {
        seqs[r] = cache.create();
      }
      if (gens[r].done()) continue;
      batch.push_back(BatchEntry{seqs[r], rest});
      owner.push_back(static_cast<int>(r));
    }
    while (!batch.empty()) {
      engine.forward(cache, batch, logits);
      std::vector<BatchEntry> step;
      std::vector<int> step_owner;
      for (size_t e = 0; e < batch.size(); e++) {
        const int r = owner[e];
        SequenceGenerator& g = gens[r];
        const SequenceGenerator::Step s = g.step(logits.data() + e * (size_t)V, cache.length(seqs[r]));
        if (on_token && !on_token(r, s.token, s.text)) g.cancel();
        if (g.done()) continue;
        next[r] = s.token;
        step.push_back(BatchEntry{seqs[r], std::span<const int32_t>(&next[r], 1)});
        step_owner.push_back(r);
      }
      batch = std::move(step);
      owner = std::move(step_owner);
    }
  } catch (...) {
    for (int s : seqs)
      if (s >= 0) cache.release(s);
    throw;
  }
  std::vector<GenerationResult> results;
  results.reserve(n);
  for (size_t r = 0; r < n; r++) {
    cache.release(seqs[r]);
    results.push_back(std::move(gens[r].result()));
  }
  return results;
}

}  // namespace mindllm
