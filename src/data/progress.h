// Progress for long data steps (a redrawn line with rate and ETA on a terminal, a plain line
// every 10 s in logs) and Ctrl-C handling: the first SIGINT/SIGTERM sets a flag that the loops
// poll, so they stop at a safe point and remove their temporary files.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mindllm::data {

void install_interrupt_handler();
bool interrupted();
// Throws the "interrupted" error (exit code 130) when Ctrl-C was pressed.
void check_interrupted(const std::string& what);

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
