#include "data/utf8.h"

namespace mindllm::data {

size_t utf8_first_invalid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    // Fast path: 8 ASCII bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<uint8_t>(s[i]) < 0x80) { i++; continue; }
    char32_t cp;
    size_t len = utf8_decode(s, i, &cp);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace mindllm::data
