// What the trainer trains on: a BatchSource hands it the micro-batches of each optimizer step
// and the validation batches. Pre-training windows over token shards are one source; SFT samples
// with loss masks and a data-parallel rank's slice of the global batch are others.
//
// Pre-training (PretrainBatches): each row of each micro-batch is a window of T+1 tokens starting
// at a position drawn from a stream seeded by (seed, step, row): the data order depends only on
// the seed and the step, so a resumed run reads exactly what an uninterrupted one would.
// Validation: the first `batches` x B consecutive, non-overlapping windows of T+1 tokens from the
// start of the val shards, in file order.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/shard.h"

namespace mindllm {

// B rows of T tokens: inputs and next-token targets, row-major; a target < 0 gets no loss.
// positions: empty (every row one sequence at positions 0..T-1), or B*T position ids of packed
// rows, restarting at 0 for each sample (model/segments.h).
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // B*T each
  std::vector<int32_t> positions;
  void resize(int rows, int cols);  // clears positions
  const int32_t* position_ids() const { return positions.empty() ? nullptr : positions.data(); }
  int64_t count_targets() const;  // targets >= 0
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Micro-batch `micro` of optimizer step `step` (both 0-based). Must depend only on (step, micro),
  // so that a resumed run sees the same data.
  virtual void train_batch(int step, int micro, Batch* out) = 0;
  virtual int val_batches() const = 0;  // 0: no validation
  virtual void val_batch(int i, Batch* out) = 0;
  // Where the data stands before `next_step`, for trainer_state.json ("data_position").
  virtual nlohmann::json position(int next_step) const = 0;
  // One line for the start of a run ("1.2M train tokens, ...").
  virtual std::string describe() const = 0;
  // What the data is (file names and sizes): data-parallel ranks check at start that they agree.
  virtual nlohmann::json manifest() const { return describe(); }
};

class PretrainBatches : public BatchSource {
 public:
  // The shards <dir>/train-*.bin and val-*.bin, checked against the model's vocabulary.
  PretrainBatches(const std::string& dir, int vocab_size, uint64_t seed, int B, int T, int eval_batches);
  void train_batch(int step, int micro, Batch* out) override;
  int val_batches() const override;
  void val_batch(int i, Batch* out) override;
  nlohmann::json position(int next_step) const override;
  std::string describe() const override;
  nlohmann::json manifest() const override;
  // The first shard whose header names a tokenizer other than `hash` (0 in a header: unknown,
  // accepted); empty if none.
  std::string shard_with_other_tokenizer(uint64_t hash) const;

 private:
  TokenStream train_, val_;
  uint64_t seed_;
  int B_, T_, eval_batches_;
};

}  // namespace mindllm
