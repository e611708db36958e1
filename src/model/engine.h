// The inference engine: runs batches of tagged token chunks through the decoder (model/decoder.h)
// against a caller-owned K/V cache (model/kv_cache.h). One batch mixes prefill chunks and single
// decode tokens of independent sequences of different lengths; each entry's keys and values are
// appended to its sequence. Stateless between calls apart from scratch buffers: generation
// (serve/generator.h), evaluation (eval/scoring.h) and the server all drive it.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/cpu/attention_paged.h"
#include "kernels/cpu/quant.h"
#include "core/types.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights_io.h"

namespace mindllm {

struct BatchEntry {
  int seq = 0;                      // a KvCache sequence; at most once per batch
  std::span<const int32_t> tokens;  // appended to the sequence (non-empty)
  int logits_from = -1;             // first row whose logits are wanted; -1: the last row only
};

// The contract of an inference engine, what the drivers (serve/generator.h, the server's
// scheduler) take: the CPU Engine below, or the GPU's CudaEngine (model/cuda/cuda_engine.h).
class InferenceEngine {
 public:
  // The model must outlive the engine and not change while it is used.
  explicit InferenceEngine(const Model& model) : model_(model) {}
  virtual ~InferenceEngine() = default;
  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  // Longest sequence the model takes: max_position_embeddings for learned positions, else
  // unbounded by the model (INT32_MAX).
  int max_length() const;
  // The K/V cache type for this model (the CPU: bf16 when it runs quantised or bf16 weights, else
  // fp32). Callers create their KvCache with it, through make_cache.
  virtual KvType kv_type() const = 0;
  // A cache whose blocks live where this engine reads them (host memory, or a device pool sized
  // by max_positions, which the GPU needs > 0).
  virtual KvCache make_cache(int block_size, int64_t max_positions, KvType type) const = 0;
  // Appends every entry's tokens to its sequence in `cache`, as one batch, and writes the logits
  // of the wanted rows, packed in entry order, into `logits` ([rows, vocab]). Bad input (a token
  // outside the vocabulary, a sequence past max_length()) changes nothing.
  virtual void forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits) = 0;
  // Tokens run through the decoder by this engine so far.
  int64_t tokens_computed() const { return tokens_computed_; }

 protected:
  const Model& model_;
  int64_t tokens_computed_ = 0;
};

// Checks a batch before anything changes (bad input: a token outside the vocabulary, a sequence
// past max_length()) and lays it out: each entry's rows, and the rows whose logits are wanted.
struct BatchRows {
  int seq, row0, n_rows, past;
};
struct BatchPlan {
  std::vector<BatchRows> seqs;
  std::vector<int> logit_rows;
  std::vector<int32_t> tokens;  // every entry's tokens, packed
};
void plan_batch(const InferenceEngine& engine, const KvCache& cache, std::span<const BatchEntry> batch,
                BatchPlan& plan);

class Engine : public InferenceEngine {
 public:
  // The model's matmul precision must not change while the engine is used.
  explicit Engine(const Model& model) : InferenceEngine(model) {}

  KvType kv_type() const override;
  KvCache make_cache(int block_size, int64_t max_positions, KvType type) const override;
  void forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits) override;

 private:
  BatchPlan plan_;
  cpu::QuantScratch qscratch_;
  std::vector<const void*> block_ptrs_;  // the attention op's block tables (scratch)
  std::vector<cpu::PagedSequence> paged_;
  std::vector<float> x_, xn_, qkv_, att_, h_, n2_, fc_, act_, r_, mean_, rstd_, gath_, n1m_, n1r_, n2m_, n2r_;
};

// --device cuda can run here: bad input (one line) when the build has no CUDA backend or the
// machine no usable GPU.
void check_cuda_device();

// The engine for `device`: the CPU Engine, or the GPU's CudaEngine (model/cuda/cuda_engine.h) in
// `precision` with batches planned for max_tokens rows. Bad input (one line) for --device cuda
// without a CUDA build or a GPU, or with quantised weights (--weights q8_0|q4_0|bf16: CPU only).
std::unique_ptr<InferenceEngine> make_engine(const Model& model, Device device, Precision precision,
                                             int max_tokens = 512);
// How to load the host model for an engine on `device`: as `how` says on the CPU; in fp32 for the
// GPU (its engine makes its own bf16 copy for --precision bf16: no CPU bf16 matmul needed).
InferenceWeights host_weights(InferenceWeights how, Device device);

}  // namespace mindllm
