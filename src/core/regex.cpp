#include "core/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>

#include "core/error.h"
#include "core/utf8.h"

namespace mindllm {

namespace {

// Oniguruma's \w (Hugging Face): letters, marks, numbers (all of N, so ² and Ⅷ) and connector punctuation.
constexpr const char* kOnigWord = R"(\p{L}\p{M}\p{N}\p{Pc})";
// \s of Oniguruma and (but for U+001C..U+001F) of Python: the Unicode White_Space property.
// PCRE2's own \s with UCP adds U+180E and is left out.
constexpr const char* kSpace = R"(\p{White_Space})";
constexpr const char* kNotSpace = R"(\P{White_Space})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Whether PCRE2 knows `name` as a script (asked by compiling \p{sc:name}).
bool is_script_name(std::string_view name) {
  std::string probe = "\\p{sc:" + std::string(name) + "}";
  int err = 0;
  PCRE2_SIZE at = 0;
  pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(probe.data()), probe.size(), PCRE2_UTF | PCRE2_UCP, &err,
                                &at, nullptr);
  if (c) pcre2_code_free(c);
  return c != nullptr;
}

// Walks a pattern once, rewriting the constructs whose meaning differs from PCRE2's.
class Translator {
 public:
  Translator(std::string_view p, RegexSyntax s, const std::string& where) : p_(p), syntax_(s), where_(where) {}

  std::string run() {
    caseless_.push_back(false);
    while (i_ < p_.size()) step();
    return out_;
  }

 private:
  [[noreturn]] void refuse(const std::string& what) const {
    bad_input(where_ + ": regular expression '" + std::string(p_) + "': " + what);
  }
  bool onig() const { return syntax_ == RegexSyntax::oniguruma; }
  bool at(size_t k, char c) const { return k < p_.size() && p_[k] == c; }

  void step() {
    char c = p_[i_];
    if (c == '\\') return escape();
    if (in_class_) return class_char();
    if (c == '[') {
      in_class_ = true;
      out_ += c, i_++;
      if (at(i_, '^')) out_ += '^', i_++;
      if (at(i_, ']')) out_ += ']', i_++;  // a leading ']' is a literal
      prev_letter_ = 0;
      return;
    }
    if (c == '(') return open_group();
    if (c == ')') {
      if (caseless_.size() > 1) caseless_.pop_back();
      out_ += c, i_++;
      prev_letter_ = 0;
      return;
    }
    if (syntax_ != RegexSyntax::pcre2 && c == '{' &&
        at(i_ + 1, ',')) {  // {,n} is {0,n} in Python and Oniguruma, a literal in PCRE2
      size_t k = i_ + 2;
      while (k < p_.size() && std::isdigit(static_cast<unsigned char>(p_[k]))) k++;
      if (k > i_ + 2 && at(k, '}')) {
        out_ += "{0";
        i_++;
        prev_letter_ = 0;
        return;
      }
    }
    literal(c);
  }

  // A literal character outside a class: Oniguruma folds letter pairs such as "ss" to one character
  // (ß) when matching case-insensitively; PCRE2 does not, so such patterns are refused.
  void literal(char c) {
    out_ += c, i_++;
    char low = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (onig() && caseless_.back() && prev_letter_) {
      static constexpr const char* kFoldedPairs[] = {"ss", "st", "ff", "fi", "fl"};
      for (const char* pair : kFoldedPairs)
        if (prev_letter_ == pair[0] && low == pair[1])
          refuse(std::string("case-insensitive '") + pair +
                 "' matches a single character in Oniguruma (as ß or ﬆ), "
                 "which PCRE2 cannot do; spell the letters as classes, e.g. [sS][tT]");
    }
    prev_letter_ = std::isalpha(static_cast<unsigned char>(c)) ? low : 0;
  }

  void class_char() {
    char c = p_[i_];
    if (c == ']') {
      in_class_ = false;
      out_ += c, i_++;
      return;
    }
    if (c == '[' && at(i_ + 1, ':')) {  // POSIX [:alpha:]
      size_t e = p_.find(":]", i_ + 2);
      if (e != std::string_view::npos) {
        out_.append(p_.substr(i_, e + 2 - i_));
        i_ = e + 2;
        return;
      }
    }
    if (onig() && c == '[') refuse("nested character classes are not supported");
    if (onig() && c == '&' && at(i_ + 1, '&')) refuse("character class intersections (&&) are not supported");
    out_ += c, i_++;
  }

