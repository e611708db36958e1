#include "data/clean.h"

#include <opencc/opencc.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "data/char_class.h"
#include "tokenizer/unicode.h"

namespace mindllm::data {

static bool ieq_prefix(std::string_view s, size_t i, std::string_view word) {
  if (i + word.size() > s.size()) return false;
  for (size_t k = 0; k < word.size(); k++)
    if ((s[i + k] >= 'A' && s[i + k] <= 'Z' ? s[i + k] + 32 : s[i + k]) != word[k]) return false;
  return true;
}

static const std::map<std::string_view, std::string_view>& entities() {
  static const std::map<std::string_view, std::string_view> m = {
      {"amp", "&"},        {"lt", "<"},         {"gt", ">"},         {"quot", "\""},       {"apos", "'"},
      {"nbsp", " "},       {"mdash", "\u2014"}, {"ndash", "\u2013"}, {"hellip", "\u2026"}, {"copy", "\u00A9"},
      {"ldquo", "\u201C"}, {"rdquo", "\u201D"}, {"lsquo", "\u2018"}, {"rsquo", "\u2019"}};
  return m;
}

std::string strip_html(std::string_view s) {
  if (s.find('<') == std::string_view::npos && s.find('&') == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '<') {
      if (s.compare(i, 4, "<!--") == 0) {
        size_t e = s.find("-->", i + 4);
        i = e == std::string_view::npos ? s.size() : e + 3;
        continue;
      }
      size_t j = i + 1;
      if (j < s.size() && (s[j] == '/' || s[j] == '!')) j++;
      if (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) {
        size_t e = s.find_first_of("<>\n", j);
        // A tag: letters after '<', closed by '>' within a line and 1000 bytes.
        if (e != std::string_view::npos && s[e] == '>' && e - i < 1000) {
          for (const char* body : {"script", "style"}) {
            if (ieq_prefix(s, i + 1, body)) {
              std::string close = std::string("</") + body;
              size_t k = e;
              while ((k = s.find("</", k)) != std::string_view::npos && !ieq_prefix(s, k, close)) k += 2;
              if (k != std::string_view::npos) e = s.find('>', k);
              if (e == std::string_view::npos) e = s.size() - 1;
              break;
            }
          }
          // Block-level tags end a line.
          static const char* blocks[] = {"p",  "/p", "br", "div", "/div",  "li", "tr", "h1",
                                         "h2", "h3", "h4", "/h",  "table", "ul", "ol"};
          for (const char* b : blocks) {
            size_t n = std::strlen(b);
            if (ieq_prefix(s, i + 1, b) && i + 1 + n < s.size() &&
                !std::isalnum(static_cast<unsigned char>(s[i + 1 + n]))) {
              out.push_back('\n');
              break;
            }
          }
          i = e + 1;
          continue;
        }
      }
    } else if (c == '&') {
      size_t e = s.find(';', i + 1);
      if (e != std::string_view::npos && e - i <= 10) {
        std::string_view name = s.substr(i + 1, e - i - 1);
        if (!name.empty() && name[0] == '#') {
          char32_t cp = 0;
          bool hex = name.size() > 1 && (name[1] == 'x' || name[1] == 'X');
          bool ok = name.size() > (hex ? 2u : 1u);
          for (size_t k = hex ? 2 : 1; k < name.size() && ok; k++) {
            char d = name[k];
            int v = std::isdigit(static_cast<unsigned char>(d))           ? d - '0'
                    : hex && std::isxdigit(static_cast<unsigned char>(d)) ? (std::tolower(d) - 'a' + 10)
                                                                          : -1;
            if (v < 0 || cp > 0x10FFFF) ok = false;
            else cp = cp * (hex ? 16 : 10) + v;
          }
          if (ok && cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
            utf8::append(out, cp);
            i = e + 1;
            continue;
          }
        } else {
          auto it = entities().find(name);
          if (it != entities().end()) {
            out += it->second;
            i = e + 1;
            continue;
          }
        }
      }
    }
    out.push_back(c);
    i++;
  }
  return out;
}

