// UTF-8, once for the whole project: strict decoding (RFC 3629: overlong forms, surrogates and
// code points past U+10FFFF are invalid, as in Rust's from_utf8 and Python's decoder), validation,
// encoding, and the boundary helpers that cutting, streaming and counting need.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mindllm::utf8 {

inline bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Decodes the character at s[0..n); returns its byte length (1..4), or 0 when the bytes there
// are not a valid character (n > 0).
inline int decode(const unsigned char* s, size_t n, char32_t* cp) {
  const unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    if (n < 2 || !is_continuation(s[1])) return 0;
    *cp = (char32_t(c & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !is_continuation(s[1]) || !is_continuation(s[2])) return 0;
    const char32_t v = (char32_t(c & 0x0F) << 12) | (char32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !is_continuation(s[1]) || !is_continuation(s[2]) || !is_continuation(s[3])) return 0;
    const char32_t v =
        (char32_t(c & 0x07) << 18) | (char32_t(s[1] & 0x3F) << 12) | (char32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return 0;
    *cp = v;
    return 4;
  }
  return 0;
}

// The same at byte offset i < s.size() of a string.
inline size_t decode(std::string_view s, size_t i, char32_t* cp) {
  return static_cast<size_t>(decode(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i, cp));
}

// Byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t first_invalid(std::string_view s);
inline bool valid(std::string_view s) { return first_invalid(s) == std::string_view::npos; }

// Appends the encoding of code point cp (<= U+10FFFF).
void append(std::string& out, char32_t cp);

// Characters in s (bytes that are not continuation bytes; an invalid byte counts as one).
inline size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += !is_continuation(c);
  return n;
}

// The largest k <= n (n <= s.size()) such that s[0..k) does not end inside a character.
inline size_t char_boundary_before(std::string_view s, size_t n) {
  while (n > 0 && n < s.size() && is_continuation(static_cast<unsigned char>(s[n]))) n--;
  return n;
}

// Bytes at the end of s that begin a character whose remaining bytes have not arrived yet
// (0 when s ends on a complete character) — what a streaming writer holds back.
inline size_t incomplete_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; back++) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if (is_continuation(c)) continue;
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace mindllm::utf8
