#include "serve/generator.h"

#include <algorithm>

#include "core/error.h"
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

// Bytes at the end of s that start an incomplete UTF-8 sequence (0 when s ends complete).
size_t incomplete_utf8_tail(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; back++) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

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

struct Active {
  int seq = -1;
  Rng rng{0};
  std::string text;     // all generated text so far
  size_t emitted = 0;   // bytes of text passed to the callback
  int max_len = 0;
  bool done = false;
};

}  // namespace

std::vector<GenerationResult> generate(Engine& engine, KvCache& cache, std::span<const GenerationRequest> requests,
                                       const TokenText& token_text, const TokenCallback& on_token) {
  const int V = engine.config().vocab_size;
  const size_t n = requests.size();
  std::vector<GenerationResult> results(n);
  std::vector<Active> act(n);
  for (size_t r = 0; r < n; r++) {
    const GenerationRequest& q = requests[r];
    if (q.prompt.empty()) bad_input("generation request " + std::to_string(r) + ": empty prompt");
    if (!q.stop_strings.empty() && !token_text) bad_input("stop strings need the tokenizer");
    for (int32_t t : q.prompt)
      if (t < 0 || t >= V) bad_input("prompt token " + std::to_string(t) + " is outside the model's vocabulary");
    act[r].max_len = q.max_length > 0 ? std::min(q.max_length, engine.max_length()) : engine.max_length();
    if ((int64_t)q.prompt.size() > act[r].max_len)
      bad_input("a prompt of " + std::to_string(q.prompt.size()) + " tokens exceeds the model's " +
                std::to_string(act[r].max_len) + " positions");
    act[r].rng = Rng(q.seed);
  }
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
        act[r].seq = cache.fork(q.prefix_seq);
        // At least the prompt's last token runs: its logits give the first new token.
        const size_t keep = std::min(pre.size(), q.prompt.size() - 1);
        cache.truncate(act[r].seq, static_cast<int>(keep));
        rest = rest.subspan(keep);
      } else {
        act[r].seq = cache.create();
      }
      if (q.max_new_tokens <= 0) {
        act[r].done = true;
        continue;
      }
      batch.push_back(BatchEntry{act[r].seq, rest});
      owner.push_back(static_cast<int>(r));
    }
    while (!batch.empty()) {
      engine.forward(cache, batch, logits);
      std::vector<BatchEntry> step;
      std::vector<int> step_owner;
      for (size_t e = 0; e < batch.size(); e++) {
        const int r = owner[e];
        const GenerationRequest& q = requests[r];
        Active& a = act[r];
        GenerationResult& res = results[r];
        const int32_t tok = sample_token(logits.data() + e * (size_t)V, V, q.sampling, a.rng);
        if (std::find(q.stop_tokens.begin(), q.stop_tokens.end(), tok) != q.stop_tokens.end()) {
          res.finish = FinishReason::stop;
          a.done = true;
        } else {
          res.tokens.push_back(tok);
          if (token_text) a.text += token_text(tok);
          // The stop strings: the earliest occurrence ends generation.
          size_t cut = std::string::npos;
          for (const std::string& u : q.stop_strings)
            if (!u.empty()) cut = std::min(cut, a.text.find(u));
          if (cut != std::string::npos) {
            a.text.resize(cut);
            res.finish = FinishReason::stop;
            a.done = true;
          } else if ((int)res.tokens.size() >= q.max_new_tokens) {
            res.finish = FinishReason::length;
            a.done = true;
          } else if (cache.length(a.seq) + 1 > a.max_len) {
            res.finish = FinishReason::context;
            a.done = true;
          }
        }
        // Text that is final now: all of it at the end, else hold back what may still change.
        size_t final_end = a.text.size();
        if (!a.done) final_end -= std::max(incomplete_utf8_tail(a.text), stop_prefix_tail(a.text, q.stop_strings));
        final_end = std::max(final_end, a.emitted);
        const std::string_view delta(a.text.data() + a.emitted, final_end - a.emitted);
        a.emitted = final_end;
        if (on_token && !on_token(r, tok, delta) && !a.done) {
          res.finish = FinishReason::cancelled;
          a.done = true;
        }
        if (a.done) continue;
        next[r] = tok;
        step.push_back(BatchEntry{a.seq, std::span<const int32_t>(&next[r], 1)});
        step_owner.push_back(r);
      }
      batch = std::move(step);
      owner = std::move(step_owner);
    }
  } catch (...) {
    for (Active& a : act)
      if (a.seq >= 0) cache.release(a.seq);
    throw;
  }
  for (size_t r = 0; r < n; r++) {
    cache.release(act[r].seq);
    results[r].text = std::move(act[r].text);
  }
  return results;
}

}  // namespace mindllm