std::string remove_control_chars(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == 0x1B) {  // ANSI escape: ESC [ params final-byte
        i++;
        if (i < s.size() && s[i] == '[') {
          i++;
          while (i < s.size() && static_cast<unsigned char>(s[i]) >= 0x20 && static_cast<unsigned char>(s[i]) < 0x40)
            i++;
          if (i < s.size()) i++;
        }
        continue;
      }
      if (c == '\r') {
        if (i + 1 < s.size() && s[i + 1] == '\n') {
          i++;
          continue;
        }
        out.push_back('\n');
      } else if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7F)) {
        out.push_back(static_cast<char>(c));
      } else if (c == 0x0B || c == 0x0C) {
        out.push_back('\n');
      }
      i++;
      continue;
    }
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) {
      i++;
      continue;
    }  // callers pass valid UTF-8; be safe anyway
    bool drop = (cp >= 0x80 && cp <= 0x9F) || cp == 0xFEFF || cp == 0x200B || cp == 0x2060 || cp == 0x00AD ||
                (cp >= 0xE000 && cp <= 0xF8FF) /* private use */ || cp == 0xFFFE || cp == 0xFFFF;
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) out.push_back('\n');
    else if (!drop) out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

// NFKC with the full-width ASCII forms U+FF01..U+FF5E, the ideographic space U+3000 and the
// Chinese ellipsis and dash (U+2026 "…", NFKC "..."; U+2014 "—", kept by NFKC but named so it
// stays so) left alone, as ICU's FilteredNormalizer2 over [^\uFF01-\uFF5E\u3000\u2026\u2014]
// does: those characters are copied and the spans between them are normalized on their own.
// Chinese text writes "……" and "——"; "......" is not Chinese punctuation. The normalizer is the
// tokenizer's (src/tokenizer/unicode.h: generated NFC/NFKC tables, UTF-8 in and out, a quick
// check first), so no text goes through UTF-16 and back.
static bool nfkc_kept(char32_t cp) {
  return (cp >= 0xFF01 && cp <= 0xFF5E) || cp == 0x3000 || cp == 0x2026 || cp == 0x2014;
}

static void nfkc_span(std::string_view span, std::string& out, std::string& tmp) {
  if (span.empty()) return;
  if (unicode::is_normalized_quick(span, unicode::NormForm::nfkc)) {
    out.append(span);
    return;
  }
  unicode::normalize(span, unicode::NormForm::nfkc, tmp);
  out += tmp;
}

std::string normalize_nfkc_safe(std::string_view s) {
  size_t first = 0;  // ASCII is always NFKC
  while (first < s.size() && static_cast<unsigned char>(s[first]) < 0x80) first++;
  if (first == s.size()) return std::string(s);
  std::string out, tmp;
  out.reserve(s.size() + s.size() / 8);
  size_t span = 0;
  for (size_t i = first; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      i++;
      continue;
    }
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) {
      i++;
      continue;
    }  // invalid bytes stay (the normalizer keeps them)
    if (nfkc_kept(cp)) {
      nfkc_span(s.substr(span, i - span), out, tmp);
      out.append(s.substr(i, len));
      span = i + len;
    }
    i += len;
  }
  nfkc_span(s.substr(span), out, tmp);
  return out;
}

std::string fold_fullwidth(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    size_t len = utf8::decode(s, i, &cp);
    if (len == 0) {
      i++;
      continue;
    }
    if (cp >= 0xFF01 && cp <= 0xFF5E) utf8::append(out, cp - 0xFF01 + 0x21);
    else if (cp == 0x3000) out.push_back(' ');
    else out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string traditional_to_simplified(std::string_view s, const std::string& config) {
  // One converter per thread and config (OpenCC's converters are not documented as thread-safe).
  thread_local std::map<std::string, std::unique_ptr<opencc::SimpleConverter>> convs;
  auto& c = convs[config];
  if (!c) {
    try {
      c = std::make_unique<opencc::SimpleConverter>(config);
    } catch (const std::exception& e) {
      bad_input("clean.opencc_config: cannot load OpenCC config '" + config + "': " + e.what());
    }
  }
  return c->Convert(s.data(), s.size());
}

void check_clean_config(const CleanConfig& cfg) {
  if (cfg.traditional_to_simplified) traditional_to_simplified("測試", cfg.opencc_config);
}

// Removes Markdown syntax from one line (links keep their text).
static std::string strip_markdown_line(std::string_view line) {
  size_t p = 0;
  while (p < line.size() && line[p] == ' ') p++;
  size_t h = p;
  while (h < line.size() && line[h] == '#') h++;
  if (h > p && h - p <= 6 && (h == line.size() || line[h] == ' ')) line = line.substr(h);
  else if (line.size() - p >= 2 && (line[p] == '>') && line[p + 1] == ' ') line = line.substr(p + 2);
  // Horizontal rules and code fences.
  std::string_view t = line.substr(std::min(line.find_first_not_of(' '), line.size()));
  if (t.size() >= 3 &&
      (t.find_first_not_of("-") == std::string_view::npos || t.find_first_not_of("*") == std::string_view::npos ||
       t.find_first_not_of("=") == std::string_view::npos || t.find_first_not_of("_") == std::string_view::npos))
    return {};
  if (t.rfind("```", 0) == 0) return {};
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); i++) {
    char c = line[i];
    if ((c == '[' || (c == '!' && i + 1 < line.size() && line[i + 1] == '['))) {
      size_t open = c == '!' ? i + 1 : i;
      size_t close = line.find(']', open);
      if (close != std::string_view::npos && close + 1 < line.size() && line[close + 1] == '(') {
        size_t end = line.find(')', close + 2);
        if (end != std::string_view::npos) {
          if (c != '!') out.append(line.substr(open + 1, close - open - 1));
          i = end;
          continue;
        }
      }
    }
    if ((c == '*' || c == '_') && i + 1 < line.size() && line[i + 1] == c) {  // **bold** / __bold__
      i++;
      continue;
    }
    if (c == '`') continue;
    out.push_back(c);
  }
  return out;
}

