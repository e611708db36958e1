#include "core/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace mindllm {

namespace {
std::mutex g_mu;
std::map<std::string, std::pair<double, long>>& table() {
  static std::map<std::string, std::pair<double, long>> t;
  return t;
}
}  // namespace

bool profile_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("MINDLLM_PROFILE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

void profile_add(const char* name, double seconds) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto& e = table()[name];
  e.first += seconds;
  e.second++;
}

std::string profile_report() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(table().begin(), table().end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
  double total = 0;
  for (auto& r : rows) total += r.second.first;
  std::string out = "profile (wall seconds by op family):\n";
  char buf[160];
  for (auto& r : rows) {
    std::snprintf(buf, sizeof(buf), "  %-22s %9.3f s %6.1f%% %8ld calls\n", r.first.c_str(), r.second.first,
                  total > 0 ? 100.0 * r.second.first / total : 0.0, r.second.second);
    out += buf;
  }
  return out;
}

}  // namespace mindllm
