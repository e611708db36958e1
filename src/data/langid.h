// Language identification: zh / en / other, from scripts and English function words.
//   Each letter counts for its script: Han (zh), Latin (en or another Latin-script language),
//   kana, hangul and other scripts (other). The script with most letters wins. Latin-script text
//   is English when English stop words make up at least `min_en_stopword_ratio` of its words
//   (running English text: 35-50%; French, German, Spanish, code, word lists: well under 10%).
//   Text with fewer than `min_letters` letters is "other" (numbers, symbols, tables).
// A mixed document gets the language of most of its letters; zh_share says how mixed it is.
#pragma once
#include <cstdint>
#include <string_view>

namespace mindllm::data {

enum class Lang : uint8_t { zh = 0, en = 1, other = 2 };
const char* lang_name(Lang l);

struct LangIdConfig {
  double min_en_stopword_ratio = 0.12;
  size_t min_letters = 10;
};

struct LangResult {
  Lang lang = Lang::other;
  double zh_share = 0;           // Han letters / all letters
  double latin_share = 0;        // Latin letters / all letters
  double en_stopword_ratio = 0;  // English stop words / Latin-script words
};

LangResult identify_language(std::string_view text, const LangIdConfig& cfg = {});

// True for one of the ~100 commonest English function words (lowercase ASCII input).
bool is_english_stopword(std::string_view lower_word);

}  // namespace mindllm::data
