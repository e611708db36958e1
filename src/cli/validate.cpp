#include "cli/validate.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace mindllm::cli {

namespace {

std::string bound(double v) {
  if (v >= std::numeric_limits<double>::max()) return "inf";
  if (v <= -std::numeric_limits<double>::max()) return "-inf";
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

CLI::Validator number_in(double lo, double hi, bool lo_open, bool hi_open) {
  std::string range = (lo_open ? "(" : "[") + bound(lo) + ", " + bound(hi) + (hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        bool parsed = !text.empty() && end == text.c_str() + text.size();
        bool ok = parsed && std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
        if (ok) return "";
        return "must be a finite number in " + range + ", got '" + text + "'";
      },
      "NUMBER in " + range);
}

int max_threads() {
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(4 * std::max(hw, 1), 8, 1024);
}

CLI::Option* add_threads_option(CLI::App& app, int& threads) {
  return app
      .add_option("--threads", threads, "CPU threads (0: all cores; at most " + std::to_string(max_threads()) + ")")
      ->check(number_in(0, max_threads()));
}

void add_sampling_options(CLI::App& app, SamplingParams& sp, uint64_t& seed) {
  app.add_option("--temperature", sp.temperature, "0 = greedy")->check(non_negative())->capture_default_str();
  app.add_option("--top-k", sp.top_k, "sample from the k most likely (0: off)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--top-p", sp.top_p, "nucleus sampling mass (1: off)")
      ->check(number_in(0, 1, true))
      ->capture_default_str();
  app.add_option("--min-p", sp.min_p, "keep tokens with p >= min-p x the top p (0: off)")
      ->check(number_in(0, 1))
      ->capture_default_str();
  app.add_option("--presence-penalty", sp.presence_penalty,
                 "subtracted from the logit of a token generated before (0: off)")
      ->check(number_in(-2, 2))
      ->capture_default_str();
  app.add_option("--frequency-penalty", sp.frequency_penalty,
                 "subtracted per time a token was generated before (0: off)")
      ->check(number_in(-2, 2))
      ->capture_default_str();
  app.add_option("--repetition-penalty", sp.repetition_penalty,
                 "divides positive (multiplies negative) logits of tokens in the prompt or generated (1: off)")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--seed", seed, "sampling seed")->check(non_negative())->capture_default_str();
}

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

void check_token_ids(std::span<const int32_t> ids, int vocab, const std::string& what, bool allow_negative) {
  for (size_t i = 0; i < ids.size(); i++)
    if (ids[i] >= vocab || (ids[i] < 0 && !allow_negative))
      bad_input(what + ": token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                " is outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
}

}  // namespace mindllm::cli
