#include "sft/sft_batches.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/rng.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::sft {

namespace {

// A seeded permutation of [0, n) (Fisher-Yates over core/rng: the same on every machine).
std::vector<uint32_t> permutation(uint64_t n, uint64_t seed) {
  std::vector<uint32_t> p(n);
  for (uint64_t i = 0; i < n; i++) p[i] = static_cast<uint32_t>(i);
  Rng rng(seed);
  for (uint64_t i = n; i > 1; i--) std::swap(p[i - 1], p[rng.below(i)]);
  return p;
}

}  // namespace

std::string SftData::summary() const {
  std::string s = report.summary() + "; " + std::to_string(train.size()) + " train, " + std::to_string(val.size()) +
                  " validation samples";
  if (truncated) s += "; " + std::to_string(truncated) + " truncated to --seq";
  if (dropped_long) s += "; " + std::to_string(dropped_long) + " longer than --seq dropped";
  if (untrained) s += "; " + std::to_string(untrained) + " without trained tokens within --seq dropped";
  return s;
}

SftData prepare_sft_data(const SftDataOptions& opt, const ChatTemplate& tmpl, const Tokenizer& tok) {
  if (!(opt.val_fraction >= 0 && opt.val_fraction < 1)) bad_input("--val-fraction must be in [0, 1)");
  SftData d;
  // A tokenized sample within --seq + 1 tokens with something to train on, or nothing.
  auto fit = [&](const Conversation& c, std::vector<TokenizedSample>& into) {
    TokenizedSample s = tokenize_conversation(tmpl, tok, c, opt.loss_on);
    if (s.ids.size() > (size_t)opt.seq + 1) {
      if (opt.drop_long) {
        d.dropped_long++;
        return;
      }
      s.ids.resize(opt.seq + 1);
      s.trained.resize(opt.seq + 1);
      d.truncated++;
    }
    if (s.count_trained() == 0) {
      d.untrained++;
      return;
    }
    into.push_back(std::move(s));
  };
  uint64_t file_no = 0;
  for (const SftSource& src : parse_sft_sources(opt.data)) {
    std::vector<Conversation> convs = load_conversations(src.path, opt.format, opt.strict, d.report);
    std::vector<uint32_t> order = permutation(convs.size(), mix64(opt.seed, 0x5f7ull, file_no++));
    size_t n_val = opt.val_data.empty() ? static_cast<size_t>(std::ceil(opt.val_fraction * convs.size())) : 0;
    std::vector<TokenizedSample> train;
    for (size_t i = 0; i < order.size(); i++) fit(convs[order[i]], i < n_val ? d.val : train);
    // The weight: whole copies, then a seeded part of one more.
    double w = src.weight;
    for (; w >= 1.0; w -= 1.0) d.train.insert(d.train.end(), train.begin(), train.end());
    size_t extra = static_cast<size_t>(std::llround(w * train.size()));
    std::vector<uint32_t> pick = permutation(train.size(), mix64(opt.seed, 0x3e1ull, file_no));
    for (size_t i = 0; i < extra; i++) d.train.push_back(train[pick[i]]);
  }
  if (!opt.val_data.empty())
    for (const SftSource& src : parse_sft_sources(opt.val_data))
      for (const Conversation& c : load_conversations(src.path, opt.format, opt.strict, d.report)) fit(c, d.val);
  return d;
}

void fill_batch(const std::vector<const TokenizedSample*>& rows, Batch* out) {
  int T = 1;
  for (const TokenizedSample* s : rows) T = std::max<int>(T, static_cast<int>(s->ids.size()) - 1);
  out->resize(static_cast<int>(rows.size()), T);
  std::fill(out->inputs.begin(), out->inputs.end(), 0);
  std::fill(out->targets.begin(), out->targets.end(), -1);
  for (size_t r = 0; r < rows.size(); r++) {
    const TokenizedSample& s = *rows[r];
    int32_t* in = out->inputs.data() + r * T;
    int32_t* tg = out->targets.data() + r * T;
    for (size_t t = 0; t + 1 < s.ids.size(); t++) {
      in[t] = s.ids[t];
      if (s.trained[t + 1]) tg[t] = s.ids[t + 1];
    }
  }
}

SftBatches::SftBatches(std::vector<TokenizedSample> train, std::vector<TokenizedSample> val, uint64_t seed, int B,
                       int grad_accum, int eval_batches)
    : train_(std::move(train)), val_(std::move(val)), seed_(seed), B_(B), G_(grad_accum), eval_batches_(eval_batches) {
  if (train_.empty()) bad_input("no usable training samples (see the counts above)");
}

const TokenizedSample& SftBatches::train_sample(int64_t global_row) {
  const int64_t n = static_cast<int64_t>(train_.size());
  int64_t epoch = global_row / n;
  if (epoch != perm_epoch_) {
    perm_ = permutation(n, mix64(seed_, 0x5f7e90c4ull, (uint64_t)epoch));
    perm_epoch_ = epoch;
  }
  return train_[perm_[global_row % n]];
}

void SftBatches::train_batch(int step, int micro, Batch* out) {
  std::vector<const TokenizedSample*> rows(B_);
  const int64_t first = ((int64_t)step * G_ + micro) * B_;
  for (int r = 0; r < B_; r++) rows[r] = &train_sample(first + r);
  fill_batch(rows, out);
}

int SftBatches::val_batches() const {
  int64_t n = std::min<int64_t>((int64_t)eval_batches_ * B_, (int64_t)val_.size());
  return static_cast<int>((n + B_ - 1) / B_);
}

void SftBatches::val_batch(int i, Batch* out) {
  int64_t n = std::min<int64_t>((int64_t)eval_batches_ * B_, (int64_t)val_.size());
  std::vector<const TokenizedSample*> rows;
  for (int64_t k = (int64_t)i * B_; k < std::min<int64_t>(n, (int64_t)(i + 1) * B_); k++) rows.push_back(&val_[k]);
  fill_batch(rows, out);
}

nlohmann::json SftBatches::position(int next_step) const {
  int64_t row = (int64_t)next_step * G_ * B_;
  int64_t n = static_cast<int64_t>(train_.size());
  return {{"sampler", "sft-epochs"}, {"next_step", next_step}, {"epoch", row / n}, {"sample_in_epoch", row % n}};
}

std::string SftBatches::describe() const {
  int64_t tokens = 0, trained = 0;
  for (const TokenizedSample& s : train_) tokens += s.ids.size(), trained += s.count_trained();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu train samples (%lld tokens, %lld trained), %zu validation samples",
                train_.size(), (long long)tokens, (long long)trained, val_.size());
  return buf;
}

}  // namespace mindllm::sft
