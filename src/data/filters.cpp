#include "data/filters.h"

#include <algorithm>

#include "core/error.h"
#include "data/hashing.h"
#include "data/char_class.h"

namespace mindllm::data {

FilterConfig default_filter_config() {
  FilterConfig c;
  auto add = [&](const char* name, std::map<std::string, double> params) {
    c.enabled[name] = true;
    c.params[name] = std::move(params);
  };
  add("length", {{"min_words", 50}, {"max_words", 100000}, {"min_chars_zh", 50}, {"max_chars_zh", 10000000}});
  add("mean_word_length", {{"min", 3}, {"max", 10}});
  add("symbol_ratio", {{"max", 0.1}});
  add("bullet_lines", {{"max", 0.9}});
  add("ellipsis_lines", {{"max", 0.3}});
  add("alpha_words", {{"min", 0.8}});
  add("stop_words", {{"min", 2}});
  add("mean_line_length", {{"min", 8}});
  add("digit_ratio", {{"max", 0.3}});
  add("han_ratio", {{"min", 0.3}});
  add("punctuation", {{"min", 0.005}, {"max", 0.35}});
  add("char_repeat", {{"max", 10}});
  add("dup_lines", {{"max", 0.3}});
  add("dup_line_chars", {{"max", 0.2}});
  add("dup_paragraphs", {{"max", 0.3}});
  add("dup_paragraph_chars", {{"max", 0.2}});
  add("top_ngram", {{"n2", 0.2}, {"n3", 0.18}, {"n4", 0.16}, {"zh_chars_per_word", 2}});
  add("dup_ngram", {{"n5", 0.15},
                    {"n6", 0.14},
                    {"n7", 0.13},
                    {"n8", 0.12},
                    {"n9", 0.11},
                    {"n10", 0.10},
                    {"zh_chars_per_word", 2},
                    {"zh_threshold_scale", 3}});
  c.enabled["language"] = true;
  c.params["language"] = {};
  return c;
}

void apply_filter_json(FilterConfig& cfg, const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) bad_input(where + ": 'filters' must be an object");
  for (auto& [name, v] : j.items()) {
    if (name == "languages") {
      if (!v.is_array()) bad_input(where + ": filters.languages must be a list like [zh, en]");
      cfg.languages.clear();
      for (auto& l : v) {
        if (!l.is_string() || (l != "zh" && l != "en" && l != "other"))
          bad_input(where + ": filters.languages: each entry must be zh, en or other");
        cfg.languages.push_back(l.get<std::string>());
      }
      continue;
    }
    auto it = cfg.enabled.find(name);
    if (it == cfg.enabled.end()) bad_input(where + ": unknown filter 'filters." + name + "'");
    if (v.is_boolean()) {
      it->second = v.get<bool>();
      continue;
    }
    if (!v.is_object()) bad_input(where + ": filters." + name + " must be true/false or an object");
    for (auto& [k, x] : v.items()) {
      if (k == "enabled") {
        if (!x.is_boolean()) bad_input(where + ": filters." + name + ".enabled must be true or false");
        it->second = x.get<bool>();
        continue;
      }
      auto& ps = cfg.params[name];
      if (!ps.count(k)) bad_input(where + ": unknown parameter 'filters." + name + "." + k + "'");
      if (!x.is_number()) bad_input(where + ": filters." + name + "." + k + " must be a number");
      ps[k] = x.get<double>();
    }
  }
}

nlohmann::json filter_config_to_json(const FilterConfig& cfg) {
  nlohmann::json j;
  j["languages"] = cfg.languages;
  for (auto& [name, on] : cfg.enabled) {
    nlohmann::json f = {{"enabled", on}};
    for (auto& [k, v] : cfg.params.at(name)) f[k] = v;
    j[name] = f;
  }
  return j;
}

