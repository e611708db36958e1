#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/log.h"

namespace mindllm {

Progress::Progress(std::string label, double total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled), tty_(enabled && isatty(2)) {
  start_ = last_ = std::chrono::steady_clock::now();
}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool Progress::due() {
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < (tty_ ? 0.25 : 10.0)) return false;
  last_ = now;
  return true;
}

void Progress::show(const std::string& text, bool final) {
  if (tty_) std::fprintf(stderr, "\r%s\033[K%s", text.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", text.c_str());
  open_ = tty_ && !final;
  set_progress_line_open(open_);
  std::fflush(stderr);
}

std::string format_clock(double seconds) {
  long s = static_cast<long>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string Progress::line(double done, const std::string& extra, bool final) const {
  const double secs = elapsed(), rate = secs > 0 ? done / secs : 0;
  char buf[160];
  std::string s = label_ + ": ";
  std::snprintf(buf, sizeof buf, done == static_cast<long long>(done) ? "%.0f" : "%.1f", done);
  s += buf;
  if (total_ > 0) {
    std::snprintf(buf, sizeof buf, total_ == static_cast<long long>(total_) ? "/%.0f" : "/%.1f", total_);
    s += buf;
  }
  s += " " + unit_;
  if (total_ > 0) {
    std::snprintf(buf, sizeof buf, " (%.0f%%)", 100.0 * std::min(done, total_) / total_);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, ", %.1f %s/s", rate, unit_.c_str());
  s += buf;
  if (final) s += ", took " + format_clock(secs);
  else if (total_ > done && rate > 0) s += ", ETA " + format_clock((total_ - done) / rate);
  if (!extra.empty()) s += ", " + extra;
  return s;
}

void Progress::update(double done, const std::string& extra) {
  if (enabled_ && due()) show(line(done, extra, false), false);
}

void Progress::finish(double done, const std::string& extra) {
  if (enabled_) show(line(done, extra, true), true);
}

void Progress::note(const std::string& text, bool force) {
  if (enabled_ && (due() || force)) show(label_ + ": " + text, false);
}

void Progress::end() {
  if (enabled_ && open_) std::fprintf(stderr, "\n");
  open_ = false;
  set_progress_line_open(false);
}

}  // namespace mindllm
