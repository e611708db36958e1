// Errors: one exception type with an exit code. Bad input (a user's file, flag or field) exits 2,
// internal errors exit 1. The message is one line naming what is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace mindllm {

enum class ExitCode : int { ok = 0, internal = 1, bad_input = 2 };

struct Error : std::runtime_error {
  ExitCode code;
  Error(ExitCode c, const std::string& msg) : std::runtime_error(msg), code(c) {}
};

// A user's input is wrong: exit code 2.
[[noreturn]] inline void bad_input(const std::string& msg) { throw Error(ExitCode::bad_input, msg); }
// Our own invariant failed: exit code 1.
[[noreturn]] inline void internal_error(const std::string& msg) { throw Error(ExitCode::internal, msg); }

#define MINDLLM_CHECK(cond, msg)                                                                                   \
  do {                                                                                                             \
    if (!(cond)) ::mindllm::internal_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + (msg)); \
  } while (0)

}  // namespace mindllm
