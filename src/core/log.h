// Messages for the user, in one place: library code reports through these instead of writing to
// stderr itself, so a caller can silence them (a data-parallel rank other than 0, a test).
// Errors are not logged: they are thrown (core/error.h) and printed once by main.
#pragma once
#include <cstdarg>

namespace mindllm {

// Off: log_info and log_warn print nothing (the process's default is on).
void set_log_enabled(bool on);
bool log_enabled();

// A progress line (core/progress.h) is being redrawn in place on the terminal: the next log line
// erases it first, so logs and the progress line never share a line.
void set_progress_line_open(bool open);
// Erases an open progress line (before an error message written to stderr directly).
void clear_progress_line();

// printf-style; a newline is added.
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// As log_info, prefixed "warning: ".
void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace mindllm
