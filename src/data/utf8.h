// UTF-8 decoding and the character classes the cleaners, filters and language id use.
// Decoding is strict (RFC 3629): overlong forms, surrogates and code points past U+10FFFF
// are invalid.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/unicode.h"

namespace mindllm::data {

// Decodes one code point at s[i]; returns its length (1..4) or 0 if the bytes there are invalid.
inline size_t utf8_decode(std::string_view s, size_t i, char32_t* cp) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  size_t n = s.size() - i;
  uint8_t c = b(0);
  if (c < 0x80) { *cp = c; return 1; }
  if (c < 0xC2) return 0;
  if (c < 0xE0) {
    if (n < 2 || (b(1) & 0xC0) != 0x80) return 0;
    *cp = (char32_t(c & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (c < 0xF0) {
    if (n < 3 || (b(1) & 0xC0) != 0x80 || (b(2) & 0xC0) != 0x80) return 0;
    char32_t v = (char32_t(c & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (b(1) & 0xC0) != 0x80 || (b(2) & 0xC0) != 0x80 || (b(3) & 0xC0) != 0x80) return 0;
    char32_t v = (char32_t(c & 0x07) << 18) | (char32_t(b(1) & 0x3F) << 12) | (char32_t(b(2) & 0x3F) << 6) |
                 (b(3) & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return 0;
    *cp = v;
    return 4;
  }
  return 0;
}

// Byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t utf8_first_invalid(std::string_view s);
inline bool utf8_valid(std::string_view s) { return utf8_first_invalid(s) == std::string_view::npos; }

// Encoding is shared with the tokenizer (one implementation of UTF-8 encoding in the project).
inline void utf8_append(std::string& out, char32_t cp) { unicode::append_utf8(out, static_cast<uint32_t>(cp)); }

// Han ideographs: CJK Unified (+ Ext A..G) and Compatibility Ideographs.
inline bool is_han(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x20000 && c <= 0x3134F);
}
inline bool is_kana(char32_t c) { return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF); }
inline bool is_hangul(char32_t c) { return (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF); }
inline bool is_ascii_alpha(char32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
inline bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
// Latin letters beyond ASCII (accented letters of European languages).
inline bool is_latin_ext(char32_t c) { return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x1E00 && c <= 0x1EFF); }
// Letters of other scripts (Greek, Cyrillic, Armenian, Hebrew, Arabic, Indic, Thai, ...).
inline bool is_other_letter(char32_t c) { return c >= 0x370 && c <= 0x1CFF; }
inline bool is_digit(char32_t c) { return is_ascii_digit(c) || (c >= 0xFF10 && c <= 0xFF19); }
inline bool is_space(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xA0 || c == 0x3000 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x1680 || c == 0x85;
}
// Punctuation, ASCII and CJK (the sentence and clause marks a real text has).
inline bool is_punct(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  return (c >= 0x3001 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
         (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || (c >= 0x2010 && c <= 0x2027) ||
         (c >= 0x2030 && c <= 0x205E) || c == 0xB7 || c == 0xA1 || c == 0xBF || c == 0xAB || c == 0xBB;
}
inline bool is_letter(char32_t c) {
  return is_ascii_alpha(c) || is_latin_ext(c) || is_han(c) || is_kana(c) || is_hangul(c) || is_other_letter(c);
}

}  // namespace mindllm::data
