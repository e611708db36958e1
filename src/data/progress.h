// Progress for long data steps (a redrawn line with rate and ETA on a terminal, a plain line
// every 10 s in logs).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "core/interrupt.h"

namespace mindllm::data {

// Ctrl-C handling is core/interrupt.h's, shared by every command.
using mindllm::check_interrupted;
using mindllm::install_interrupt_handler;
using mindllm::interrupted;

class Progress {
 public:
  Progress(std::string label, uint64_t total_bytes, bool enabled = true);
  void update(uint64_t done_bytes, uint64_t docs);
  void finish(uint64_t done_bytes, uint64_t docs);

 private:
  void print(uint64_t done, uint64_t docs, bool final);
  std::string label_;
  uint64_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace mindllm::data
