#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <string>

namespace mindllm {

static std::atomic<bool> g_enabled{true};
static std::atomic<bool> g_line_open{false};

void set_progress_line_open(bool open) { g_line_open = open; }
void clear_progress_line() {
  if (g_line_open.exchange(false)) std::fputs("\r\033[K", stderr);
}

void set_log_enabled(bool on) { g_enabled = on; }
bool log_enabled() { return g_enabled; }

static void vlog(const char* prefix, const char* fmt, va_list ap) {
  if (!g_enabled) return;
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line = std::string(prefix) + buf + "\n";  // one write: lines of threads do not interleave
  if (g_line_open.exchange(false)) line = "\r\033[K" + line;
  std::fputs(line.c_str(), stderr);
}

void log_info(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}

void log_warn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("warning: ", fmt, ap);
  va_end(ap);
}

}  // namespace mindllm
