#include "eval/scoring.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/error.h"
#include "eval/task.h"
#include "serve/generator.h"

namespace mindllm::eval {

Scorer::Scorer(const Model& model, const Tokenizer& tok, int max_length, std::unique_ptr<CudaForward> gpu,
               std::optional<KvType> kv)
    : engine_(model), gpu_(std::move(gpu)), kv_(kv), cache_(model.config(), 16, 0, kv.value_or(engine_.kv_type())),
      prefix_seq_(cache_.create()), tok_(tok), max_length_(max_length), vocab_(model.config().vocab_size) {
  // lm-eval's prefix_token_id: the tokenizer's EOS (eot_token_id), else the model's.
  if (auto e = tok.eos_id()) prefix_token_ = static_cast<int32_t>(*e);
  else if (model.config().eos_token_id >= 0) prefix_token_ = model.config().eos_token_id;
  else if (model.config().bos_token_id >= 0) prefix_token_ = model.config().bos_token_id;
}

Scorer::~Scorer() = default;

std::vector<int32_t> Scorer::encode(const std::string& s) const { return tok_.encode(s); }

LLRequest Scorer::encode_request(const std::string& context, const std::vector<std::string>& conts) const {
  LLRequest r;
  if (context.empty()) {
    r.context = {prefix_token_};
    for (auto& c : conts) {
      std::vector<int32_t> ce = encode(c);
      if (!ce.empty() && ce[0] == prefix_token_) ce.erase(ce.begin());  // lm-eval drops a leading prefix token
      r.conts.push_back(std::move(ce));
    }
    return r;
  }
  std::string ctx = py_rstrip(context);
  std::string moved = context.substr(ctx.size());
  r.context = encode(ctx);
  for (auto& c : conts) {
    std::vector<int32_t> whole = encode(ctx + moved + c);
    size_t n = std::min(whole.size(), r.context.size());
    r.conts.emplace_back(whole.begin() + n, whole.end());
  }
  return r;
}

void Scorer::sync_prefix(std::span<const int32_t> toks) {
  const std::vector<int32_t>& have = cache_.tokens(prefix_seq_);
  size_t n = 0;
  while (n < toks.size() && n < have.size() && toks[n] == have[n]) n++;
  cache_.truncate(prefix_seq_, static_cast<int>(n));
  if (n == toks.size()) return;
  const BatchEntry e{prefix_seq_, toks.subspan(n), static_cast<int>(toks.size() - n)};  // no logits
  engine_.forward(cache_, std::span(&e, 1), logits_);
}

namespace {

// The log-softmax normaliser of one row of logits [vocab] and its argmax (the first on ties).
struct RowStats {
  double lse = NAN;
  int32_t argmax = -1;
};
RowStats row_stats(const float* x, int vocab) {
  float mx = x[0];
  int am = 0;
  for (int v = 1; v < vocab; v++)
    if (x[v] > mx) mx = x[v], am = v;
  double s = 0;
  for (int v = 0; v < vocab; v++) s += std::exp((double)x[v] - mx);
  return {mx + std::log(s), am};
}

// A continuation's score: row(k) gives the logits [vocab] predicting cont[k] and their RowStats.
template <typename RowOf>
ChoiceScore continuation_score(const std::vector<int32_t>& cont, int vocab, RowOf row) {
  double ll = 0;
  bool greedy = true;
  for (size_t k = 0; k < cont.size(); k++) {
    const auto [x, st] = row(k);
    const int32_t target = cont[k];
    if (target < 0 || target >= vocab)
      bad_input("continuation token " + std::to_string(target) + " is outside the model's vocabulary");
    ll += (double)x[target] - st.lse;
    greedy = greedy && st.argmax == target;
  }
  return {ll, greedy};
}

// Logits of one GPU forward at most ([sequences x longest, vocab] floats).
constexpr int64_t kMaxGpuLogitFloats = int64_t(1) << 26;

}  // namespace

static size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, size_t n) {
  size_t i = 0;
  n = std::min({n, a.size(), b.size()});
  while (i < n && a[i] == b[i]) i++;
  return i;
}

