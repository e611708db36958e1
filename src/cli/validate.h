// Checks of numeric command-line options, shared by every command: CLI11 validators that refuse
// NaN and infinities (CLI11's own Range lets NaN through) and values out of range, so a bad number
// is one line naming the flag and exit code 2 before any work starts.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "serve/sampling.h"

namespace mindllm::cli {

// A finite number x with lo <= x <= hi (lo < x, x < hi when the end is open).
CLI::Validator number_in(double lo, double hi, bool lo_open = false, bool hi_open = false);
inline CLI::Validator finite() {
  return number_in(-std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
}
inline CLI::Validator non_negative() { return number_in(0, std::numeric_limits<double>::max()); }
inline CLI::Validator positive() { return number_in(0, std::numeric_limits<double>::max(), true); }

// The most CPU threads --threads accepts: 4 x the hardware threads, within [8, 1024].
int max_threads();
// --threads N (0: all cores, else 1..max_threads()); apply_threads sets OpenMP's thread count.
CLI::Option* add_threads_option(CLI::App& app, int& threads);
void apply_threads(int threads);

// --temperature, --top-k, --top-p, --min-p, the penalties and --seed of the commands that sample (generate, chat).
void add_sampling_options(CLI::App& app, SamplingParams& sp, uint64_t& seed);

// Token ids must index the model's vocabulary (0 <= id < vocab; a negative id too where
// `allow_negative`, as for ignored targets): checked before any compute, else bad input naming
// `what`, the position and the id.
void check_token_ids(std::span<const int32_t> ids, int vocab, const std::string& what, bool allow_negative);

}  // namespace mindllm::cli
