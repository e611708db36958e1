// Messages for the user, in one place: library code reports through these instead of writing to
// stderr itself, so a caller can silence them (a data-parallel rank other than 0, a test).
// Errors are not logged: they are thrown (core/error.h) and printed once by main.
#pragma once
#include <cstdarg>

namespace mindllm {

// Off: log_info and log_warn print nothing (the process's default is on).
void set_log_enabled(bool on);
bool log_enabled();

// printf-style; a newline is added.
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// As log_info, prefixed "warning: ".
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mindllm
