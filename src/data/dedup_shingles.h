// for_each_shingle (declared in dedup.h): the tokenizer the shingles of MinHash are built on.
// bench/data/dedup_ref.py is the same rule in Python (the reference tests check they agree).
#pragma once
#include <string>

#include "data/char_class.h"

namespace mindllm::data {

// Tokens go into one buffer separated by single spaces, so a shingle (n tokens joined by a
// space) is a contiguous slice of it. start: the offset of each token in buf.
inline void shingle_tokens(std::string_view s, std::string& buf, std::vector<uint32_t>& start) {
  buf.clear();
  start.clear();
  buf.reserve(s.size());
  bool in_word = false;
  auto begin_token = [&] {
    if (!buf.empty()) buf.push_back(' ');
    start.push_back(static_cast<uint32_t>(buf.size()));
  };
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) len = 1, cp = 0xFFFD;
    if (is_space(cp) || is_punct(cp)) {
      in_word = false;
    } else if (is_han(cp)) {
      begin_token();
      buf.append(s.data() + i, len);
      in_word = false;
    } else {
      if (!in_word) begin_token(), in_word = true;
      if (cp < 0x80) buf.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      else buf.append(s.data() + i, len);
    }
    i += len;
  }
}

template <class F>
void for_each_shingle(std::string_view s, Lang lang, const DedupConfig& c, F&& f) {
  std::string buf;
  std::vector<uint32_t> start;
  shingle_tokens(s, buf, start);
  size_t nt = start.size();
  if (nt == 0) return;
  size_t n = static_cast<size_t>(lang == Lang::zh ? c.char_ngram : c.word_ngram);
  if (n > nt) n = nt;
  for (size_t i = 0; i + n <= nt; i++) {
    size_t end = i + n < nt ? start[i + n] - 1 : buf.size();
    f(std::string_view(buf.data() + start[i], end - start[i]));
  }
}

}  // namespace mindllm::data
