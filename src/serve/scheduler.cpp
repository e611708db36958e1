#include "serve/scheduler.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include "core/error.h"

namespace mindllm {

void Channel::push(ChoiceEvent e) {
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

std::vector<ChoiceEvent> Channel::take(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !events_.empty(); });
  std::vector<ChoiceEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

namespace {
// The cache's budget: every sequence may reach ctx positions (rounded up to whole blocks).
int64_t cache_positions(const SchedulerOptions& o, int block) {
  return (int64_t)o.parallel * ((o.ctx + block - 1) / block) * block;
}
}  // namespace

Scheduler::Scheduler(InferenceEngine& engine, TokenText token_text, SchedulerOptions opt)
    : engine_(engine), token_text_(std::move(token_text)), opt_(opt),
      cache_(engine.make_cache(16, cache_positions(opt, 16), opt.kv.value_or(engine.kv_type()))) {
  if (opt.prefix_cache) cache_.enable_prefix_cache();
  // OpenMP's thread count is per thread: the scheduler runs with its creator's.
  const int threads = omp_get_max_threads();
  thread_ = std::thread([this, threads] {
    omp_set_num_threads(threads);
    loop();
  });
}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::submit(std::vector<Job> jobs) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || queue_.size() + jobs.size() > (size_t)opt_.max_queue) return false;
    for (Job& j : jobs) queue_.push_back(std::move(j));
  }
  cv_.notify_all();
  return true;
}

void Scheduler::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Scheduler::queued() const {
  std::lock_guard lk(mu_);
  return static_cast<int>(queue_.size());
}

int Scheduler::active() const {
  std::lock_guard lk(mu_);
  return active_;
}

void Scheduler::finish(Slot& s, const std::string& error) {
  ChoiceEvent e;
  e.index = s.job.index;
  e.done = true;
  e.finish = s.gen ? s.gen->result().finish : FinishReason::cancelled;
  e.prompt_tokens = static_cast<int>(s.job.request.prompt.size());
  e.completion_tokens = s.gen ? static_cast<int>(s.gen->result().tokens.size()) : 0;
  e.error = error;
  s.job.channel->push(std::move(e));
  if (s.seq >= 0) cache_.release(s.seq);
  s.seq = -1;
}

namespace {
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, size_t limit) {
  const size_t n = std::min({a.size(), b.size(), limit});
  return std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin();
}
}  // namespace

// Prefix sharing: a sequence not started yet takes the longest cached prefix of its prompt (at
// least one block) from a running sequence, e.g. the same system prompt or a sibling choice of an
// n > 1 request, or from the prefix cache (sequences that finished: a chat client resending its
// history), and prefills only the rest; shared blocks are copied on write (model/kv_cache.h). The
// prompt's last token always runs: its logits give the first new token. -1: none shares enough.
int Scheduler::fork_shared_prefix(Slot& s, const std::vector<std::unique_ptr<Slot>>& slots) {
  const std::vector<int32_t>& p = s.job.request.prompt;
  int from = -1;
  size_t shared = 0;
  for (const auto& o : slots) {
    if (o.get() == &s || o->seq < 0) continue;
    const size_t k = common_prefix(cache_.tokens(o->seq), p, p.size() - 1);
    if (k > shared) shared = k, from = o->seq;
  }
  const size_t cached = std::min(static_cast<size_t>(cache_.cached_prefix(p)), p.size() - 1);
  if (std::max(shared, cached) < (size_t)cache_.block_size()) return -1;
  int seq;
  if (cached >= shared) {
    seq = cache_.create_from_prefix(p, static_cast<int>(cached));
    shared = cached;
    prefix_cache_hit_tokens_ += static_cast<int64_t>(cached);
  } else {
    seq = cache_.fork(from);
    cache_.truncate(seq, static_cast<int>(shared));
  }
  s.prefilled = shared;
  prefix_tokens_reused_ += static_cast<int64_t>(shared);
  return seq;
}

// Whether slots[i], not started, should wait for an earlier slot that is prefilling a prefix of
// its prompt (at least one block) and fork it next step instead of computing it twice. The first
// of such slots never waits, so every wait ends.
bool Scheduler::waits_for_prefix(size_t i, const std::vector<std::unique_ptr<Slot>>& slots) const {
  const std::vector<int32_t>& p = slots[i]->job.request.prompt;
  for (size_t j = 0; j < i; j++) {
    const Slot& o = *slots[j];
    const std::vector<int32_t>& q = o.job.request.prompt;
    if (o.seq >= 0 && o.prefilled < q.size() && common_prefix(q, p, p.size() - 1) >= (size_t)cache_.block_size())
      return true;
  }
  return false;
}

void Scheduler::publish_active(size_t n) {
  std::lock_guard lk(mu_);
  active_ = static_cast<int>(n);
}

