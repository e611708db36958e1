// Entropy-based scoring of instruction samples (`mindllm select score`, docs/sft-selection.md):
// the base model's statistics over a sample's response tokens, the tokens `sft` trains on.
//
// For a sample rendered and masked as sft renders it (sft/sft_samples.h: ids[0..n), trained[t] =
// ids[t] is a target), with p_t the model's next-token distribution after ids[0..t):
//   ce_sum      = sum over trained t of -log p_{t-1}(ids[t])           (cross-entropy, nats)
//   entropy_sum = sum over trained t of H(p_{t-1}) = -sum_v p log p     (predictive entropy)
//   n_tokens    = the number of trained t; the means divide by it.
// IFD (instruction-following difficulty, Li et al. 2023): ce_mean of the sample over ce_mean of
// the same responses without the instruction (without_instruction() below).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "eval/cuda_forward.h"
#include "model/engine.h"
#include "model/kv_cache.h"
#include "sft/message.h"
#include "sft/sft_samples.h"

namespace mindllm::sft {

struct TokenStats {
  double ce_sum = 0, entropy_sum = 0;
  int64_t n_tokens = 0;
};

// The conversation with its instruction removed, for the IFD denominator: no system message and
// every user turn empty, the assistant turns unchanged. Rendered with the same template its
// assistant parts are the same text, so (tokenized part by part) the same tokens, after the
// template's empty-prompt framing instead of the instruction.
Conversation without_instruction(const Conversation& c);

// A sample's tokens for scoring: as sft renders and masks them (loss on every assistant turn),
// cut to max_length + 1 tokens (the model sees at most max_length; the last token is only a
// target). *truncated says whether it was cut.
TokenizedSample tokenize_for_scoring(const ChatTemplate& tmpl, const Tokenizer& tok, const Conversation& c,
                                     int max_length, bool* truncated);

// Where the forward runs. cuda: eval/cuda_forward.h's GPU forward (a build without CUDA, or a
// machine without a GPU, is bad input): each batch one forward right-padded to its longest
// sequence, fp32 or bf16, statistics on the host.
struct ScorerDevice {
  bool cuda = false;
  bool bf16 = false;
  int max_batch = 0;   // cuda: most sequences per forward
  int max_length = 0;  // cuda: longest input
};

// --device cuda can run here: bad input (one line) when the build has no CUDA backend or the
// machine no GPU.
inline void check_cuda_scoring() { eval::check_cuda_device(); }

class SampleScorer {
 public:
  // max_logit_floats bounds the logits of one CPU forward ([rows, vocab] floats); a batch whose
  // response rows need more is run as several forwards (the split depends only on the batch).
  explicit SampleScorer(const Model& model, const ScorerDevice& device = {},
                        int64_t max_logit_floats = int64_t(1) << 26);
  ~SampleScorer();

  // The statistics of each sample of one batch, all run through the engine together. A sample
  // with no trained token scores zeros. stats_off: only the forward (a benchmark baseline: what
  // `eval` computes for the same rows), zeros returned.
  std::vector<TokenStats> score(std::span<const TokenizedSample* const> batch, bool stats_off = false);
  // Tokens run through the decoder (on the GPU: the padded batches).
  int64_t tokens_computed() const { return cuda_ ? cuda_->tokens_computed() : engine_.tokens_computed(); }

 private:
  Engine engine_;
  std::unique_ptr<eval::CudaForward> cuda_;
  KvCache cache_;
  int64_t max_logit_floats_;
  int vocab_;
  std::vector<float> logits_;
  std::vector<double> row_ce_, row_entropy_;
};

}  // namespace mindllm::sft
