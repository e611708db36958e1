// The character classes the cleaners, filters and language id use (UTF-8 itself: core/utf8.h).
#pragma once
#include <cstdint>

#include "core/utf8.h"

namespace mindllm::data {

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
inline bool is_latin_ext(char32_t c) {
  return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x1E00 && c <= 0x1EFF);
}
// Letters of other scripts (Greek, Cyrillic, Armenian, Hebrew, Arabic, Indic, Thai, ...).
inline bool is_other_letter(char32_t c) { return c >= 0x370 && c <= 0x1CFF; }
inline bool is_digit(char32_t c) { return is_ascii_digit(c) || (c >= 0xFF10 && c <= 0xFF19); }
inline bool is_space(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xA0 || c == 0x3000 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x1680 || c == 0x85;
}
// Punctuation, ASCII and CJK (the sentence and clause marks a real text has).
inline bool is_punct(char32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  return (c >= 0x3001 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
         (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || (c >= 0x2010 && c <= 0x2027) ||
         (c >= 0x2030 && c <= 0x205E) || c == 0xB7 || c == 0xA1 || c == 0xBF || c == 0xAB || c == 0xBB;
}
inline bool is_letter(char32_t c) {
  return is_ascii_alpha(c) || is_latin_ext(c) || is_han(c) || is_kana(c) || is_hangul(c) || is_other_letter(c);
}

}  // namespace mindllm::data
