// The inference engine: runs batches of tagged token chunks through the decoder (model/decoder.h)
// against a caller-owned K/V cache (model/kv_cache.h). One batch mixes prefill chunks and single
// decode tokens of independent sequences of different lengths; each entry's keys and values are
// appended to its sequence. Stateless between calls apart from scratch buffers: generation
// (serve/generator.h), evaluation (eval/scoring.h) and the server all drive it.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/attention_paged.h"
#include "kernels/cpu/quant.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace mindllm {

struct BatchEntry {
  int seq = 0;                      // a KvCache sequence; at most once per batch
  std::span<const int32_t> tokens;  // appended to the sequence (non-empty)
  int logits_from = -1;             // first row whose logits are wanted; -1: the last row only
};

class Engine {
 public:
  // The model must outlive the engine and not change while it is used (its matmul precision too).
  explicit Engine(const Model& model);

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  // Longest sequence the model takes: max_position_embeddings for learned positions, else
  // unbounded by the model (INT32_MAX).
  int max_length() const;
  // The K/V cache type for this model: bf16 when it runs quantised (or bf16) weights, else fp32.
  // Callers create their KvCache with it.
  KvType kv_type() const;

  // Appends every entry's tokens to its sequence in `cache`, as one batch, and writes the logits
  // of the wanted rows, packed in entry order, into `logits` ([rows, vocab]). Bad input (a token
  // outside the vocabulary, a sequence past max_length()) changes nothing.
  void forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits);
  // Tokens run through the decoder by this engine so far.
  int64_t tokens_computed() const { return tokens_computed_; }

 private:
  const Model& model_;
  int64_t tokens_computed_ = 0;
  std::vector<int32_t> rows_;
  cpu::QuantScratch qscratch_;
  std::vector<const void*> block_ptrs_;  // the attention op's block tables (scratch)
  std::vector<cpu::PagedSequence> paged_;
  std::vector<float> x_, xn_, qkv_, att_, h_, n2_, fc_, act_, r_, mean_, rstd_, gath_, n1m_, n1r_, n2m_, n2r_;
};

}  // namespace mindllm