  void open_group() {
    bool flag = caseless_.back();
    i_++;
    out_ += '(';
    prev_letter_ = 0;
    if (!at(i_, '?')) {
      caseless_.push_back(flag);
      return;
    }
    // (?flags) or (?flags:...): letters i m s x, '-' to turn off.
    size_t k = i_ + 1;
    while (k < p_.size() && (std::isalpha(static_cast<unsigned char>(p_[k])) || p_[k] == '-')) k++;
    bool options = k > i_ + 1 && (at(k, ')') || at(k, ':')) && p_[i_ + 1] != 'P';
    if (!options) {
      caseless_.push_back(flag);
      return;
    }
    std::string letters;
    bool on = true, caseless = flag;
    for (size_t j = i_ + 1; j < k; j++) {
      char f = p_[j];
      if (f == '-') on = false;
      else if (f == 'i') caseless = on;
      else if (onig() && f == 'm') f = 's';  // Ruby's (?m) is PCRE2's (?s): dot matches newline
      else if (onig() && f != 'x') refuse(std::string("inline option '") + f + "' is not supported (i, m, x are)");
      letters += f;
    }
    out_ += '?';
    out_ += letters;
    out_ += p_[k];
    i_ = k + 1;
    if (p_[k] == ':') caseless_.push_back(caseless);
    else caseless_.back() = caseless;  // (?i) holds to the end of the enclosing group
  }

  // Appends a class (outside a class) or its members (inside one).
  void set(const std::string& members) { out_ += in_class_ ? members : "[" + members + "]"; }
  void negated_set(const std::string& members, char name) {
    if (in_class_) refuse(std::string("\\") + name + " inside a character class is not supported");
    out_ += "[^" + members + "]";
  }

  void escape() {
    prev_letter_ = 0;
    if (i_ + 1 >= p_.size()) refuse("ends with a backslash");
    char c = p_[i_ + 1];
    i_ += 2;
    if (syntax_ == RegexSyntax::pcre2) {
      out_ += '\\', out_ += c;
      return;
    }
    if (c == 'Q') {  // \Q...\E: literal text
      size_t e = p_.find("\\E", i_);
      size_t end = e == std::string_view::npos ? p_.size() : e;
      out_ += "\\Q";
      out_.append(p_.substr(i_, end - i_));
      out_ += "\\E";
      i_ = e == std::string_view::npos ? p_.size() : e + 2;
      return;
    }
    if (c == 'u' || (c == 'U' && syntax_ == RegexSyntax::python)) {  // \uHHHH, \UHHHHHHHH
      size_t n = c == 'u' ? 4 : 8;
      for (size_t k = 0; k < n; k++)
        if (i_ + k >= p_.size() || !is_hex(p_[i_ + k]))
          refuse(std::string("\\") + c + " needs " + std::to_string(n) + " hex digits");
      out_ += "\\x{" + std::string(p_.substr(i_, n)) + "}";
      i_ += n;
      return;
    }
    if (c == 's') return set(kSpace);
    if (c == 'S') {
      out_ += in_class_ ? kNotSpace : "[" + std::string(kNotSpace) + "]";
      return;
    }
    if (syntax_ == RegexSyntax::python && c == 'Z') {  // Python's \Z is the very end
      out_ += "\\z";
      return;
    }
    if (onig()) {
      std::string word = kOnigWord;
      if ((c == 'p' || c == 'P') && at(i_, '{')) {
        // \p{Han}: Oniguruma means the Script property; PCRE2's \p{Han} also takes Script_Extensions
        // (so 《 would be Han), its \p{sc:Han} does not.
        size_t e = p_.find('}', i_);
        if (e != std::string_view::npos) {
          std::string_view name = p_.substr(i_ + 1, e - i_ - 1);
          bool neg = !name.empty() && name[0] == '^';
          if (neg) name.remove_prefix(1);
          if (is_script_name(name)) {
            out_ += std::string("\\") + c + "{" + (neg ? "^" : "") + "sc:" + std::string(name) + "}";
            i_ = e + 1;
            return;
          }
        }
      }
      switch (c) {
        case 'w': return set(word);
        case 'W': return negated_set(word, 'W');
        case 'h': return set("0-9a-fA-F");  // Oniguruma's \h is a hex digit
        case 'H': return negated_set("0-9a-fA-F", 'H');
        case 'v': out_ += "\\x0B"; return;  // a vertical tab, not PCRE2's vertical-space class
        case 'V': refuse("\\V is not an Oniguruma escape");
        case 'b':
        case 'B':
          if (in_class_) break;  // backspace
          // Word boundaries with Oniguruma's \w.
          out_ += c == 'b' ? "(?:(?<=[" + word + "])(?![" + word + "])|(?<![" + word + "])(?=[" + word + "]))"
                           : "(?:(?<=[" + word + "])(?=[" + word + "])|(?<![" + word + "])(?![" + word + "]))";
          return;
        default: break;
      }
    }
    out_ += '\\', out_ += c;
  }

