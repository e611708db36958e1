// Pre-tokenization scanners with the exact semantics of the split regexes byte-level models use,
// written by hand over the Unicode tables (no regex engine). Each scanner walks the text once and
// calls emit(begin, end) for consecutive pieces that cover it, as leftmost-first regex matching of
// the pattern would (every character of the text is matched by some alternative of these
// patterns, so there are no gaps). Invalid UTF-8 bytes are single characters of no class.
//
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//           (the same as GPT-4's cl100k_base)
//   qwen2:  as llama3 with \p{N} (one digit per piece)
// Any other Split regex runs on PCRE2 (split_with_regex below).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/regex.h"
#include "tokenizer/unicode.h"

namespace mindllm {

enum class SplitPattern { gpt2, llama3, qwen2 };

const char* split_pattern_name(SplitPattern p);
// The regex text Hugging Face uses for the pattern (what a Split pre-tokenizer holds).
const char* split_pattern_regex(SplitPattern p);
// Recognizes a Split regex (exact text, or a known equivalent spelling) or a name.
std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);
std::optional<SplitPattern> split_pattern_from_name(std::string_view name);
// A Split regex as Hugging Face (Oniguruma) reads it; bad input naming `where` if it cannot be had.
Regex compile_split_regex(std::string_view regex, const std::string& where);

namespace pretok_detail {

enum : uint8_t { kL = 1, kN = 2, kS = 4 };  // other characters: 0

struct AsciiClasses {
  uint8_t c[128];
  constexpr AsciiClasses() : c() {
    for (int i = 0; i < 128; i++) {
      uint8_t v = 0;
      if ((i >= 'a' && i <= 'z') || (i >= 'A' && i <= 'Z')) v = kL;
      if (i >= '0' && i <= '9') v = kN;
      if ((i >= 9 && i <= 13) || i == ' ') v = kS;
      c[i] = v;
    }
  }
};
inline constexpr AsciiClasses kAscii{};

inline uint8_t cls_at(const unsigned char* s, size_t i, size_t n, int* len) {
  if (s[i] < 0x80) {
    *len = 1;
    return kAscii.c[s[i]];
  }
  uint32_t cp = unicode::decode(s, i, n, len);
  if (cp == unicode::kInvalid) return 0;
  return unicode::flags(cp) & (kL | kN | kS);
}

// End of the run of characters whose class is `want` starting at i.
inline size_t run_of(const unsigned char* s, size_t i, size_t n, uint8_t want) {
  while (i < n) {
    if (s[i] < 0x80) {
      if (kAscii.c[s[i]] != want) break;
      i++;
      continue;
    }
    int len;
    if (cls_at(s, i, n, &len) != want) break;
    i += len;
  }
  return i;
}

inline char ascii_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
}

