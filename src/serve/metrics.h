// What `GET /metrics` reports, in Prometheus' text exposition format: requests by route and
// status, prompt and completion tokens, completion latency and time to the first token
// (histograms), and the scheduler's numbers (active sequences, queue depth, prompt tokens reused).
// Thread-safe.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace mindllm {

// The scheduler's numbers at the time of a scrape.
struct SchedulerStats {
  int active = 0, queued = 0;
  int64_t tokens_generated = 0;
  int64_t prefix_reused_tokens = 0;     // prompt tokens not computed: a running sequence or the prefix cache held them
  int64_t prefix_cache_hit_tokens = 0;  // those from the prefix cache (finished sequences)
};

class ServeMetrics {
 public:
  // One response. Paths other than the server's routes count as "other" (a client cannot grow
  // the label set).
  void request(const std::string& path, int status);
  // One finished completion request (all its choices): its tokens, seconds from arrival to the
  // end, and to the first text.
  void completion(int prompt_tokens, int completion_tokens, double seconds, double first_token_seconds);
  std::string render(const SchedulerStats& s) const;
  // Totals so far: responses, completion requests, prompt and completion tokens.
  struct Totals {
    int64_t responses = 0, completions = 0, prompt_tokens = 0, completion_tokens = 0;
  };
  Totals totals() const;

 private:
  struct Histogram {
    static constexpr std::array<double, 11> kBounds{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    std::array<int64_t, kBounds.size() + 1> counts{};  // the last: above every bound
    double sum = 0;
    void add(double v);
    int64_t count() const {
      int64_t n = 0;
      for (int64_t c : counts) n += c;
      return n;
    }
    void render(std::string& out, const std::string& name, const std::string& help) const;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  Histogram latency_, first_token_;
};

}  // namespace mindllm
