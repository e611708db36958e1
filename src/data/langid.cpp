#include "data/langid.h"

#include <array>
#include <string>
#include <unordered_set>

#include "data/char_class.h"

namespace mindllm::data {

const char* lang_name(Lang l) { return l == Lang::zh ? "zh" : l == Lang::en ? "en" : "other"; }

bool is_english_stopword(std::string_view w) {
  static const std::unordered_set<std::string_view> words = {
      "the",   "be",   "to",      "of",   "and",   "a",     "in",   "that", "have",   "i",    "it",    "for",   "not",
      "on",    "with", "he",      "as",   "you",   "do",    "at",   "this", "but",    "his",  "by",    "from",  "they",
      "we",    "say",  "her",     "she",  "or",    "an",    "will", "my",   "one",    "all",  "would", "there", "their",
      "what",  "so",   "up",      "out",  "if",    "about", "who",  "get",  "which",  "go",   "me",    "when",  "make",
      "can",   "like", "no",      "just", "him",   "know",  "take", "into", "your",   "some", "could", "them",  "see",
      "other", "than", "then",    "now",  "only",  "its",   "over", "also", "after",  "how",  "our",   "well",  "way",
      "even",  "want", "because", "any",  "these", "most",  "us",   "is",   "are",    "was",  "were",  "been",  "has",
      "had",   "did",  "does",    "am",   "shall", "thy",   "thou", "thee", "should", "may",  "more",  "such",  "those",
      "where", "why",  "very",    "upon", "our",   "here"};
  return words.count(w) != 0;
}

LangResult identify_language(std::string_view s, const LangIdConfig& cfg) {
  uint64_t han = 0, latin = 0, kana = 0, hangul = 0, other = 0;
  uint64_t words = 0, stop = 0;
  std::string word;
  bool word_ascii = true;
  auto end_word = [&] {
    if (!word.empty()) {
      words++;
      if (word_ascii && word.size() <= 8 && is_english_stopword(word)) stop++;
      word.clear();
    }
    word_ascii = true;
  };
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (is_ascii_alpha(c)) {
        latin++;
        if (word.size() < 16) word.push_back(static_cast<char>(c | 0x20));
      } else if (c == '\'' && !word.empty()) {
        // "don't": keep the word going
      } else {
        end_word();
      }
      i++;
      continue;
    }
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) {
      i++;
      continue;
    }
    i += len;
    if (is_latin_ext(cp)) {
      latin++;
      word_ascii = false;
      if (word.size() < 16) word.push_back('#');
      continue;
    }
    end_word();
    if (is_han(cp)) han++;
    else if (is_kana(cp)) kana++;
    else if (is_hangul(cp)) hangul++;
    else if (is_other_letter(cp)) other++;
  }
  end_word();
  LangResult r;
  uint64_t letters = han + latin + kana + hangul + other;
  if (letters == 0) return r;
  r.zh_share = static_cast<double>(han) / letters;
  r.latin_share = static_cast<double>(latin) / letters;
  r.en_stopword_ratio = words ? static_cast<double>(stop) / words : 0;
  if (letters < cfg.min_letters) return r;
  // Japanese mixes Han with kana: any real share of kana makes it "other".
  if (han + kana >= latin && han + kana >= hangul + other) {
    r.lang = kana * 5 > han && kana >= 3 ? Lang::other : Lang::zh;
    return r;
  }
  if (false) {
  } else if (latin > han && latin >= hangul + other + kana)
    r.lang = r.en_stopword_ratio >= cfg.min_en_stopword_ratio ? Lang::en : Lang::other;
  return r;
}

}  // namespace mindllm::data