std::vector<std::vector<ChoiceScore>> Scorer::score(const std::vector<LLRequest>& batch) {
  std::vector<std::vector<ChoiceScore>> out(batch.size());
  std::vector<Flat> flats;
  for (size_t q = 0; q < batch.size(); q++) {
    out[q].resize(batch[q].conts.size());
    for (size_t c = 0; c < batch[q].conts.size(); c++) {
      const auto& cont = batch[q].conts[c];
      if (cont.empty()) continue;  // an empty continuation scores 0 (as lm-eval's sum over nothing)
      if ((int)cont.size() > max_length_)
        bad_input("a continuation of " + std::to_string(cont.size()) + " tokens exceeds the maximum length " +
                  std::to_string(max_length_));
      Flat f{(int)q, (int)c, batch[q].context, &cont};
      f.seq.insert(f.seq.end(), cont.begin(), cont.end());
      if ((int)f.seq.size() > max_length_ + 1) f.seq.erase(f.seq.begin(), f.seq.end() - (max_length_ + 1));
      f.seq.pop_back();
      flats.push_back(std::move(f));
    }
  }
  if (flats.empty()) return out;
  if (gpu_) {
    run_on_gpu(flats, out);
    return out;
  }
  // Either one group for the whole batch (branches from the batch's common prefix: good when
  // the questions share a long few-shot prefix) or one group per question (its choices share
  // the question): pick the one that computes fewer new tokens and keeps the logits small.
  auto group_prefix = [&](const std::vector<Flat*>& g) {
    size_t p = g[0]->seq.size() - g[0]->cont->size();
    for (auto* f : g) {
      p = std::min(p, f->seq.size() - f->cont->size());
      p = common_prefix(g[0]->seq, f->seq, p);
    }
    return p;
  };
  std::vector<Flat*> all;
  for (auto& f : flats) all.push_back(&f);
  std::vector<std::vector<Flat*>> per_q(batch.size());
  for (auto& f : flats) per_q[f.q].push_back(&f);
  size_t pa = group_prefix(all);
  double cost_all = 0, cost_q = 0, rows_all = 0;
  {
    std::map<std::vector<int32_t>, size_t> distinct;
    for (auto* f : all) distinct[f->seq] = std::max(distinct[f->seq], f->cont->size());
    for (auto& [seq, cl] : distinct) cost_all += seq.size() - pa, rows_all += cl;
  }
  for (auto& g : per_q) {
    if (g.empty()) continue;
    size_t pq = group_prefix(g);
    std::map<std::vector<int32_t>, int> distinct;
    for (auto* f : g) distinct[f->seq] = 1;
    cost_q += pq - std::min(pq, pa);
    for (auto& [seq, one] : distinct) cost_q += seq.size() - pq;
  }
  if (cost_all <= cost_q && rows_all * vocab_ <= (1 << 26)) {
    run_group(all, out);
  } else {
    for (auto& g : per_q)
      if (!g.empty()) run_group(g, out);
  }
  return out;
}

void Scorer::run_group(std::vector<Flat*>& group, std::vector<std::vector<ChoiceScore>>& out) {
  size_t P = group[0]->seq.size() - group[0]->cont->size();
  for (auto* f : group) {
    P = std::min(P, f->seq.size() - f->cont->size());
    P = common_prefix(group[0]->seq, f->seq, P);
  }
  sync_prefix(std::span<const int32_t>(group[0]->seq.data(), P));
  // Distinct branches (choices whose inputs are equal, e.g. one-token answers, share one).
  std::map<std::vector<int32_t>, int> index;
  std::vector<std::vector<int32_t>> br;
  std::vector<int> from;
  std::vector<int> branch_of(group.size());
  for (size_t i = 0; i < group.size(); i++) {
    Flat* f = group[i];
    std::vector<int32_t> tail(f->seq.begin() + P, f->seq.end());
    int first = static_cast<int>(tail.size() - f->cont->size());
    auto it = index.find(tail);
    if (it == index.end()) {
      it = index.emplace(tail, (int)br.size()).first;
      br.push_back(tail);
      from.push_back(first);
    } else {
      from[it->second] = std::min(from[it->second], first);
    }
    branch_of[i] = it->second;
  }
  // Each branch continues its own fork of the prefix (shared blocks, not copies); one batch.
  std::vector<BatchEntry> entries;
  std::vector<int> row_base;
  int rows = 0;
  for (size_t b = 0; b < br.size(); b++) {
    entries.push_back(BatchEntry{cache_.fork(prefix_seq_), br[b], from[b]});
    row_base.push_back(rows);
    rows += static_cast<int>(br[b].size()) - from[b];
  }
  try {
    engine_.forward(cache_, entries, logits_);
  } catch (...) {
    for (auto& e : entries) cache_.release(e.seq);
    throw;
  }
  for (auto& e : entries) cache_.release(e.seq);
  // log-softmax normaliser per row, computed once per row that is used.
  std::vector<RowStats> stats(rows);
  for (size_t i = 0; i < group.size(); i++) {
    Flat* f = group[i];
    int b = branch_of[i];
    int tail_len = static_cast<int>(br[b].size()), cl = static_cast<int>(f->cont->size());
    out[f->q][f->c] = continuation_score(*f->cont, vocab_, [&](size_t k) {
      int t = tail_len - cl + static_cast<int>(k);  // branch row predicting cont[k]
      int r = row_base[b] + t - from[b];
      const float* x = logits_.data() + (size_t)r * vocab_;
      if (std::isnan(stats[r].lse)) stats[r] = row_stats(x, vocab_);
      return std::pair(x, stats[r]);
    });
  }
}

