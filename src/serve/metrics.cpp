#include "serve/metrics.h"

#include <cstdio>

namespace mindllm {

namespace {

const char* const kRoutes[] = {"/health",         "/metrics",  "/v1/models",  "/v1/chat/completions",
                               "/v1/completions", "/tokenize", "/detokenize", "/apply-template"};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void ServeMetrics::Histogram::add(double v) {
  size_t i = 0;
  while (i < kBounds.size() && v > kBounds[i]) i++;
  counts[i]++;
  sum += v;
}

void ServeMetrics::Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); i++) {
    cumulative += counts[i];
    out += name + "_bucket{le=\"" + number(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(sum) + "\n" + name + "_count " + std::to_string(cumulative) + "\n";
}

void ServeMetrics::request(const std::string& path, int status) {
  std::string route = "other";
  for (const char* r : kRoutes)
    if (path == r) route = r;
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{route, status}]++;
}

void ServeMetrics::completion(int prompt_tokens, int completion_tokens, double seconds, double first_token_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt_tokens;
  completion_tokens_ += completion_tokens;
  latency_.add(seconds);
  first_token_.add(first_token_seconds);
}

ServeMetrics::Totals ServeMetrics::totals() const {
  std::lock_guard<std::mutex> lock(mu_);
  Totals t;
  for (auto& [key, n] : requests_) t.responses += n;
  t.completions = first_token_.count();
  t.prompt_tokens = prompt_tokens_;
  t.completion_tokens = completion_tokens_;
  return t;
}

std::string ServeMetrics::render(const SchedulerStats& s) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out =
      "# HELP mindllm_requests_total HTTP responses by route and status.\n"
      "# TYPE mindllm_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "mindllm_requests_total{path=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  auto scalar = [&](const char* name, const char* type, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           number(v) + "\n";
  };
  scalar("mindllm_prompt_tokens_total", "counter", "Prompt tokens of finished completion requests.",
         (double)prompt_tokens_);
  scalar("mindllm_completion_tokens_total", "counter", "Tokens generated for finished completion requests.",
         (double)completion_tokens_);
  scalar("mindllm_tokens_generated_total", "counter", "Tokens sampled by the scheduler, all requests.",
         (double)s.tokens_generated);
  scalar("mindllm_prefix_reused_tokens_total", "counter",
         "Prompt tokens not computed: a running sequence or the prefix cache held their K/V.",
         (double)s.prefix_reused_tokens);
  scalar("mindllm_prefix_cache_hit_tokens_total", "counter",
         "Prompt tokens whose K/V came from the prefix cache (blocks of finished sequences).",
         (double)s.prefix_cache_hit_tokens);
  scalar("mindllm_active_sequences", "gauge", "Sequences being generated now.", s.active);
  scalar("mindllm_queued_sequences", "gauge", "Sequences waiting for a slot.", s.queued);
  latency_.render(out, "mindllm_request_duration_seconds", "Completion requests: arrival to the last token.");
  first_token_.render(out, "mindllm_time_to_first_token_seconds", "Completion requests: arrival to the first text.");
  return out;
}

}  // namespace mindllm
