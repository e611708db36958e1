#include "train/batches.h"

#include <algorithm>

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"

namespace mindllm {

void Batch::resize(int rows, int cols) {
  B = rows;
  T = cols;
  inputs.resize((size_t)rows * cols);
  targets.resize((size_t)rows * cols);
  positions.clear();
}

int64_t Batch::count_targets() const {
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
}

namespace {

void split_window(const std::vector<int32_t>& w, int b, int T, Batch* out) {
  for (int t = 0; t < T; t++) {
    out->inputs[(size_t)b * T + t] = w[t];
    out->targets[(size_t)b * T + t] = w[t + 1];
  }
}

uint64_t num_val_windows(const TokenStream& s, int T) { return s.size() / (uint64_t)(T + 1); }

}  // namespace

PretrainBatches::PretrainBatches(const std::string& dir, int vocab_size, uint64_t seed, int B, int T, int eval_batches)
    : train_(dir, "train", vocab_size), val_(dir, "val", vocab_size), seed_(seed), B_(B), T_(T),
      eval_batches_(eval_batches) {
  if (train_.shards().empty()) bad_input(dir + ": no train-*.bin shards");
  if (train_.size() < (uint64_t)T + 1)
    bad_input("training shards hold " + std::to_string(train_.size()) +
              " tokens, fewer than one window of --seq+1 = " + std::to_string(T + 1));
}

void PretrainBatches::train_batch(int step, int micro, Batch* out) {
  out->resize(B_, T_);
  std::vector<int32_t> w(T_ + 1);
  uint64_t starts = train_.size() - T_;  // valid start positions
  for (int b = 0; b < B_; b++) {
    Rng rng(mix64(seed_, (uint64_t)step, (uint64_t)micro * 1000003ull + b));
    train_.copy(rng.below(starts), T_ + 1, w.data());
    split_window(w, b, T_, out);
  }
}

// Batches of B windows (the last may have fewer rows) over the first eval_batches x B windows.
int PretrainBatches::val_batches() const {
  uint64_t windows = std::min<uint64_t>((uint64_t)eval_batches_ * B_, num_val_windows(val_, T_));
  return static_cast<int>((windows + B_ - 1) / B_);
}

void PretrainBatches::val_batch(int i, Batch* out) {
  uint64_t windows = std::min<uint64_t>((uint64_t)eval_batches_ * B_, num_val_windows(val_, T_));
  uint64_t first = (uint64_t)i * B_;
  out->resize(static_cast<int>(std::min<uint64_t>(B_, windows - first)), T_);
  std::vector<int32_t> w(T_ + 1);
  for (int b = 0; b < out->B; b++) {
    val_.copy((first + b) * (uint64_t)(T_ + 1), T_ + 1, w.data());
    split_window(w, b, T_, out);
  }
}

nlohmann::json PretrainBatches::position(int next_step) const {
  return {{"sampler", "seeded-windows"}, {"next_step", next_step}};
}

std::string PretrainBatches::shard_with_other_tokenizer(uint64_t hash) const {
  for (const TokenStream* s : {&train_, &val_})
    for (const Shard& shard : s->shards())
      if (shard.header().tokenizer_hash != 0 && shard.header().tokenizer_hash != hash) return shard.path();
  return "";
}

nlohmann::json PretrainBatches::manifest() const {
  nlohmann::json files = nlohmann::json::array();
  for (const TokenStream* s : {&train_, &val_})
    for (const Shard& shard : s->shards())
      files.push_back({shard.path().substr(shard.path().find_last_of('/') + 1), shard.header().count,
                       shard.header().tokenizer_hash});
  return files;
}

std::string PretrainBatches::describe() const {
  return std::to_string(train_.size()) + " train tokens, " + std::to_string(val_.size()) + " val tokens";
}

}  // namespace mindllm