void Scorer::run_on_gpu(const std::vector<Flat>& flats, std::vector<std::vector<ChoiceScore>>& out) {
  // Distinct inputs (choices whose inputs are equal, e.g. one-token answers, share one), longest
  // first; each forward takes as many as the logits bound allows, at least one.
  std::map<std::vector<int32_t>, int> index;
  std::vector<const std::vector<int32_t>*> seqs;
  std::vector<std::vector<const Flat*>> users;
  for (const Flat& f : flats) {
    auto [it, fresh] = index.emplace(f.seq, static_cast<int>(seqs.size()));
    if (fresh) seqs.push_back(&it->first), users.emplace_back();
    users[it->second].push_back(&f);
  }
  std::vector<int> order(seqs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return seqs[a]->size() > seqs[b]->size(); });
  std::vector<RowStats> stats;
  for (size_t k = 0; k < order.size();) {
    const int64_t T = static_cast<int64_t>(seqs[order[k]]->size());
    size_t end = k + 1;
    while (end < order.size() && (int64_t)(end - k + 1) * T * vocab_ <= kMaxGpuLogitFloats) end++;
    std::vector<std::span<const int32_t>> batch;
    for (size_t j = k; j < end; j++) batch.emplace_back(*seqs[order[j]]);
    gpu_->forward(batch);
    stats.assign((end - k) * T, RowStats{});
    for (size_t j = k; j < end; j++) {
      const int b = static_cast<int>(j - k), n = static_cast<int>(seqs[order[j]]->size());
      for (const Flat* f : users[order[j]]) {
        const int cl = static_cast<int>(f->cont->size());
        MINDLLM_CHECK(n >= cl, "Scorer: a continuation without a context");
        out[f->q][f->c] = continuation_score(*f->cont, vocab_, [&](size_t i) {
          const int t = n - cl + static_cast<int>(i);  // input position predicting cont[i]
          const float* x = gpu_->logits(b, t);
          RowStats& st = stats[b * T + t];
          if (std::isnan(st.lse)) st = row_stats(x, vocab_);
          return std::pair(x, st);
        });
      }
    }
    k = end;
  }
}

std::string Scorer::generate(const std::string& context, const std::vector<std::string>& until, int max_gen_toks) {
  GenerationRequest req;
  req.prompt = encode(context);
  int max_ctx = max_gen_toks < max_length_ ? max_length_ - max_gen_toks : max_length_;
  if ((int)req.prompt.size() > max_ctx) req.prompt.erase(req.prompt.begin(), req.prompt.end() - max_ctx);
  if (req.prompt.empty()) req.prompt.push_back(prefix_token_);
  req.max_new_tokens = max_gen_toks;
  req.sampling.temperature = 0.0f;  // greedy
  if (std::optional<TokenId> eos = tok_.eos_id()) req.stop_tokens.push_back(*eos);
  if (engine_.config().eos_token_id >= 0) req.stop_tokens.push_back(engine_.config().eos_token_id);
  req.stop_strings = until;
  req.max_length = max_length_;
  const TokenText text = [&](int32_t id) {
    return tok_.is_special(static_cast<uint32_t>(id)) ? std::string() : std::string(tok_.token_bytes(id));
  };
  if (gpu_) {
    // The GPU inference engine, in the CudaForward's precision: the prompt and the answer in a
    // device K/V cache of max_length positions, one forward per new token.
    if (!gpu_engine_) {
      gpu_engine_ = make_engine(engine_.model(), Device::cuda, gpu_->bf16() ? Precision::bf16 : Precision::fp32);
      gpu_cache_ =
          std::make_unique<KvCache>(gpu_engine_->make_cache(16, max_length_, kv_.value_or(gpu_engine_->kv_type())));
    }
    return mindllm::generate(*gpu_engine_, *gpu_cache_, std::span(&req, 1), text)[0].text;
  }
  // The context but its last token stays cached: the next request's few-shot prefix is reused.
  sync_prefix(std::span<const int32_t>(req.prompt).first(req.prompt.size() - 1));
  req.prefix_seq = prefix_seq_;
  return mindllm::generate(engine_, cache_, std::span(&req, 1), text)[0].text;
}

double Scorer::rolling_loglikelihood(const std::string& text) {
  std::vector<int32_t> toks = encode(text);
  if (toks.empty()) return 0.0;
  const size_t L = max_length_;
  double total = 0;
  size_t predicted = 0;
  // Windows of lm-eval's get_rolling_token_windows(context_len=1) made disjoint.
  while (predicted < toks.size()) {
    LLRequest r;
    size_t n = std::min(L, toks.size() - predicted);
    if (predicted == 0) {
      r.context = {prefix_token_};
    } else {
      size_t start = predicted + n >= L + 1 ? predicted + n - L - 1 : 0;
      r.context.assign(toks.begin() + start, toks.begin() + predicted);
    }
    r.conts.emplace_back(toks.begin() + predicted, toks.begin() + predicted + n);
    total += score({r})[0][0].logprob;
    predicted += n;
  }
  return total;
}

}  // namespace mindllm::eval
