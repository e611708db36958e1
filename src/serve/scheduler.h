// Continuous batching for the server (serve/server.h): ONE thread owns the inference engine and
// the K/V cache. Every step runs one batch holding one decode token of each active sequence and
// chunks of the prompts still being prefilled (llama-server's loop over slots, vLLM's scheduler);
// up to `parallel` sequences run at once, more wait in a bounded queue. Each sequence's sampling,
// stop checks and text emission are serve/generator.h's SequenceGenerator, as in generate(), so
// greedy output equals `mindllm generate`'s. HTTP handler threads only submit jobs and wait on
// their channel.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/engine.h"
#include "model/kv_cache.h"
#include "serve/generator.h"

namespace mindllm {

// What the scheduler tells a request's waiter: text that became final for choice `index`, and at
// the end of that choice its finish reason and token counts (or an error message).
struct ChoiceEvent {
  int index = 0;
  std::string text;
  bool done = false;
  FinishReason finish = FinishReason::length;
  int prompt_tokens = 0, completion_tokens = 0;
  std::string error;                   // set when the choice failed inside the engine
  std::vector<TokenLogprob> logprobs;  // of the tokens generated since the last event (logprobs requested)
};

// One request's channel: the scheduler pushes events, the handler thread takes them. cancel()
// (a client that went away) ends the request's choices at the next step.
class Channel {
 public:
  void push(ChoiceEvent e);
  // Events that came, waiting up to `timeout` for the first one (empty: none came).
  std::vector<ChoiceEvent> take(std::chrono::milliseconds timeout);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ChoiceEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct Job {
  GenerationRequest request;  // max_length: the server's context per sequence
  int index = 0;              // choice index (n > 1: one job per choice, one channel)
  std::shared_ptr<Channel> channel;
};

struct SchedulerOptions {
  int parallel = 4;          // sequences decoded together
  int max_queue = 64;        // jobs waiting for a free sequence; more are refused
  int ctx = 2048;            // positions per sequence (prompt + generated)
  int prefill_chunk = 512;   // most prompt tokens prefilled per step
  bool prefix_cache = true;  // keep finished sequences' K/V blocks for later prompts (model/kv_cache.h)
  std::optional<KvType> kv;  // the cache's element type (none: the engine's, InferenceEngine::kv_type)
};

class Scheduler {
 public:
  // The engine and token_text must outlive the scheduler. Starts the scheduler thread.
  Scheduler(InferenceEngine& engine, TokenText token_text, SchedulerOptions opt);
  ~Scheduler();
  // Queues the jobs, all or none: false when the queue has no room for them (or it stopped).
  bool submit(std::vector<Job> jobs);
  // Ends every job (finish = cancelled) and joins the thread; later submits are refused.
  void stop();
  int queued() const;
  int active() const;
  int64_t tokens_generated() const { return tokens_generated_; }  // sampled so far, all requests
  // Prompt tokens not computed because a running sequence or the prefix cache held them.
  int64_t prefix_tokens_reused() const { return prefix_tokens_reused_; }
  // Those of them that came from the prefix cache (sequences that had finished).
  int64_t prefix_cache_hit_tokens() const { return prefix_cache_hit_tokens_; }

 private:
  struct Slot {
    Job job;
    std::unique_ptr<SequenceGenerator> gen;
    int seq = -1;
    size_t prefilled = 0;  // prompt tokens in the cache
    int32_t next = 0;      // the token to feed next once prefilled
    size_t logprobs_sent = 0;
  };
  void loop();
  void finish(Slot& s, const std::string& error = "");
  void publish_active(size_t n);
  int fork_shared_prefix(Slot& s, const std::vector<std::unique_ptr<Slot>>& slots);
  bool waits_for_prefix(size_t i, const std::vector<std::unique_ptr<Slot>>& slots) const;

  InferenceEngine& engine_;
  TokenText token_text_;
  SchedulerOptions opt_;
  KvCache cache_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  int active_ = 0;
  bool stopping_ = false;
  std::atomic<int64_t> tokens_generated_{0}, prefix_tokens_reused_{0}, prefix_cache_hit_tokens_{0};
  std::thread thread_;
};

}  // namespace mindllm
