#include "sft/select_score.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mindllm::sft {

Conversation without_instruction(const Conversation& c) {
  Conversation out;
  for (const Message& m : c) {
    if (m.role == "system") continue;
    out.push_back(m.role == "user" ? Message{"user", ""} : m);
  }
  return out;
}

TokenizedSample tokenize_for_scoring(const ChatTemplate& tmpl, const Tokenizer& tok, const Conversation& c,
                                     int max_length, bool* truncated) {
  TokenizedSample s = tokenize_conversation(tmpl, tok, c, LossOn::assistant);
  *truncated = (int64_t)s.ids.size() > (int64_t)max_length + 1;
  if (*truncated) {
    s.ids.resize((size_t)max_length + 1);
    s.trained.resize((size_t)max_length + 1);
  }
  return s;
}

SampleScorer::SampleScorer(const Model& model, const ScorerDevice& device, int64_t max_logit_floats)
    : engine_(model), cache_(model.config(), 16, 0, engine_.kv_type()), max_logit_floats_(max_logit_floats),
      vocab_(model.config().vocab_size) {
  if (device.cuda) cuda_ = std::make_unique<eval::CudaForward>(model, device.bf16, device.max_batch, device.max_length);
}

SampleScorer::~SampleScorer() = default;

namespace {

// The first target position of a sample (ids[t] with trained[t], t >= 1), or -1.
int first_target(const TokenizedSample& s) {
  for (size_t t = 1; t < s.ids.size(); t++)
    if (s.trained[t]) return static_cast<int>(t);
  return -1;
}

}  // namespace

std::vector<TokenStats> SampleScorer::score(std::span<const TokenizedSample* const> batch, bool stats_off) {
  std::vector<TokenStats> out(batch.size());
  // Entry per sample with a target: input ids[0, n-1), logits from row first-1 (predicting ids[first]).
  struct Item {
    size_t sample;
    int first, rows;
  };
  std::vector<Item> items;
  for (size_t i = 0; i < batch.size(); i++) {
    const int first = first_target(*batch[i]);
    if (first < 0) continue;
    items.push_back({i, first, static_cast<int>(batch[i]->ids.size()) - first});
  }
  const int V = vocab_;
  size_t k = 0;
  while (k < items.size()) {
    // One forward: as many items (in order) as the logits bound allows, at least one.
    size_t end = k;
    int64_t rows = 0;
    while (end < items.size() && (end == k || (rows + items[end].rows) * V <= max_logit_floats_))
      rows += items[end++].rows;
    // Row r of the logits predicts target (item, t); row_at[r] points at it.
    std::vector<std::pair<size_t, int>> row_target;
    for (size_t j = k; j < end; j++)
      for (int t = items[j].first; t < (int)batch[items[j].sample]->ids.size(); t++) row_target.push_back({j, t});
    std::vector<const float*> row_at(row_target.size());
    if (cuda_) {
      // One right-padded forward; the row of (item j, target t) is j's input position t - 1.
      std::vector<std::span<const int32_t>> seqs;
      for (size_t j = k; j < end; j++) {
        const auto& ids = batch[items[j].sample]->ids;
        seqs.emplace_back(ids.data(), ids.size() - 1);
      }
      cuda_->forward(seqs);
      for (size_t r = 0; r < row_target.size(); r++)
        row_at[r] = cuda_->logits(static_cast<int>(row_target[r].first - k), row_target[r].second - 1);
    } else {
      std::vector<BatchEntry> entries;
      for (size_t j = k; j < end; j++) {
        const TokenizedSample& s = *batch[items[j].sample];
        entries.push_back(
            BatchEntry{cache_.create(), std::span<const int32_t>(s.ids.data(), s.ids.size() - 1), items[j].first - 1});
      }
      try {
        engine_.forward(cache_, entries, logits_);
      } catch (...) {
        for (auto& e : entries) cache_.release(e.seq);
        throw;
      }
      for (auto& e : entries) cache_.release(e.seq);
      for (size_t r = 0; r < row_target.size(); r++) row_at[r] = logits_.data() + r * (size_t)V;
    }
    if (!stats_off) {
      // The statistics of every row in parallel (each row alone: deterministic), then summed per
      // sample in order.
      const int64_t R = static_cast<int64_t>(row_target.size());
      row_ce_.assign(R, 0.0), row_entropy_.assign(R, 0.0);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < R; r++) {
        const TokenizedSample& s = *batch[items[row_target[r].first].sample];
        const int t = row_target[r].second;
        if (!s.trained[t]) continue;
        const float* x = row_at[r];
        float mx = x[0];
        for (int v = 1; v < V; v++) mx = std::max(mx, x[v]);
        // log-sum-exp and the entropy: H = log S - sum e (x - m) / S with e = exp(x - m), S = sum e.
        double sum = 0, weighted = 0;
        for (int v = 0; v < V; v++) {
          const float d = x[v] - mx;
          const double e = std::exp(d);
          sum += e;
          weighted += e * d;
        }
        const double log_sum = std::log(sum);
        row_ce_[r] = log_sum - (double)(x[s.ids[t]] - mx);
        row_entropy_[r] = log_sum - weighted / sum;
      }
      for (int64_t r = 0; r < R; r++) {
        const size_t sample = items[row_target[r].first].sample;
        if (!batch[sample]->trained[row_target[r].second]) continue;
        out[sample].ce_sum += row_ce_[r];
        out[sample].entropy_sum += row_entropy_[r];
        out[sample].n_tokens++;
      }
    }
    k = end;
  }
  return out;
}

}  // namespace mindllm::sft
