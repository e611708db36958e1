// Instruction data as the trainer's BatchSource: files -> conversations -> tokens with loss
// masks (sft_samples.h) -> micro-batches.
//
// Order: the training samples (each file's, repeated or subsampled by its weight) are visited
// epoch by epoch, each epoch in a seeded permutation; row r of micro-batch m of step s is the
// sample at global position ((s * grad_accum + m) * B + r), so the order depends only on the
// seed and the step (exact resume). A micro-batch is as long as its longest sample (at most
// --seq); shorter rows are padded, pad positions have no target.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sft/sft_data.h"
#include "sft/sft_samples.h"
#include "train/batches.h"

namespace mindllm::sft {

struct SftDataOptions {
  std::string data;             // FILE[:WEIGHT],...
  std::string val_data;         // FILE,... held out for validation (else --val-fraction of each file)
  double val_fraction = 0.0;
  SftFormat format = SftFormat::auto_detect;
  bool strict = false;
  LossOn loss_on = LossOn::assistant;
  int seq = 1024;               // a sample is at most seq + 1 tokens (seq inputs, seq targets)
  bool drop_long = false;       // longer samples: dropped, else truncated
  uint64_t seed = 1234;
};

struct SftData {
  std::vector<TokenizedSample> train, val;
  LoadReport report;
  int64_t truncated = 0, dropped_long = 0, untrained = 0;  // untrained: no trained token within --seq
  std::string summary() const;  // one line
};

// Reads, renders, tokenizes and masks the data; weights applied to the training part.
SftData prepare_sft_data(const SftDataOptions& opt, const ChatTemplate& tmpl, const Tokenizer& tok);

class SftBatches : public BatchSource {
 public:
  SftBatches(std::vector<TokenizedSample> train, std::vector<TokenizedSample> val, uint64_t seed, int B,
             int grad_accum, int eval_batches);
  void train_batch(int step, int micro, Batch* out) override;
  int val_batches() const override;
  void val_batch(int i, Batch* out) override;
  nlohmann::json position(int next_step) const override;
  std::string describe() const override;

 private:
  const TokenizedSample& train_sample(int64_t global_row);
  std::vector<TokenizedSample> train_, val_;
  uint64_t seed_;
  int B_, G_, eval_batches_;
  int64_t perm_epoch_ = -1;
  std::vector<uint32_t> perm_;
};

// Rows of samples -> a batch as long as the longest (inputs ids[0..n-1), targets ids[1..n) where
// trained), padded.
void fill_batch(const std::vector<const TokenizedSample*>& rows, Batch* out);

}  // namespace mindllm::sft
