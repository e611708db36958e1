// Instruction data as the trainer's BatchSource: files -> conversations -> tokens with loss
// masks (sft_samples.h) -> micro-batches.
//
// Order: the training samples (each file's, repeated or subsampled by its weight) are visited
// epoch by epoch, each epoch in a seeded permutation; row r of micro-batch m of step s is the
// sample at global position ((s * grad_accum + m) * B + r), so the order depends only on the
// seed and the step (exact resume). A micro-batch is as long as its longest sample (at most
// --seq); shorter rows are padded, pad positions have no target.
//
// Packing (--packing): each epoch's samples, in that epoch's order, go into windows of --seq
// positions, each sample into the first window with room for it (first fit); a sample of n tokens
// takes n - 1 positions (inputs ids[0..n-2], targets ids[1..n-1]), so no target crosses a
// sample boundary. Rows of the batches are then windows instead of samples: row r of micro-batch
// m of step s is window ((s * grad_accum + m) * B + r) of the epochs' windows one after another.
// A window's positions restart at 0 for each sample (Batch::positions), so the model confines
// attention to each sample; its unused tail is padding without targets.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sft/sft_data.h"
#include "sft/sft_samples.h"
#include "train/batches.h"

namespace mindllm::sft {

struct SftDataOptions {
  std::string data;      // FILE[:WEIGHT],...
  std::string val_data;  // FILE,... held out for validation (else --val-fraction of each file)
  double val_fraction = 0.0;
  SftFormat format = SftFormat::auto_detect;
  bool strict = false;
  LossOn loss_on = LossOn::assistant;
  int seq = 1024;          // a sample is at most seq + 1 tokens (seq inputs, seq targets)
  bool drop_long = false;  // longer samples: dropped, else truncated
  uint64_t seed = 1234;
};

struct SftData {
  std::vector<TokenizedSample> train, val;
  LoadReport report;
  int64_t truncated = 0, dropped_long = 0, untrained = 0;  // untrained: no trained token within --seq
  std::string summary() const;                             // one line
};

// Reads, renders, tokenizes and masks the data; weights applied to the training part.
SftData prepare_sft_data(const SftDataOptions& opt, const ChatTemplate& tmpl, const Tokenizer& tok);

// The order of epoch `epoch` over n samples: a seeded permutation of [0, n).
std::vector<uint32_t> epoch_order(uint64_t n, uint64_t seed, int64_t epoch);

// First fit in the given order: windows of `seq` positions, each a list of sample indices (in
// order); a sample of n tokens takes n - 1 <= seq positions.
using Window = std::vector<uint32_t>;
std::vector<Window> pack_first_fit(const std::vector<TokenizedSample>& samples, const std::vector<uint32_t>& order,
                                   int seq);
int window_length(const std::vector<TokenizedSample>& samples, const Window& w);  // positions used

class SftBatches : public BatchSource {
 public:
  // packing: rows are windows of `seq` positions (above), else samples.
  SftBatches(std::vector<TokenizedSample> train, std::vector<TokenizedSample> val, uint64_t seed, int B, int grad_accum,
             int eval_batches, bool packing = false, int seq = 0);
  void train_batch(int step, int micro, Batch* out) override;
  int val_batches() const override;
  void val_batch(int i, Batch* out) override;
  nlohmann::json position(int next_step) const override;
  std::string describe() const override;

 private:
  const TokenizedSample& train_sample(int64_t global_row);
  // Packing: the epoch of global window g and g's index in it (packs epochs as needed).
  std::pair<int64_t, int64_t> window_epoch(int64_t g) const;
  const Window& train_window(int64_t g);
  int64_t val_rows() const;
  std::vector<TokenizedSample> train_, val_;
  uint64_t seed_;
  int B_, G_, eval_batches_;
  bool packing_;
  int seq_;
  int64_t perm_epoch_ = -1;
  std::vector<uint32_t> perm_;
  std::vector<Window> windows_, val_windows_;    // packing: the windows of epoch perm_epoch_; of val_
  mutable std::vector<int64_t> epoch_start_{0};  // packing: first global window of each epoch packed so far
};

// Rows of samples -> a batch as long as the longest (inputs ids[0..n-1), targets ids[1..n) where
// trained), padded.
void fill_batch(const std::vector<const TokenizedSample*>& rows, Batch* out);
// Rows of packed windows -> a batch as long as the longest window, with position ids.
void fill_packed_batch(const std::vector<TokenizedSample>& samples, const std::vector<const Window*>& rows, Batch* out);

}  // namespace mindllm::sft
