#include "core/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

#include "core/error.h"

namespace mindllm {

static std::atomic<int> g_signal{0};

extern "C" void mindllm_on_signal(int sig) {
  int none = 0;
  if (!g_signal.compare_exchange_strong(none, sig)) std::_Exit(128 + sig);  // a second one: stop now
}

void install_interrupt_handler() {
  std::signal(SIGINT, mindllm_on_signal);
  std::signal(SIGTERM, mindllm_on_signal);
}

bool interrupted() { return g_signal.load(std::memory_order_relaxed) != 0; }
void clear_interrupt() { g_signal.store(0); }
int interrupt_signal() { return g_signal.load(std::memory_order_relaxed); }

void check_interrupted(const std::string& what) {
  if (interrupted())
    throw Error(static_cast<ExitCode>(128 + interrupt_signal()), what + ": interrupted; no output was committed");
}

}  // namespace mindllm
