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

std::vector<uint32_t> epoch_order(uint64_t n, uint64_t seed, int64_t epoch) {
  return permutation(n, mix64(seed, 0x5f7e90c4ull, (uint64_t)epoch));
}

int window_length(const std::vector<TokenizedSample>& samples, const Window& w) {
  int n = 0;
  for (uint32_t i : w) n += static_cast<int>(samples[i].ids.size()) - 1;
  return n;
}

// A max tree over the free positions of windows 0..n-1 (unopened windows: all `seq` free), so the
// first window with room for a sample is found and updated in O(log n).
std::vector<Window> pack_first_fit(const std::vector<TokenizedSample>& samples, const std::vector<uint32_t>& order,
                                   int seq) {
  size_t leaves = 1;
  while (leaves < order.size()) leaves *= 2;
  std::vector<int> free_(2 * leaves, seq);
  std::vector<Window> windows;
  for (uint32_t i : order) {
    const int need = static_cast<int>(samples[i].ids.size()) - 1;
    MINDLLM_CHECK(need >= 1 && need <= seq, "pack_first_fit: a sample longer than --seq");
    size_t node = 1;
    while (node < leaves) node = free_[2 * node] >= need ? 2 * node : 2 * node + 1;
    const size_t w = node - leaves;
    if (w >= windows.size()) windows.resize(w + 1);
    windows[w].push_back(i);
    free_[node] -= need;
    for (node /= 2; node >= 1; node /= 2) free_[node] = std::max(free_[2 * node], free_[2 * node + 1]);
  }
  return windows;
}

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

void fill_packed_batch(const std::vector<TokenizedSample>& samples, const std::vector<const Window*>& rows,
                       Batch* out) {
  int T = 1;
  for (const Window* w : rows) T = std::max(T, window_length(samples, *w));
  out->resize(static_cast<int>(rows.size()), T);
  out->positions.resize(out->inputs.size());
  for (size_t r = 0; r < rows.size(); r++) {
    int32_t* in = out->inputs.data() + r * T;
    int32_t* tg = out->targets.data() + r * T;
    int32_t* pos = out->positions.data() + r * T;
    int t = 0;
    for (uint32_t i : *rows[r]) {
      const TokenizedSample& s = samples[i];
      for (size_t k = 0; k + 1 < s.ids.size(); k++, t++) {
        in[t] = s.ids[k];
        tg[t] = s.trained[k + 1] ? s.ids[k + 1] : -1;
        pos[t] = static_cast<int32_t>(k);
      }
    }
    for (int p = 0; t < T; t++, p++) in[t] = 0, tg[t] = -1, pos[t] = p;  // the tail: one padding segment
  }
}