// Bytes that can start a boilerplate phrase (either case for ASCII letters): a line is only
// compared with the phrases at the positions holding one (most positions hold none).
struct PhraseStarts {
  bool any[256] = {};
  explicit PhraseStarts(const std::vector<std::string>& phrases) {
    for (auto& ph : phrases) {
      if (ph.empty()) continue;
      unsigned char c = static_cast<unsigned char>(ph[0]);
      any[c] = true;
      if (c >= 'a' && c <= 'z') any[c - 32] = true;
      if (c >= 'A' && c <= 'Z') any[c + 32] = true;
    }
  }
};

static bool has_phrase(std::string_view line, const std::vector<std::string>& phrases, const PhraseStarts& starts) {
  for (size_t i = 0; i < line.size(); i++) {
    if (!starts.any[static_cast<unsigned char>(line[i])]) continue;
    for (auto& ph : phrases)
      if (!ph.empty() && ieq_prefix(line, i, ph)) return true;
  }
  return false;
}

std::string clean_lines(std::string_view s, const CleanConfig& cfg) {
  std::string out;
  out.reserve(s.size());
  const PhraseStarts starts(cfg.boilerplate_phrases);
  int pending_newlines = 0;
  size_t pos = 0;
  std::string line, tmp;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string_view::npos) nl = s.size();
    std::string_view raw = s.substr(pos, nl - pos);
    pos = nl + 1;
    // Whitespace: any space character (incl. U+3000, NBSP, tabs) becomes ' ', runs collapse, trim.
    line.clear();
    bool space = true;  // drops leading spaces
    for (size_t i = 0; i < raw.size();) {
      char32_t cp;
      size_t len = utf8::decode(raw, i, &cp);
      if (len == 0) {
        i++;
        continue;
      }
      if (is_space(cp)) {
        if (!space) line.push_back(' ');
        space = true;
      } else {
        line.append(raw.substr(i, len));
        space = false;
      }
      i += len;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    // Markdown syntax needs one of these characters; a line without them stays as it is.
    if (cfg.strip_markdown && !line.empty() && line.find_first_of("#>[!*_`-=") != std::string::npos) {
      tmp = strip_markdown_line(line);
      line.clear();
      for (char c : tmp)  // removed syntax can leave double spaces
        if (c != ' ' || (!line.empty() && line.back() != ' ')) line.push_back(c);
      while (!line.empty() && line.back() == ' ') line.pop_back();
    }
    if (cfg.remove_boilerplate_lines && !line.empty() && line.size() <= cfg.boilerplate_max_line_bytes) {
      if (has_phrase(line, cfg.boilerplate_phrases, starts)) line.clear();
    }
    if (line.empty()) {
      if (!out.empty()) pending_newlines = std::min(pending_newlines + 1, 2);
      continue;
    }
    if (!out.empty()) out.append(pending_newlines >= 2 ? "\n\n" : "\n");
    pending_newlines = 1;
    out += line;
  }
  return out;
}

std::string clean_text(std::string_view s, const CleanConfig& cfg) {
  std::string t = cfg.strip_html ? strip_html(s) : std::string(s);
  t = remove_control_chars(t);
  if (cfg.normalize_nfkc) t = normalize_nfkc_safe(t);
  if (cfg.fold_fullwidth) t = fold_fullwidth(t);
  if (cfg.traditional_to_simplified) t = traditional_to_simplified(t, cfg.opencc_config);
  return clean_lines(t, cfg);
}

}  // namespace mindllm::data
