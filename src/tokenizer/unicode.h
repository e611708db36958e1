// UTF-8 decoding that never fails (over core/utf8.h) (an invalid byte is one opaque unit), character classes from
// the generated tables, and the normalizers byte-level models use (NFC, NFKC, lowercase).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/utf8.h"
#include "tokenizer/unicode_tables.h"

namespace mindllm::unicode {

// A code point value that no valid character has: an invalid UTF-8 byte decodes to it, with
// length 1. It belongs to no class (not a letter, number or space), and normalizers keep it.
constexpr uint32_t kInvalid = 0xFFFFFFFFu;

// Decodes the character at s[i] (i < n). Sets *len to its byte length (1 for an invalid byte).
inline uint32_t decode(const unsigned char* s, size_t i, size_t n, int* len) {
  char32_t cp;
  *len = utf8::decode(s + i, n - i, &cp);
  if (*len == 0) {
    *len = 1;
    return kInvalid;
  }
  return cp;
}

inline uint8_t flags(uint32_t cp) { return unicode_tables::flags(cp); }
inline bool is_letter(uint32_t cp) { return flags(cp) & unicode_tables::kFlagLetter; }
inline bool is_number(uint32_t cp) { return flags(cp) & unicode_tables::kFlagNumber; }
inline bool is_space(uint32_t cp) { return flags(cp) & unicode_tables::kFlagSpace; }
inline bool is_word(uint32_t cp) { return flags(cp) & unicode_tables::kFlagWord; }

enum class NormForm { nfc, nfkc, nfd, nfkd };

// Normalizes `in` into `out` (out is overwritten). Invalid bytes are kept as they are.
void normalize(std::string_view in, NormForm form, std::string& out);
// Per-character full lowercase mapping (Rust char::to_lowercase, no context rules).
void lowercase(std::string_view in, std::string& out);
// True when normalize(in, form) == in can be decided by a fast scan (no work needed).
bool is_normalized_quick(std::string_view in, NormForm form);

}  // namespace mindllm::unicode