namespace {

struct Unit {
  uint64_t hash;
  uint32_t chars;
};

// Words (English: whitespace-separated tokens) or units (Chinese: each Han character, each run of
// other non-space, non-punctuation characters).
struct Parsed {
  std::vector<Unit> units;
  std::vector<std::string_view> words;  // English only
  size_t chars = 0, nonspace = 0, digits = 0, han = 0, punct = 0, max_run = 0;
};

// Chinese marks written as runs in normal text: the ellipsis "……" (longer in omitted passages,
// "…………"), "⋯⋯", the dash "——"; char_repeat does not count their runs.
static bool is_run_punct(char32_t c) { return c == 0x2026 || c == 0x22EF || c == 0x2014 || c == 0x2015; }

void parse(std::string_view s, Lang lang, Parsed& p) {
  char32_t prev = 0;
  size_t run = 0;
  size_t word_start = std::string_view::npos, word_chars = 0;
  bool zh = lang == Lang::zh;
  auto end_word = [&](size_t end) {
    if (word_start != std::string_view::npos) {
      std::string_view w = s.substr(word_start, end - word_start);
      p.units.push_back({hash_str(w), static_cast<uint32_t>(word_chars)});
      if (!zh) p.words.push_back(w);
    }
    word_start = std::string_view::npos;
    word_chars = 0;
  };
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) len = 1, cp = 0xFFFD;
    p.chars++;
    if (cp == prev) run++;
    else run = 1, prev = cp;
    if (run > p.max_run && !is_space(cp) && !is_run_punct(cp)) p.max_run = run;
    bool space = is_space(cp);
    if (!space) p.nonspace++;
    if (is_digit(cp)) p.digits++;
    if (is_han(cp)) p.han++;
    bool punct = is_punct(cp);
    if (punct) p.punct++;
    if (zh) {
      if (space || punct) {
        end_word(i);
      } else if (is_han(cp)) {
        end_word(i);
        p.units.push_back({hash_bytes(s.data() + i, len), 1});
      } else {
        if (word_start == std::string_view::npos) word_start = i;
        word_chars++;
      }
    } else {
      if (space) end_word(i);
      else {
        if (word_start == std::string_view::npos) word_start = i;
        word_chars++;
      }
    }
    i += len;
  }
  end_word(s.size());
}

// Rolling polynomial hashes of all n-grams of unit hashes (mod 2^64, odd base), finalized by mix64.
constexpr uint64_t kBase = 0x100000001B3ull * 2 + 1;

void ngram_hashes(const std::vector<Unit>& u, size_t n, std::vector<uint64_t>& out) {
  out.clear();
  if (u.size() < n) return;
  uint64_t pw = 1;
  for (size_t k = 0; k < n; k++) pw *= kBase;
  uint64_t h = 0;
  for (size_t k = 0; k < n; k++) h = h * kBase + u[k].hash;
  out.push_back(mix64(h) | 1);
  for (size_t i = n; i < u.size(); i++) {
    h = h * kBase + u[i].hash - u[i - n].hash * pw;
    out.push_back(mix64(h) | 1);
  }
}

// Gopher's most-frequent n-gram: chars in all occurrences of the top n-gram / all chars.
double top_ngram_fraction(const std::vector<Unit>& u, size_t n, double total_chars, FlatCounter64& counter,
                          std::vector<uint64_t>& hs) {
  if (u.size() < n || total_chars <= 0) return 0;
  ngram_hashes(u, n, hs);
  counter.reset(hs.size());
  uint32_t best = 0;
  size_t best_i = 0;
  for (size_t i = 0; i < hs.size(); i++) {
    uint32_t c = counter.add(hs[i]);
    if (c > best) best = c, best_i = i;
  }
  if (best < 2) return 0;
  double len = 0;
  for (size_t k = 0; k < n; k++) len += u[best_i + k].chars;
  return best * len / total_chars;
}

// Gopher's duplicated n-grams (datatrove's find_all_duplicate): chars in repeated occurrences.
double dup_ngram_fraction(const std::vector<Unit>& u, size_t n, double total_chars, FlatSet64& seen,
                          std::vector<uint64_t>& hs) {
  if (u.size() < n || total_chars <= 0) return 0;
  ngram_hashes(u, n, hs);
  seen.reset(hs.size());
  double rep = 0;
  size_t i = 0;
  while (i < hs.size()) {
    if (!seen.insert(hs[i])) {
      for (size_t k = 0; k < n; k++) rep += u[i + k].chars;
      i += n;
    } else {
      i++;
    }
  }
  return rep / total_chars;
}

// Duplicate lines or paragraphs: (fraction of elements that repeat an earlier one, fraction of chars).
std::pair<double, double> dup_elements(std::string_view s, bool paragraphs, double total_chars, FlatSet64& seen) {
  std::vector<std::string_view> elems;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t e = paragraphs ? s.find("\n\n", pos) : s.find('\n', pos);
    if (e == std::string_view::npos) e = s.size();
    std::string_view el = s.substr(pos, e - pos);
    if (!el.empty()) elems.push_back(el);
    pos = e + (paragraphs ? 2 : 1);
  }
  if (elems.empty()) return {0, 0};
  seen.reset(elems.size());
  size_t dup = 0;
  double dup_chars = 0;
  for (auto el : elems)
    if (!seen.insert(hash_str(el))) dup++, dup_chars += static_cast<double>(el.size());
  // Byte counts stand in for characters here (as in datatrove, which compares with len(text)).
  (void)total_chars;
  return {static_cast<double>(dup) / elems.size(), dup_chars / std::max<double>(1.0, s.size())};
}

