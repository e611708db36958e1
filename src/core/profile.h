// Opt-in op-level profile: with MINDLLM_PROFILE=1 in the environment, scoped timers add the
// wall time of each op family; profile_report() prints the table (e.g. at the end of training).
#pragma once
#include <chrono>
#include <string>

namespace mindllm {

bool profile_enabled();
void profile_add(const char* name, double seconds);
std::string profile_report();

struct ProfileScope {
  const char* name;
  bool on;
  std::chrono::steady_clock::time_point t0;
  explicit ProfileScope(const char* n) : name(n), on(profile_enabled()) {
    if (on) t0 = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (on) profile_add(name, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
};

#define MINDLLM_PROFILE_CONCAT2(a, b) a##b
#define MINDLLM_PROFILE_CONCAT(a, b) MINDLLM_PROFILE_CONCAT2(a, b)
#define PROFILE(name) ::mindllm::ProfileScope MINDLLM_PROFILE_CONCAT(profile_scope_, __LINE__)(name)

}  // namespace mindllm