SftBatches::SftBatches(std::vector<TokenizedSample> train, std::vector<TokenizedSample> val, uint64_t seed, int B,
                       int grad_accum, int eval_batches, bool packing, int seq)
    : train_(std::move(train)), val_(std::move(val)), seed_(seed), B_(B), G_(grad_accum), eval_batches_(eval_batches),
      packing_(packing), seq_(seq) {
  if (train_.empty()) bad_input("no usable training samples (see the counts above)");
  if (packing_) {
    std::vector<uint32_t> order(val_.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = static_cast<uint32_t>(i);
    val_windows_ = pack_first_fit(val_, order, seq_);
  }
}

const TokenizedSample& SftBatches::train_sample(int64_t global_row) {
  const int64_t n = static_cast<int64_t>(train_.size());
  int64_t epoch = global_row / n;
  if (epoch != perm_epoch_) {
    perm_ = epoch_order(n, seed_, epoch);
    perm_epoch_ = epoch;
  }
  return train_[perm_[global_row % n]];
}

std::pair<int64_t, int64_t> SftBatches::window_epoch(int64_t g) const {
  while (epoch_start_.back() <= g) {  // pack the next epoch to learn its number of windows
    const int64_t e = static_cast<int64_t>(epoch_start_.size()) - 1;
    const size_t n = pack_first_fit(train_, epoch_order(train_.size(), seed_, e), seq_).size();
    epoch_start_.push_back(epoch_start_.back() + static_cast<int64_t>(n));
  }
  const int64_t e = std::upper_bound(epoch_start_.begin(), epoch_start_.end(), g) - epoch_start_.begin() - 1;
  return {e, g - epoch_start_[e]};
}

const Window& SftBatches::train_window(int64_t g) {
  const auto [epoch, i] = window_epoch(g);
  if (epoch != perm_epoch_) {
    perm_ = epoch_order(train_.size(), seed_, epoch);
    windows_ = pack_first_fit(train_, perm_, seq_);
    perm_epoch_ = epoch;
  }
  return windows_[i];
}

void SftBatches::train_batch(int step, int micro, Batch* out) {
  const int64_t first = ((int64_t)step * G_ + micro) * B_;
  if (packing_) {
    // Copies: a row past the epoch's last window packs the next epoch into windows_, which would
    // leave pointers to the earlier rows' windows dangling.
    std::vector<Window> windows;
    for (int r = 0; r < B_; r++) windows.push_back(train_window(first + r));
    std::vector<const Window*> rows;
    for (const Window& w : windows) rows.push_back(&w);
    return fill_packed_batch(train_, rows, out);
  }
  std::vector<const TokenizedSample*> rows(B_);
  for (int r = 0; r < B_; r++) rows[r] = &train_sample(first + r);
  fill_batch(rows, out);
}

// Validation rows: samples, or packed windows of the validation samples in file order.
int64_t SftBatches::val_rows() const {
  const int64_t n = packing_ ? (int64_t)val_windows_.size() : (int64_t)val_.size();
  return std::min<int64_t>((int64_t)eval_batches_ * B_, n);
}

int SftBatches::val_batches() const { return static_cast<int>((val_rows() + B_ - 1) / B_); }

void SftBatches::val_batch(int i, Batch* out) {
  const int64_t end = std::min<int64_t>(val_rows(), (int64_t)(i + 1) * B_);
  if (packing_) {
    std::vector<const Window*> rows;
    for (int64_t k = (int64_t)i * B_; k < end; k++) rows.push_back(&val_windows_[k]);
    return fill_packed_batch(val_, rows, out);
  }
  std::vector<const TokenizedSample*> rows;
  for (int64_t k = (int64_t)i * B_; k < end; k++) rows.push_back(&val_[k]);
  fill_batch(rows, out);
}

nlohmann::json SftBatches::position(int next_step) const {
  int64_t row = (int64_t)next_step * G_ * B_;
  if (packing_) {
    const auto [epoch, i] = window_epoch(row);
    return {{"sampler", "sft-packed"}, {"next_step", next_step}, {"epoch", epoch}, {"window_in_epoch", i}};
  }
  int64_t n = static_cast<int64_t>(train_.size());
  return {{"sampler", "sft-epochs"}, {"next_step", next_step}, {"epoch", row / n}, {"sample_in_epoch", row % n}};
}

std::string SftBatches::describe() const {
  int64_t tokens = 0, trained = 0;
  for (const TokenizedSample& s : train_) tokens += s.ids.size(), trained += s.count_trained();
  char buf[320];
  int len = std::snprintf(buf, sizeof buf, "%zu train samples (%lld tokens, %lld trained), %zu validation samples",
                          train_.size(), (long long)tokens, (long long)trained, val_.size());
  if (packing_) {
    window_epoch(0);  // packs epoch 0
    const int64_t n = epoch_start_[1];
    std::snprintf(buf + len, sizeof buf - len, "; packed into %lld windows of %d per epoch (%.1f%% of positions used)",
                  (long long)n, seq_, 100.0 * (double)(tokens - (int64_t)train_.size()) / ((double)n * seq_));
  }
  return buf;
}

}  // namespace mindllm::sft