bool is_bullet_line(std::string_view l) {
  for (std::string_view b : {"•", "-", "*", "·", "●", "▪", "‣", "◦", "○"})
    if (l.substr(0, b.size()) == b) return true;
  return false;
}

struct Scratch {
  FlatSet64 set;
  FlatCounter64 counter;
  std::vector<uint64_t> hashes;
};

// Computes what is needed up to `stage` (1: basic, 2: lines, 3: n-grams); fills stats.
void line_stats(std::string_view s, DocStats& st) {
  size_t lines = 0, bullets = 0, ellipsis = 0, line_chars = 0;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t e = s.find('\n', pos);
    if (e == std::string_view::npos) e = s.size();
    std::string_view l = s.substr(pos, e - pos);
    pos = e + 1;
    if (l.empty()) continue;
    lines++;
    line_chars += l.size();
    if (is_bullet_line(l)) bullets++;
    if ((l.size() >= 3 && l.substr(l.size() - 3) == "...") || (l.size() >= 3 && l.substr(l.size() - 3) == "…"))
      ellipsis++;
  }
  if (lines) {
    st.bullet_lines = static_cast<double>(bullets) / lines;
    st.ellipsis_lines = static_cast<double>(ellipsis) / lines;
  }
  // Mean line length in characters (bytes / chars-per-byte of the document).
  st.mean_line_length =
      lines ? (static_cast<double>(line_chars) / lines) * (st.chars / std::max<double>(1, s.size())) : 0;
}

void basic_stats(std::string_view s, Lang lang, const Parsed& p, DocStats& st) {
  st.chars = static_cast<double>(p.chars);
  st.words = static_cast<double>(p.units.size());
  st.digit_ratio = p.nonspace ? static_cast<double>(p.digits) / p.nonspace : 0;
  st.han_ratio = p.nonspace ? static_cast<double>(p.han) / p.nonspace : 0;
  st.punct_ratio = p.nonspace ? static_cast<double>(p.punct) / p.nonspace : 0;
  st.max_char_run = static_cast<double>(p.max_run);
  if (lang != Lang::zh) {
    size_t nonsym = 0, nonsym_chars = 0, alpha = 0, stop = 0;
    for (auto w : p.words) {
      bool has_alpha = false, all_punct = true;
      for (unsigned char c : w) {
        if (std::isalpha(c) || c >= 0x80) has_alpha = true;
        if (!(c < 0x80 && std::ispunct(c))) all_punct = false;
      }
      if (has_alpha) alpha++;
      if (!all_punct) nonsym++, nonsym_chars += w.size();
      if (w.size() <= 4) {
        char low[5] = {};
        for (size_t k = 0; k < w.size(); k++)
          low[k] = static_cast<char>(std::tolower(static_cast<unsigned char>(w[k])));
        std::string_view lw(low, w.size());
        if (lw == "the" || lw == "be" || lw == "to" || lw == "of" || lw == "and" || lw == "that" || lw == "have" ||
            lw == "with")
          stop++;
      }
    }
    st.words = static_cast<double>(nonsym);
    st.mean_word_length = nonsym ? static_cast<double>(nonsym_chars) / nonsym : 0;
    size_t hashes = std::count(s.begin(), s.end(), '#');
    size_t ell = 0;
    for (size_t k = s.find("..."); k != std::string_view::npos; k = s.find("...", k + 3)) ell++;
    for (size_t k = s.find("…"); k != std::string_view::npos; k = s.find("…", k + 3)) ell++;
    st.symbol_ratio = p.words.empty() ? 0 : static_cast<double>(hashes + ell) / p.words.size();
    st.alpha_words = p.words.empty() ? 0 : static_cast<double>(alpha) / p.words.size();
    st.stop_words = static_cast<double>(stop);
  }
}

// Chinese units are characters: an n-word n-gram is n * zh_chars_per_word characters.
void repetition_stats(std::string_view s, const Parsed& p, DocStats& st, Scratch& sc, size_t top_mult = 1,
                      size_t dup_mult = 1) {
  auto [dl, dlc] = dup_elements(s, false, st.chars, sc.set);
  auto [dp, dpc] = dup_elements(s, true, st.chars, sc.set);
  st.dup_lines = dl, st.dup_line_chars = dlc, st.dup_paragraphs = dp, st.dup_paragraph_chars = dpc;
  double total = 0;
  for (auto& u : p.units) total += u.chars;
  for (size_t n = 2; n <= 4; n++)
    st.top_ngram[n] = top_ngram_fraction(p.units, n * top_mult, total, sc.counter, sc.hashes);
  for (size_t n = 5; n <= 10; n++)
    st.dup_ngram[n] = dup_ngram_fraction(p.units, n * dup_mult, total, sc.set, sc.hashes);
}

}  // namespace