// Length of a contraction at s[i] == '\'' ('s 't 're 've 'm 'll 'd), 0 if none.
inline size_t contraction(const unsigned char* s, size_t i, size_t n, bool ignore_case) {
  if (i + 1 >= n) return 0;
  auto low = [&](size_t k) -> char { return ignore_case ? ascii_lower(s[k]) : static_cast<char>(s[k]); };
  if (ignore_case && i + 2 < n && s[i + 1] == 0xC5 && s[i + 2] == 0xBF) return 3;  // 'ſ: U+017F folds to s
  char a = low(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= n) return 0;
  char b = low(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) | \s+ over the whitespace run [i, j): the whole run at the end of the text or when it
// is one character; otherwise all but its last character.
inline size_t space_run_end(const unsigned char* s, size_t i, size_t j, size_t n) {
  if (j == n) return j;
  size_t last = j - 1;
  while (last > i && utf8::is_continuation(s[last])) last--;  // start of the run's last character
  return last > i ? last : j;
}

inline size_t next_gpt2(const unsigned char* s, size_t i, size_t n) {
  unsigned c = s[i];
  if (c == '\'') {
    size_t k = contraction(s, i, n, false);
    if (k) return i + k;
  }
  int len;
  uint8_t cls = cls_at(s, i, n, &len);
  if (c == ' ' && i + 1 < n) {
    int len2;
    uint8_t c2 = cls_at(s, i + 1, n, &len2);
    if (c2 != kS) return run_of(s, i + 1 + len2, n, c2);  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
  }
  if (cls != kS) return run_of(s, i + len, n, cls);
  return space_run_end(s, i, run_of(s, i + len, n, kS), n);
}

inline size_t next_llama(const unsigned char* s, size_t i, size_t n, size_t max_digits) {
  unsigned c = s[i];
  if (c == '\'') {
    size_t k = contraction(s, i, n, true);
    if (k) return i + k;
  }
  int len;
  uint8_t cls = cls_at(s, i, n, &len);
  if (cls == kL) return run_of(s, i + len, n, kL);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (cls != kN && c != '\r' && c != '\n' && i + len < n) {
    int len2;
    if (cls_at(s, i + len, n, &len2) == kL) return run_of(s, i + len + len2, n, kL);
  }
  if (cls == kN) {  // \p{N}{1,max_digits}
    size_t j = i + len, k = 1;
    while (j < n && k < max_digits) {
      int l2;
      if (cls_at(s, j, n, &l2) != kN) break;
      j += l2;
      k++;
    }
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t o = SIZE_MAX;
  if (cls == 0) {
    o = i;
  } else if (c == ' ' && i + 1 < n) {
    int l2;
    if (cls_at(s, i + 1, n, &l2) == 0) o = i + 1;
  }
  if (o != SIZE_MAX) {
    size_t j = run_of(s, o, n, 0);
    while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
    return j;
  }
  // Whitespace: \s*[\r\n]+ ends after the run's last \r or \n; else \s+(?!\S) | \s+.
  size_t j = run_of(s, i + len, n, kS);
  for (size_t k = j; k > i; k--) {
    if (s[k - 1] == '\r' || s[k - 1] == '\n') return k;
  }
  return space_run_end(s, i, j, n);
}

}  // namespace pretok_detail

// Splits `text` with the pattern, calling emit(begin, end) (byte offsets) for each piece.
template <class Emit>
inline void split_with_pattern(SplitPattern p, std::string_view text, Emit&& emit) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    size_t j;
    switch (p) {
      case SplitPattern::gpt2: j = pretok_detail::next_gpt2(s, i, n); break;
      case SplitPattern::llama3: j = pretok_detail::next_llama(s, i, n, 3); break;
      default: j = pretok_detail::next_llama(s, i, n, 1); break;
    }
    emit(i, j);
    i = j;
  }
}

// Hugging Face's Split(behavior=Isolated) with any other regex (Oniguruma syntax, compiled by
// compile_split_regex): each match and each stretch of text between matches is a piece; empty
// ones are dropped. Bytes of invalid UTF-8 match nothing, so they end up in the stretches between.
template <class Emit>
inline void split_with_regex(const Regex& re, std::string_view text, Emit&& emit) {
  size_t prev = 0;
  re.for_each_match(text, EmptyMatches::oniguruma, [&](const std::vector<RegexSpan>& g) {
    if (prev < g[0].begin) emit(prev, g[0].begin);
    if (g[0].begin < g[0].end) emit(g[0].begin, g[0].end);
    prev = g[0].end;
  });
  if (prev < text.size()) emit(prev, text.size());
}

// The Digits pre-tokenizer: runs of numeric characters (\p{N}; each one alone when `individual`)
// are pieces of their own. `byte_level_text`: the text is raw bytes standing for the byte-level
// characters (Digits placed after ByteLevel), where the numeric ones are 0-9 and the bytes that
// map to superscripts and fractions (B2 B3 B9 BC BD BE).
template <class Emit>
inline void split_digits(std::string_view text, bool individual, bool byte_level_text, Emit&& emit) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0, start = 0;
  bool in_digits = false;
  while (i < n) {
    int len = 1;
    bool num;
    if (byte_level_text) {
      unsigned c = s[i];
      num = (c >= '0' && c <= '9') || c == 0xB2 || c == 0xB3 || c == 0xB9 || (c >= 0xBC && c <= 0xBE);
    } else {
      num = pretok_detail::cls_at(s, i, n, &len) == pretok_detail::kN;
    }
    if (num && individual) {
      if (start < i) emit(start, i);
      emit(i, i + len);
      start = i + len;
    } else if (num != in_digits) {
      if (start < i) emit(start, i);
      start = i;
      in_digits = num;
    }
    i += len;
  }
  if (start < n) emit(start, n);
}

}  // namespace mindllm
