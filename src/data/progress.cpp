#include "data/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/error.h"

namespace mindllm::data {

Progress::Progress(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)), total_(total_bytes), enabled_(enabled), tty_(::isatty(2) != 0) {
  start_ = last_ = std::chrono::steady_clock::now();
}

void Progress::update(uint64_t done, uint64_t docs) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.25 : 10.0)) return;
  last_ = now;
  print(done, docs, false);
}

void Progress::finish(uint64_t done, uint64_t docs) {
  if (enabled_) print(done, docs, true);
}

void Progress::print(uint64_t done, uint64_t docs, bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double mb = done / 1e6, rate = secs > 0 ? mb / secs : 0;
  char eta[32] = "";
  if (!final && total_ > done && rate > 0) {
    int s = static_cast<int>((total_ - done) / 1e6 / rate);
    std::snprintf(eta, sizeof eta, " ETA %d:%02d", s / 60, s % 60);
  }
  char pct[16] = "";
  if (total_ > 0) std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * std::min<double>(done, total_) / total_);
  std::fprintf(stderr, "%s%s: %.1f MB%s, %llu docs, %.1f MB/s%s%s", tty_ && !final ? "\r" : (tty_ ? "\r" : ""),
               label_.c_str(), mb, pct, static_cast<unsigned long long>(docs), rate, eta,
               tty_ && !final ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace mindllm::data
