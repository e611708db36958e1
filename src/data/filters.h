// Quality filters. Each filter has a name (the key of report.json's removal counts), can be
// switched off and has thresholds, all settable in the config file under "filters" (defaults
// and their sources in docs/data.md and configs/data/default.yaml):
//   English (Gopher, Rae et al. 2021, App. A; as in datatrove's GopherQualityFilter):
//     length: 50..100000 words; mean_word_length: 3..10 chars; symbol_ratio: ('#' + ellipses) /
//     words <= 0.1; bullet_lines <= 0.9; ellipsis_lines <= 0.3; alpha_words >= 0.8; stop_words: >= 2
//     of the, be, to, of, and, that, have, with
//   Chinese: length 50..1e7 characters; han_ratio: Han / non-space chars >= 0.3; punctuation:
//     0.005 <= punctuation / chars <= 0.35; char_repeat: no character repeated > 10 times in a row
//   Both: mean_line_length >= 8 chars; digit_ratio <= 0.3; repetition (Gopher, over words for
//     English and characters for Chinese): dup_lines <= 0.3 (of lines), dup_line_chars <= 0.2,
//     dup_paragraphs <= 0.3, dup_paragraph_chars <= 0.2, top_ngram for n = 2,3,4 <= 0.2,0.18,0.16,
//     dup_ngram for n = 5..10 <= 0.15,0.14,0.13,0.12,0.11,0.10 (fractions of characters).
//     Chinese n-grams are of n * zh_chars_per_word (2) characters, and the dup_ngram thresholds
//     are scaled by zh_threshold_scale (3): formulaic but good Chinese (statutes) repeats
//     10-character phrases in up to ~35% of its text, real junk (repeated blocks) in 80%+.
//   language: documents whose language is not in `languages` (default zh, en)
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "data/langid.h"

namespace mindllm::data {

struct FilterConfig {
  std::vector<std::string> languages = {"zh", "en"};
  // enabled[name] and params[name][param]; the defaults come from default_filter_config().
  std::map<std::string, bool> enabled;
  std::map<std::string, std::map<std::string, double>> params;
  double p(const std::string& f, const std::string& k) const { return params.at(f).at(k); }
  bool on(const std::string& f) const { return enabled.at(f); }
};

FilterConfig default_filter_config();
// Applies a config's "filters" object on top of the defaults; unknown filters or params, or
// values of the wrong type, are bad input naming `where` and the key.
void apply_filter_json(FilterConfig& cfg, const nlohmann::json& j, const std::string& where);
nlohmann::json filter_config_to_json(const FilterConfig& cfg);

// The measurements the filters compare with their thresholds (exposed for tests and reports).
struct DocStats {
  double words = 0, chars = 0, mean_word_length = 0, symbol_ratio = 0, bullet_lines = 0, ellipsis_lines = 0;
  double alpha_words = 0, stop_words = 0, mean_line_length = 0, digit_ratio = 0;
  double han_ratio = 0, punct_ratio = 0, max_char_run = 0;
  double dup_lines = 0, dup_line_chars = 0, dup_paragraphs = 0, dup_paragraph_chars = 0;
  double top_ngram[5] = {0, 0, 0, 0, 0};  // n = 2..4
  double dup_ngram[11] = {};              // n = 5..10
};
DocStats compute_doc_stats(std::string_view text, Lang lang);

// The name of the first filter the document fails, or "" when it passes all.
std::string apply_filters(std::string_view text, Lang lang, const FilterConfig& cfg);

}  // namespace mindllm::data
