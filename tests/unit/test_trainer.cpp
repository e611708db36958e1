// The trainer over a BatchSource: with loss masks, a step's loss is the mean over the target
// tokens of all its micro-batches, so accumulating masked micro-batches equals one batch of
// all their rows (same loss, same weights after the update).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>

#include "test_tmp.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/rng.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace mindllm;
namespace fs = std::filesystem;

namespace {

constexpr int kVocab = 61, kT = 8;

// Rows of random tokens; row r masks the first r % 5 targets (a prompt that gets no loss).
void fill_row(Batch* b, int row_in_batch, int global_row) {
  Rng rng(1000 + global_row);
  for (int t = 0; t < kT; t++) {
    size_t i = (size_t)row_in_batch * kT + t;
    b->inputs[i] = static_cast<int32_t>(rng.below(kVocab));
    b->targets[i] = t < global_row % 5 ? -1 : static_cast<int32_t>(rng.below(kVocab));
  }
}

// `rows` rows per step, split into micro-batches of `per_micro` rows.
class MaskedRows : public BatchSource {
 public:
  explicit MaskedRows(int per_micro) : per_micro_(per_micro) {}
  void train_batch(int step, int micro, Batch* out) override {
    out->resize(per_micro_, kT);
    for (int r = 0; r < per_micro_; r++) fill_row(out, r, step * 100 + micro * per_micro_ + r);
  }
  int val_batches() const override { return 0; }
  void val_batch(int, Batch*) override {}
  nlohmann::json position(int next_step) const override { return {{"next_step", next_step}}; }
  std::string describe() const override { return "masked rows"; }

 private:
  int per_micro_;
};

ModelConfig tiny_llama() {
  return config_from_json({{"model_type", "llama"},
                           {"vocab_size", kVocab},
                           {"hidden_size", 16},
                           {"num_hidden_layers", 2},
                           {"num_attention_heads", 2},
                           {"intermediate_size", 24},
                           {"max_position_embeddings", 32},
                           {"hidden_act", "silu"},
                           {"tie_word_embeddings", false}},
                          "test");
}

// Trains `steps` steps of 4 rows, as `grad_accum` micro-batches; returns the per-step losses.
std::vector<double> train_run(const fs::path& out, int grad_accum, int steps) {
  TrainOptions o;
  o.out = out.string();
  o.steps = steps, o.batch = 4 / grad_accum, o.seq = kT, o.grad_accum = grad_accum;
  o.schedule.lr = 1e-2f, o.schedule.warmup = 0;
  o.log_every = 1000;
  MaskedRows data(4 / grad_accum);
  train(o, {tiny_llama(), "", "", {}}, data);
  std::vector<double> losses;
  std::istringstream in(read_file((out / "metrics.jsonl").string()));
  for (std::string line; std::getline(in, line);) losses.push_back(nlohmann::json::parse(line).at("loss"));
  return losses;
}

std::vector<float> weights_at(const fs::path& run, int step) {
  Model m(tiny_llama());
  m.load_weights((run / "ckpt" / checkpoint_name(step)).string());
  return m.params();
}

}  // namespace

TEST(Trainer, MaskedMicroBatchesWeighByTheirTargets) {
  set_log_enabled(false);
  fs::path dir = mindllm_test::test_tmp_root() / "trainer";
  fs::remove_all(dir);
  std::vector<double> accum = train_run(dir / "accum", 2, 3), whole = train_run(dir / "whole", 1, 3);
  set_log_enabled(true);
  ASSERT_EQ(accum.size(), 3u);
  ASSERT_EQ(whole.size(), 3u);

  // Step 1 from the initial weights, by hand: the micro-batches count 15 and 11 targets.
  Model m(tiny_llama());
  m.init_weights(TrainOptions{}.seed);
  MaskedRows halves(2);
  Batch b;
  double sum = 0;
  int64_t n = 0;
  for (int micro = 0; micro < 2; micro++) {
    halves.train_batch(0, micro, &b);
    sum += (double)m.forward(b.inputs.data(), b.targets.data(), b.B, b.T) * b.count_targets();
    n += b.count_targets();
  }
  EXPECT_EQ(n, 26);
  EXPECT_NEAR(accum[0], sum / n, 1e-6);
  for (int s = 0; s < 3; s++) EXPECT_NEAR(accum[s], whole[s], 2e-6 * whole[s]) << "step " << s + 1;
  std::vector<float> wa = weights_at(dir / "accum", 3), ww = weights_at(dir / "whole", 3);
  double worst = 0;
  for (size_t i = 0; i < wa.size(); i++) worst = std::max(worst, (double)std::fabs(wa[i] - ww[i]));
  EXPECT_LT(worst, 1e-5);
  fs::remove_all(dir);
}

// A model that ran a larger batch reuses its activation buffers for a smaller one (SFT batches
// vary in length): the loss and gradients equal a fresh model's.
TEST(Model, SmallerBatchAfterALargerOneEqualsAFreshModel) {
  ModelConfig cfg = tiny_llama();
  Model used(cfg), fresh(cfg);
  used.init_weights(3);
  fresh.init_weights(3);
  Batch big, small;
  big.resize(3, kT);
  for (int r = 0; r < 3; r++) fill_row(&big, r, r);
  small.resize(2, kT - 3);
  Rng rng(9);
  for (size_t i = 0; i < small.inputs.size(); i++)
    small.inputs[i] = static_cast<int32_t>(rng.below(kVocab)),
    small.targets[i] = static_cast<int32_t>(rng.below(kVocab));
  used.zero_grads();
  used.forward(big.inputs.data(), big.targets.data(), big.B, big.T);
  used.backward();
  used.zero_grads();
  fresh.zero_grads();
  float a = used.forward(small.inputs.data(), small.targets.data(), small.B, small.T);
  float b = fresh.forward(small.inputs.data(), small.targets.data(), small.B, small.T);
  EXPECT_EQ(a, b);
  used.backward();
  fresh.backward();
  EXPECT_EQ(used.grads(), fresh.grads());
}
