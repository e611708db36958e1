// Regular expressions: one wrapper over PCRE2 (Debian libpcre2-8) used by the tokenizer's Split
// pre-tokenizer and by evaluation's answer filters. Patterns are compiled once (JIT when the
// platform has it) in UTF mode with Unicode properties (UCP), so `.`, classes and repeats work on
// characters, not bytes, and \d \w \s know every script. Text may hold invalid UTF-8: such bytes
// match nothing (PCRE2_MATCH_INVALID_UTF). Offsets are byte offsets into the text.
//
// Patterns written for another engine are translated to PCRE2 where their meaning differs:
//   python     (Python's `re`, lm-evaluation-harness filters): \s as str.isspace(), \Z, {,n}, \u
//   oniguruma  (Hugging Face tokenizers' Split regexes, Oniguruma's Ruby syntax): ^ and $ per line,
//              (?m) = dot matches newline, \s \w \b \h \v as Oniguruma has them; class
//              intersections (&&) and nested classes are refused, as is case-insensitive
//              matching of letter pairs that Unicode folds from one character (ss ~ ß, st ~ ﬆ)
// A pattern PCRE2 rejects, or one of the refused forms, is bad input naming `where` and the pattern.
// A Regex is immutable after construction: one object may be used from many threads.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mindllm {

enum class RegexSyntax { pcre2, python, oniguruma };

struct RegexSpan {
  static constexpr size_t npos = static_cast<size_t>(-1);
  size_t begin = npos, end = npos;  // npos: the group took no part in the match
  bool matched() const { return begin != npos; }
  size_t size() const { return end - begin; }
};

// How a scan over all matches treats an empty match (they differ only for such matches).
enum class EmptyMatches {
  python,     // re.finditer: after an empty match, try a non-empty one at the same place
  oniguruma,  // Oniguruma's find_iter (Hugging Face): an empty match right at the previous match's end is skipped
};

class Regex {
 public:
  Regex(std::string_view pattern, RegexSyntax syntax, const std::string& where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  const std::string& pattern() const { return pattern_; }  // as given
  size_t group_count() const { return groups_; }           // capturing groups (group 0 not counted)

  // The leftmost match starting at or after byte `start`; false if none. `groups` (when given)
  // receives group 0 (the whole match) and each capturing group.
  bool search(std::string_view text, size_t start, std::vector<RegexSpan>* groups = nullptr) const;
  // A match that starts at byte 0 (Python's re.match).
  bool match(std::string_view text, std::vector<RegexSpan>* groups = nullptr) const;

  // Calls fn(const std::vector<RegexSpan>& groups) for each match, left to right.
  template <class Fn>
  void for_each_match(std::string_view text, EmptyMatches empty, Fn&& fn) const {
    std::vector<RegexSpan> g;
    size_t pos = 0, last_end = RegexSpan::npos;
    bool not_empty = false;
    while (pos <= text.size()) {
      if (!find(text, pos, not_empty ? kNotEmptyAtStart : 0, &g)) return;
      bool is_empty = g[0].begin == g[0].end;
      if (empty == EmptyMatches::oniguruma) {
        if (is_empty && g[0].end == last_end) {
          pos = next_char(text, pos);
          continue;
        }
        last_end = pos = g[0].end;
      } else {
        pos = g[0].end;
        not_empty = is_empty;  // the next match may not be empty at pos (it may start there)
      }
      fn(static_cast<const std::vector<RegexSpan>&>(g));
    }
  }

  // `text` with every match (python semantics) replaced by `replacement`, taken literally (re.sub).
  std::string replace_all(std::string_view text, std::string_view replacement) const;

 private:
  static constexpr unsigned kNotEmptyAtStart = 1, kAnchored = 2;
  bool find(std::string_view text, size_t start, unsigned how, std::vector<RegexSpan>* groups) const;
  static size_t next_char(std::string_view text, size_t pos);
  struct Code;
  std::unique_ptr<Code> code_;
  std::string pattern_, where_;
  size_t groups_ = 0;
};

// The PCRE2 pattern that means what `pattern` means in `syntax` (exposed for tests and errors).
std::string regex_to_pcre2(std::string_view pattern, RegexSyntax syntax, const std::string& where);

}  // namespace mindllm