DocStats compute_doc_stats(std::string_view text, Lang lang) {
  Parsed p;
  parse(text, lang, p);
  DocStats st;
  basic_stats(text, lang, p, st);
  line_stats(text, st);
  Scratch sc;
  repetition_stats(text, p, st, sc, lang == Lang::zh ? 2 : 1, lang == Lang::zh ? 2 : 1);
  return st;
}

std::string apply_filters(std::string_view text, Lang lang, const FilterConfig& cfg) {
  if (cfg.on("language") &&
      std::find(cfg.languages.begin(), cfg.languages.end(), lang_name(lang)) == cfg.languages.end())
    return "language";
  thread_local Parsed p;
  thread_local Scratch sc;
  p.units.clear();
  p.words.clear();
  p.chars = p.nonspace = p.digits = p.han = p.punct = p.max_run = 0;
  parse(text, lang, p);
  DocStats st;
  basic_stats(text, lang, p, st);
  bool zh = lang == Lang::zh;
  if (cfg.on("length")) {
    if (zh ? st.chars < cfg.p("length", "min_chars_zh") || st.chars > cfg.p("length", "max_chars_zh")
           : st.words < cfg.p("length", "min_words") || st.words > cfg.p("length", "max_words"))
      return "length";
  }
  if (zh) {
    if (cfg.on("han_ratio") && st.han_ratio < cfg.p("han_ratio", "min")) return "han_ratio";
    if (cfg.on("punctuation") &&
        (st.punct_ratio < cfg.p("punctuation", "min") || st.punct_ratio > cfg.p("punctuation", "max")))
      return "punctuation";
    if (cfg.on("char_repeat") && st.max_char_run > cfg.p("char_repeat", "max")) return "char_repeat";
  } else {
    if (cfg.on("mean_word_length") && (st.mean_word_length < cfg.p("mean_word_length", "min") ||
                                       st.mean_word_length > cfg.p("mean_word_length", "max")))
      return "mean_word_length";
    if (cfg.on("symbol_ratio") && st.symbol_ratio > cfg.p("symbol_ratio", "max")) return "symbol_ratio";
    if (cfg.on("alpha_words") && st.alpha_words < cfg.p("alpha_words", "min")) return "alpha_words";
    if (cfg.on("stop_words") && lang == Lang::en && st.stop_words < cfg.p("stop_words", "min")) return "stop_words";
  }
  if (cfg.on("digit_ratio") && st.digit_ratio > cfg.p("digit_ratio", "max")) return "digit_ratio";
  line_stats(text, st);
  if (!zh) {
    if (cfg.on("bullet_lines") && st.bullet_lines > cfg.p("bullet_lines", "max")) return "bullet_lines";
    if (cfg.on("ellipsis_lines") && st.ellipsis_lines > cfg.p("ellipsis_lines", "max")) return "ellipsis_lines";
  }
  if (cfg.on("mean_line_length") && st.mean_line_length < cfg.p("mean_line_length", "min")) return "mean_line_length";
  bool rep = cfg.on("dup_lines") || cfg.on("dup_line_chars") || cfg.on("dup_paragraphs") ||
             cfg.on("dup_paragraph_chars") || cfg.on("top_ngram") || cfg.on("dup_ngram");
  if (!rep) return "";
  if (zh)
    repetition_stats(text, p, st, sc, static_cast<size_t>(std::max(1.0, cfg.p("top_ngram", "zh_chars_per_word"))),
                     static_cast<size_t>(std::max(1.0, cfg.p("dup_ngram", "zh_chars_per_word"))));
  else repetition_stats(text, p, st, sc);
  if (cfg.on("dup_lines") && st.dup_lines > cfg.p("dup_lines", "max")) return "dup_lines";
  if (cfg.on("dup_line_chars") && st.dup_line_chars > cfg.p("dup_line_chars", "max")) return "dup_line_chars";
  if (cfg.on("dup_paragraphs") && st.dup_paragraphs > cfg.p("dup_paragraphs", "max")) return "dup_paragraphs";
  if (cfg.on("dup_paragraph_chars") && st.dup_paragraph_chars > cfg.p("dup_paragraph_chars", "max"))
    return "dup_paragraph_chars";
  if (cfg.on("top_ngram"))
    for (int n = 2; n <= 4; n++)
      if (st.top_ngram[n] > cfg.p("top_ngram", "n" + std::to_string(n))) return "top_ngram";
  if (cfg.on("dup_ngram"))
    for (int n = 5; n <= 10; n++)
      if (st.dup_ngram[n] >
          cfg.p("dup_ngram", "n" + std::to_string(n)) * (zh ? cfg.p("dup_ngram", "zh_threshold_scale") : 1.0))
        return "dup_ngram";
  return "";
}

}  // namespace mindllm::data
