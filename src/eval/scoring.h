// Scoring requests the way lm-evaluation-harness's Hugging Face backend does, on an
// inference engine (model/engine.h): log-likelihood of continuations (multiple choice), greedy generation with
// stop sequences, and rolling log-likelihood of whole texts (perplexity).
//
// Tokenization follows lm-eval's HFLM: trailing whitespace of the context moves to the
// continuation; the context is encoded alone and the continuation is whole[len(context):] of
// the encoding of context + continuation; an empty context is the EOS (prefix) token. The input
// is (context + continuation)[-(max_length + 1):][:-1]; the score is the sum of the
// continuation's token log-probabilities, is_greedy whether each was the argmax.
//
// Speed: requests are scored from the longest common token prefix, which stays in the K/V cache
// (a subject's few-shot prefix is computed once), and all choices of a question — or the
// questions of a batch — run as branches of one pass.
//
// On the GPU (a CudaForward given, eval/cuda_forward.h) log-likelihoods have no K/V cache: the
// distinct inputs of a batch run as whole sequences, longest first, a few per forward. Generation
// runs on the GPU inference engine (model/cuda/cuda_engine.h, made at the first generation) with
// a device K/V cache: one forward per new token. The numbers are the CPU's within fp32 rounding.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eval/cuda_forward.h"
#include "model/engine.h"
#include "model/kv_cache.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::eval {

struct ChoiceScore {
  double logprob = 0.0;
  bool greedy = false;
};

struct LLRequest {  // one question: a context and its continuations (choices)
  std::vector<int32_t> context;
  std::vector<std::vector<int32_t>> conts;
};

class Scorer {
 public:
  // max_length: lm-eval's max_length (the model's max_position_embeddings unless overridden).
  // gpu: score on the GPU instead of the CPU engine (null: the CPU). kv: the K/V cache's element
  // type (none: the engine's, InferenceEngine::kv_type).
  Scorer(const Model& model, const Tokenizer& tok, int max_length, std::unique_ptr<CudaForward> gpu = nullptr,
         std::optional<KvType> kv = std::nullopt);
  ~Scorer();

  std::vector<int32_t> encode(const std::string& s) const;
  // lm-eval's _encode_pair (or the prefix token for an empty context).
  LLRequest encode_request(const std::string& context, const std::vector<std::string>& continuations) const;
  // Scores a batch of questions; out[q][c].
  std::vector<std::vector<ChoiceScore>> score(const std::vector<LLRequest>& batch);
  // Greedy generation until a stop string, EOS or max_gen_toks tokens; the text before the
  // first stop string (special tokens not decoded), as lm-eval's generate_until returns it.
  std::string generate(const std::string& context, const std::vector<std::string>& until, int max_gen_toks);
  // lm-eval's loglikelihood_rolling: disjoint windows of max_length tokens, the first after the
  // prefix token. Returns the total log-likelihood of the text's tokens.
  double rolling_loglikelihood(const std::string& text);

  int max_length() const { return max_length_; }
  int32_t prefix_token() const { return prefix_token_; }
  int64_t tokens_computed() const {
    return (gpu_ ? gpu_->tokens_computed() : engine_.tokens_computed()) +
           (gpu_engine_ ? gpu_engine_->tokens_computed() : 0);
  }

 private:
  struct Flat {
    int q, c;
    std::vector<int32_t> seq;  // model input
    const std::vector<int32_t>* cont;
  };
  void run_group(std::vector<Flat*>& group, std::vector<std::vector<ChoiceScore>>& out);
  void run_on_gpu(const std::vector<Flat>& flats, std::vector<std::vector<ChoiceScore>>& out);

  // Makes the prefix sequence hold exactly `toks`, reusing its longest common prefix.
  void sync_prefix(std::span<const int32_t> toks);

  Engine engine_;
  std::unique_ptr<CudaForward> gpu_;
  std::unique_ptr<InferenceEngine> gpu_engine_;  // generation on the GPU
  std::optional<KvType> kv_;
  std::unique_ptr<KvCache> gpu_cache_;
  KvCache cache_;
  int prefix_seq_;  // the cached prefix requests are scored from (a subject's few-shot prompt)
  const Tokenizer& tok_;
  int max_length_;
  int32_t prefix_token_ = 0;
  int vocab_ = 0;
  std::vector<float> logits_;
};

}  // namespace mindllm::eval