  std::string_view p_;
  RegexSyntax syntax_;
  const std::string& where_;
  std::string out_;
  size_t i_ = 0;
  bool in_class_ = false;
  std::vector<bool> caseless_;  // per open group: whether (?i) is on
  char prev_letter_ = 0;        // the previous literal letter (lower case), 0 if none
};

// One match-data block and one JIT stack per thread, shared by every Regex.
struct ThreadState {
  pcre2_match_data* data = nullptr;
  uint32_t pairs = 0;
  pcre2_jit_stack* jit_stack = nullptr;
  ~ThreadState() {
    if (data) pcre2_match_data_free(data);
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
  }
  pcre2_match_data* get(uint32_t need) {
    if (pairs < need) {
      if (data) pcre2_match_data_free(data);
      pairs = std::max<uint32_t>(need, 16);
      data = pcre2_match_data_create(pairs, nullptr);
      if (!data) internal_error("regex: out of memory");
    }
    return data;
  }
};
thread_local ThreadState tls;

pcre2_jit_stack* thread_jit_stack(void*) {
  if (!tls.jit_stack) tls.jit_stack = pcre2_jit_stack_create(32 << 10, 8 << 20, nullptr);
  return tls.jit_stack;
}

}  // namespace

std::string regex_to_pcre2(std::string_view pattern, RegexSyntax syntax, const std::string& where) {
  return Translator(pattern, syntax, where).run();
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* mctx = nullptr;
  ~Code() {
    if (mctx) pcre2_match_context_free(mctx);
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(std::string_view pattern, RegexSyntax syntax, const std::string& where)
    : code_(std::make_unique<Code>()), pattern_(pattern), where_(where) {
  std::string pcre = regex_to_pcre2(pattern, syntax, where);
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C;
  if (syntax == RegexSyntax::oniguruma) opts |= PCRE2_MULTILINE;  // Ruby: ^ and $ match at every line
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE err_at = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.data()), pcre.size(), opts, &err, &err_at, cctx);
  pcre2_compile_context_free(cctx);
  if (!code_->code) bad_input(where + ": invalid regular expression '" + pattern_ + "': " + pcre2_message(err));
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // without a JIT, the interpreter runs it
  code_->mctx = pcre2_match_context_create(nullptr);
  if (!code_->mctx) internal_error("regex: out of memory");
  pcre2_jit_stack_assign(code_->mctx, thread_jit_stack, nullptr);
  uint32_t captures = 0;
  pcre2_pattern_info(code_->code, PCRE2_INFO_CAPTURECOUNT, &captures);
  groups_ = captures;
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

bool Regex::find(std::string_view text, size_t start, unsigned how, std::vector<RegexSpan>* groups) const {
  pcre2_match_data* md = tls.get(static_cast<uint32_t>(groups_ + 1));
  uint32_t opts = (how & kNotEmptyAtStart ? PCRE2_NOTEMPTY_ATSTART : 0) | (how & kAnchored ? PCRE2_ANCHORED : 0);
  int rc =
      pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, opts, md, code_->mctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) bad_input(where_ + ": regular expression '" + pattern_ + "': matching failed: " + pcre2_message(rc));
  if (!groups) return true;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  groups->assign(groups_ + 1, RegexSpan{});
  for (size_t g = 0; g <= groups_; g++)
    if (ov[2 * g] != PCRE2_UNSET) (*groups)[g] = RegexSpan{ov[2 * g], ov[2 * g + 1]};
  return true;
}

bool Regex::search(std::string_view text, size_t start, std::vector<RegexSpan>* groups) const {
  return start <= text.size() && find(text, start, 0, groups);
}

bool Regex::match(std::string_view text, std::vector<RegexSpan>* groups) const {
  return find(text, 0, kAnchored, groups);
}

size_t Regex::next_char(std::string_view text, size_t pos) {
  pos++;
  while (pos < text.size() && utf8::is_continuation(static_cast<unsigned char>(text[pos]))) pos++;
  return pos;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  size_t done = 0;
  for_each_match(text, EmptyMatches::python, [&](const std::vector<RegexSpan>& g) {
    out.append(text.substr(done, g[0].begin - done));
    out.append(replacement);
    done = g[0].end;
  });
  out.append(text.substr(done));
  return out;
}

}  // namespace mindllm
