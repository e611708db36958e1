// Forward-only inference over a loaded Model with a per-layer K/V cache: prefill a prefix once,
// then score several continuations of it ("branches") in one batched pass, or decode token by
// token. Used by `mindllm eval` (shared few-shot prefixes, all choices of a question from one
// prefix) and generation. Same results as Model::forward on the full sequence (to float rounding).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/model.h"

namespace mindllm {

class InferenceSession {
 public:
  // The model must outlive the session and not change while it is used.
  explicit InferenceSession(const Model& model);

  const Model& model() const { return model_; }
  int length() const { return static_cast<int>(tokens_.size()); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Largest sequence the model takes: max_position_embeddings for learned positions, else
  // unbounded by the model (INT32_MAX).
  int max_length() const;

  // Drops cached positions from n on (n <= length()).
  void truncate(int n);
  // Appends tokens to the cache. When last_logits is given, writes the logits of the last
  // appended position there ([V]; needs at least one token).
  void append(std::span<const int32_t> toks, float* last_logits = nullptr);
  // Makes the cache hold exactly `toks`, reusing the longest common prefix with what it holds.
  // Returns the number of reused positions.
  int sync(std::span<const int32_t> toks);

  // Runs each branch (a non-empty token sequence that continues the cached prefix) without
  // changing the cache. Logits are computed for rows [logits_from[b], len_b) of branch b and
  // returned packed in branch order in `logits` ([rows, V]); logits_from may be empty (= all rows).
  void branches(const std::vector<std::span<const int32_t>>& seqs, const std::vector<int>& logits_from,
                std::vector<float>& logits);

 private:
  // Runs packed rows through the decoder after the cached prefix. When `commit`, there is one
  // branch and its keys/values are appended to the cache. Final-norm + head for `logit_rows`.
  void run(const std::vector<int32_t>& rows, const std::vector<int>& offs, const std::vector<int>& lens,
           bool commit, const std::vector<int>& logit_rows, float* logits);
  void reserve_cache(int n);

  const Model& model_;
  std::vector<int32_t> tokens_;
  int capacity_ = 0;
  std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer: [capacity, kv_dim]
  // scratch
  std::vector<float> x_, xn_, qkv_, att_, h_, n2_, fc_, act_, r_, mean_, rstd_, gath_;
};

}  // namespace mindllm
