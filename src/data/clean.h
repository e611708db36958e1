// Text cleaning, applied to every document before language id, filters and dedup:
//   1. HTML leftovers: tags, <script>/<style> bodies, comments, character entities
//   2. control characters, ANSI colour escapes, zero-width characters, BOM
//   3. Unicode NFKC "where safe": compatibility forms are folded, except the full-width ASCII
//      forms U+FF01..U+FF5E and U+3000, which are the normal punctuation of Chinese text
//   4. optional full-width -> half-width folding (those forms too) and Traditional -> Simplified
//      Chinese (OpenCC's t2s)
//   5. Markdown syntax (headings, links, images, emphasis, rules) and boilerplate lines
//      (cookie/JavaScript notices, "all rights reserved", "上一篇", ...)
//   6. whitespace: runs collapsed, lines trimmed, at most one blank line between paragraphs
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace mindllm::data {

struct CleanConfig {
  bool strip_html = true;
  bool normalize_nfkc = true;
  bool fold_fullwidth = false;
  bool traditional_to_simplified = false;
  std::string opencc_config = "t2s.json";  // OpenCC config name or path
  bool strip_markdown = true;
  bool remove_boilerplate_lines = true;
  size_t boilerplate_max_line_bytes = 120;  // only lines this short are dropped as boilerplate
  std::vector<std::string> boilerplate_phrases = {
      "javascript",   "cookie policy",  "accept cookies", "use cookies", "all rights reserved",
      "terms of use", "privacy policy", "click here",     "sign up for", "subscribe to our",
      "log in to",    "版权所有",       "上一篇",         "下一篇",      "返回顶部",
      "扫一扫",       "分享到",         "点击这里",       "免责声明"};
};

// Each step alone (tested separately); clean_text runs them all as configured.
std::string strip_html(std::string_view s);
std::string remove_control_chars(std::string_view s);
std::string normalize_nfkc_safe(std::string_view s);
std::string fold_fullwidth(std::string_view s);
std::string traditional_to_simplified(std::string_view s, const std::string& opencc_config);
std::string clean_lines(std::string_view s, const CleanConfig& cfg);  // markdown, boilerplate, whitespace

std::string clean_text(std::string_view s, const CleanConfig& cfg);

// Fails early (bad input) when the OpenCC config can't be loaded.
void check_clean_config(const CleanConfig& cfg);

}  // namespace mindllm::data
