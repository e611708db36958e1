// UTF-8 decoding that never fails (an invalid byte is one opaque unit), character classes from
// the generated tables, and the normalizers byte-level models use (NFC, NFKC, lowercase).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/unicode_tables.h"

namespace mindllm::unicode {

// A code point value that no valid character has: an invalid UTF-8 byte decodes to it, with
// length 1. It belongs to no class (not a letter, number or space), and normalizers keep it.
constexpr uint32_t kInvalid = 0xFFFFFFFFu;

// Decodes the character at s[i] (i < n). Sets *len to its byte length (1 for an invalid byte).
// Overlong forms, surrogates and values past U+10FFFF are invalid, as in Rust's from_utf8.
inline uint32_t decode(const unsigned char* s, size_t i, size_t n, int* len) {
  unsigned c = s[i];
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    if (i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
      *len = 2;
      return ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    }
  } else if (c >= 0xE0 && c <= 0xEF) {
    if (i + 2 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
      uint32_t cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
        *len = 3;
        return cp;
      }
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    if (i + 3 < n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
      uint32_t cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (cp >= 0x10000 && cp <= 0x10FFFF) {
        *len = 4;
        return cp;
      }
    }
  }
  *len = 1;
  return kInvalid;
}

inline uint8_t flags(uint32_t cp) { return unicode_tables::flags(cp); }
inline bool is_letter(uint32_t cp) { return flags(cp) & unicode_tables::kFlagLetter; }
inline bool is_number(uint32_t cp) { return flags(cp) & unicode_tables::kFlagNumber; }
inline bool is_space(uint32_t cp) { return flags(cp) & unicode_tables::kFlagSpace; }
inline bool is_word(uint32_t cp) { return flags(cp) & unicode_tables::kFlagWord; }

void append_utf8(std::string& out, uint32_t cp);
bool is_valid_utf8(std::string_view s);

enum class NormForm { nfc, nfkc, nfd, nfkd };

// Normalizes `in` into `out` (out is overwritten). Invalid bytes are kept as they are.
void normalize(std::string_view in, NormForm form, std::string& out);
// Per-character full lowercase mapping (Rust char::to_lowercase, no context rules).
void lowercase(std::string_view in, std::string& out);
// True when normalize(in, form) == in can be decided by a fast scan (no work needed).
bool is_normalized_quick(std::string_view in, NormForm form);

}  // namespace mindllm::unicode
