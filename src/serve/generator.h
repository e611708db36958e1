// Token generation on the inference engine (model/engine.h): a batch of independent requests,
// prefilled together and then decoded one token each per step, with sampling (serve/sampling.h),
// stop tokens, stop strings, a per-token streaming callback and cancellation. Used by
// `mindllm generate`, evaluation's generation tasks (eval/scoring.h) and the server.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "model/engine.h"
#include "serve/sampling.h"

namespace mindllm {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // non-empty
  int max_new_tokens = 64;
  SamplingParams sampling;  // temperature 0: greedy
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;       // end generation; not part of the output (e.g. EOS)
  std::vector<std::string> stop_strings;  // end generation; the text is cut before the first
  int max_length = 0;                     // prompt + generated tokens fed to the model (0: the model's)
  // A cache sequence holding a prefix of the prompt (e.g. a shared few-shot prefix), or -1: the
  // request forks it and computes only the rest of the prompt.
  int prefix_seq = -1;
  // >= 0: record each generated token's log-probability and this many most likely alternatives
  // (serve/sampling.h token_logprob, on the penalized logits before temperature); -1: off.
  int logprobs = -1;
};

enum class FinishReason { length, stop, context, cancelled };
const char* finish_reason_name(FinishReason r);  // "length", "stop", "context", "cancelled"

struct GenerationResult {
  std::vector<int32_t> tokens;         // generated, without the stop token; may run past a stop string
  std::string text;                    // their text up to the first stop string (when token_text is given)
  std::vector<TokenLogprob> logprobs;  // one per token of `tokens` (request.logprobs >= 0)
  FinishReason finish = FinishReason::length;
};

// Text of one token ("" for special tokens), e.g. the tokenizer's bytes of the token.
using TokenText = std::function<std::string(int32_t)>;
// Called once per generated token of request r, with the text that became final with it: complete
// UTF-8, and nothing that could still turn out to be the start of a stop string (the last call of a
// request flushes the rest). A stop token that ends a request is passed too (it is not part of the
// output). Return false to cancel request r (its result keeps what was generated, finish =
// cancelled).
using TokenCallback = std::function<bool(int r, int32_t token, std::string_view text)>;

// One request's generation state machine, shared by generate() and the server's scheduler
// (serve/scheduler.h): after each forward pass that ends with the request's sequence, step() with
// that row's logits applies the penalties (over the prompt and the tokens generated so far),
// samples the next token, applies the stop tokens, stop strings, max_new_tokens
// and the length limit, and says which text became final (complete UTF-8, nothing that could still
// start a stop string; all of it once done). The request and token_text must outlive it.
class SequenceGenerator {
 public:
  // Bad input (the message names request `index`): an empty prompt, a prompt token outside the
  // vocabulary, a prompt longer than the model (or max_length) takes, stop strings without token_text.
  SequenceGenerator(const GenerationRequest& q, const InferenceEngine& engine, const TokenText& token_text,
                    size_t index = 0);

  struct Step {
    int32_t token;          // the sampled token (a stop token that ended the request included)
    std::string_view text;  // the text that became final with it (valid until the next call)
  };
  // logits: [vocab] of the sequence's last row; seq_len: the sequence's length in the cache now.
  Step step(const float* logits, int seq_len);
  void cancel();  // finish = cancelled, unless already done
  bool done() const { return done_; }
  const GenerationRequest& request() const { return q_; }
  GenerationResult& result() { return res_; }  // text: all generated text, cut at a stop string

 private:
  const GenerationRequest& q_;
  const TokenText& token_text_;
  int vocab_, max_len_;
  Rng rng_;
  TokenHistory history_;          // only with penalties (sampling.has_penalties())
  std::vector<float> penalized_;  // the step's logits after the penalties
  GenerationResult res_;
  size_t emitted_ = 0;  // bytes of res_.text handed out as final
  bool done_ = false;
};

// Runs every request to its end on `cache` (each gets its own sequence, released at the end).
// Stop strings need token_text. Bad input (a prompt token outside the vocabulary, a prompt longer
// than the model takes) is reported before anything runs.
std::vector<GenerationResult> generate(InferenceEngine& engine, KvCache& cache,
                                       std::span<const GenerationRequest> requests, const TokenText& token_text = {},
                                       const TokenCallback& on_token = {});

}  // namespace mindllm
