// Ctrl-C handling, one scheme for every long-running command: the first SIGINT/SIGTERM sets a
// flag that loops poll, so they stop at a safe point (write a checkpoint, remove temporary
// files, end a generation); a second one exits at once with 128 + the signal number.
#pragma once
#include <string>

namespace mindllm {

void install_interrupt_handler();
bool interrupted();
// The signal that set the flag (SIGINT or SIGTERM), 0 if none.
int interrupt_signal();
// Forgets a signal that was handled (an interactive command that stopped one answer and goes on).
void clear_interrupt();
// Throws the "interrupted" error (exit code 128 + signal) when interrupted.
void check_interrupted(const std::string& what);

}  // namespace mindllm