void Scheduler::loop() {
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<BatchEntry> batch;
  std::vector<Slot*> owner;
  std::vector<float> logits;
  std::vector<size_t> sampled;  // the batch entries whose logits give a sequence's next token
  std::vector<SequenceGenerator::Step> steps;
  std::vector<std::string> errors;
  const int V = engine_.config().vocab_size;
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !slots.empty(); });
      if (stopping_) {
        for (Job& j : queue_) slots.push_back(std::make_unique<Slot>(Slot{std::move(j), nullptr}));
        queue_.clear();
        break;
      }
      while ((int)slots.size() < opt_.parallel && !queue_.empty()) {
        auto s = std::make_unique<Slot>();
        s->job = std::move(queue_.front());
        queue_.pop_front();
        slots.push_back(std::move(s));
      }
      active_ = static_cast<int>(slots.size());
    }
    // New slots get their generator and sequence; cancelled ones end.
    for (auto& s : slots) {
      if (!s->gen) {
        try {
          s->gen = std::make_unique<SequenceGenerator>(s->job.request, engine_, token_text_);
        } catch (const Error& e) {  // checked by the handler already; kept safe
          finish(*s, e.what());
          continue;
        }
        s->seq = cache_.create();
      }
      if (s->prefilled == 0) {  // not started: fork a sequence that has a prefix of the prompt cached
        const int shared = fork_shared_prefix(*s, slots);
        if (shared >= 0) cache_.release(std::exchange(s->seq, shared));
      }
      if (s->job.channel->cancelled()) s->gen->cancel();
      if (s->gen->done() && s->seq >= 0) finish(*s);
    }
    std::erase_if(slots, [](const std::unique_ptr<Slot>& s) { return s->seq < 0; });
    publish_active(slots.size());
    if (slots.empty()) continue;
    // One batch: a decode token of every prefilled sequence, then prompt chunks within the budget.
    batch.clear();
    owner.clear();
    int budget = opt_.prefill_chunk;
    for (auto& s : slots)
      if (s->prefilled == s->job.request.prompt.size()) {
        batch.push_back(BatchEntry{s->seq, std::span<const int32_t>(&s->next, 1)});
        owner.push_back(s.get());
      }
    for (size_t i = 0; i < slots.size(); i++) {
      Slot* s = slots[i].get();
      const std::vector<int32_t>& p = s->job.request.prompt;
      if (s->prefilled == p.size() || budget <= 0) continue;
      if (s->prefilled == 0 && waits_for_prefix(i, slots)) continue;
      const size_t n = std::min(p.size() - s->prefilled, (size_t)budget);
      batch.push_back(BatchEntry{s->seq, std::span<const int32_t>(p).subspan(s->prefilled, n)});
      owner.push_back(s);
      budget -= static_cast<int>(n);
    }
    try {
      engine_.forward(cache_, batch, logits);
    } catch (const std::exception& e) {
      for (Slot* s : owner) {
        s->gen->cancel();
        finish(*s, e.what());
      }
      continue;
    }
    // Each sequence whose logits came samples its token (and checks its stops) on its own state:
    // in parallel, as sampling over the vocabulary is paid once per sequence per step.
    sampled.clear();
    for (size_t e = 0; e < batch.size(); e++) {
      Slot& s = *owner[e];
      const size_t plen = s.job.request.prompt.size();
      if (s.prefilled < plen) {
        s.prefilled += batch[e].tokens.size();
        if (s.prefilled < plen) continue;  // more prompt to come: these logits are not wanted
      }
      sampled.push_back(e);
    }
    steps.assign(sampled.size(), {});
    errors.assign(sampled.size(), {});
#pragma omp parallel for schedule(dynamic) if (sampled.size() > 1)
    for (size_t k = 0; k < sampled.size(); k++) {
      Slot& s = *owner[sampled[k]];
      try {
        steps[k] = s.gen->step(logits.data() + sampled[k] * (size_t)V, cache_.length(s.seq));
      } catch (const std::exception& ex) { errors[k] = ex.what(); }
    }
    for (size_t k = 0; k < sampled.size(); k++) {
      Slot& s = *owner[sampled[k]];
      if (!errors[k].empty()) {
        s.gen->cancel();
        finish(s, errors[k]);
        continue;
      }
      const SequenceGenerator::Step& st = steps[k];
      s.next = st.token;
      tokens_generated_++;
      const std::vector<TokenLogprob>& lps = s.gen->result().logprobs;
      if (!st.text.empty() || lps.size() > s.logprobs_sent) {
        ChoiceEvent ev;
        ev.index = s.job.index;
        ev.text = st.text;
        ev.logprobs.assign(lps.begin() + s.logprobs_sent, lps.end());
        s.logprobs_sent = lps.size();
        s.job.channel->push(std::move(ev));
      }
      if (s.gen->done()) finish(s);
    }
    std::erase_if(slots, [](const std::unique_ptr<Slot>& s) { return s->seq < 0; });
    publish_active(slots.size());
  }
  // Stopping: every job still here ends as cancelled.
  for (auto& s : slots) {
    if (s->gen) s->gen->cancel();
    finish(*s);
  }
}

}  // namespace mindllm
