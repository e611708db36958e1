// Jinja lexer: text runs and tags, with jinja2's whitespace control as transformers configures it
// (trim_blocks: the first newline after a block or comment tag goes; lstrip_blocks: spaces and
// tabs from the start of a line up to a block or comment tag go; `-` strips all whitespace on
// that side, `+` keeps it). Newlines are normalised to \n and one trailing newline is dropped
// (keep_trailing_newline=False), as jinja2 does.
#include <cerrno>
#include <cstring>

#include "core/utf8.h"
#include "sft/jinja_ast.h"

namespace mindllm::sft::jinja {

void fail(const std::string& template_name, int line, const std::string& what) {
  throw TemplateError("chat template " + template_name + " line " + std::to_string(line) + ": " + what);
}

uint32_t utf8_next(std::string_view s, size_t& i) {
  char32_t cp;
  const size_t n = utf8::decode(s, i, &cp);
  if (n == 0) return static_cast<unsigned char>(s[i++]);
  i += n;
  return cp;
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    utf8_next(s, i);
    out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool is_py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

namespace {

// Length of the run of Python whitespace at the start of s.
size_t leading_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_py_space(utf8_next(s, j))) break;
    i = j;
  }
  return i;
}

// s without its trailing Python whitespace.
std::string_view rstrip_space(std::string_view s) {
  auto chars = utf8_chars(s);
  size_t n = s.size();
  for (size_t k = chars.size(); k-- > 0;) {
    size_t j = 0;
    if (!is_py_space(utf8_next(chars[k], j))) break;
    n -= chars[k].size();
  }
  return s.substr(0, n);
}

struct Lexer {
  std::string src;
  const std::string& name;
  size_t pos = 0;
  int line = 1;
  std::vector<Token> out;

  void advance_to(size_t p) {
    for (size_t k = pos; k < p; k++) line += src[k] == '\n';
    pos = p;
  }
  void push(Token::Kind k, std::string s = {}) { out.push_back(Token{k, std::move(s), 0, 0, line}); }

  // Decodes a string literal starting at pos (the quote); Python escapes.
  void string_literal() {
    char q = src[pos];
    int start_line = line;
    std::string v;
    size_t i = pos + 1;
    for (;;) {
      if (i >= src.size()) fail(name, start_line, "unterminated string literal");
      char c = src[i];
      if (c == q) break;
      if (c != '\\') {
        v += c;
        i++;
        continue;
      }
      if (i + 1 >= src.size()) fail(name, start_line, "unterminated string literal");
      char e = src[i + 1];
      i += 2;
      auto hex = [&](int n) {
        uint32_t cp = 0;
        for (int k = 0; k < n; k++, i++) {
          if (i >= src.size() || !std::isxdigit(static_cast<unsigned char>(src[i])))
            fail(name, start_line, "bad \\x/\\u escape in string literal");
          char h = src[i];
          cp = cp * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        if (cp > 0x10ffff) fail(name, start_line, "bad \\U escape in string literal");
        utf8::append(v, cp);
      };
      switch (e) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case 'a': v += '\a'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case '\n': break;
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = e - '0';
            for (int k = 0; k < 2 && i < src.size() && src[i] >= '0' && src[i] <= '7'; k++, i++)
              cp = cp * 8 + (src[i] - '0');
            utf8::append(v, cp);
          } else {
            v += '\\';
            v += e;
          }
      }
    }
    push(Token::Kind::string, std::move(v));
    advance_to(i + 1);
  }

  void number() {
    size_t i = pos;
    bool is_float = false;
    auto digits = [&] {
      while (i < src.size() &&
             (std::isdigit(static_cast<unsigned char>(src[i])) ||
              (src[i] == '_' && i + 1 < src.size() && std::isdigit(static_cast<unsigned char>(src[i + 1])))))
        i++;
    };
    digits();
    if (i + 1 < src.size() && src[i] == '.' && std::isdigit(static_cast<unsigned char>(src[i + 1]))) {
      is_float = true;
      i++;
      digits();
    }
    if (i < src.size() && (src[i] == 'e' || src[i] == 'E')) {
      size_t j = i + 1;
      if (j < src.size() && (src[j] == '+' || src[j] == '-')) j++;
      if (j < src.size() && std::isdigit(static_cast<unsigned char>(src[j]))) {
        is_float = true;
        i = j;
        digits();
      }
    }
    std::string text;
    for (size_t k = pos; k < i; k++)
      if (src[k] != '_') text += src[k];
    Token t{is_float ? Token::Kind::floating : Token::Kind::integer, text, 0, 0, line};
    if (is_float) {
      t.f = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) fail(name, line, "integer literal out of range: " + text);
    }
    out.push_back(std::move(t));
    advance_to(i);
  }

  // The tokens of one {{ }} or {% %} tag, up to and including its end; returns the end's strip
  // marker ('-', '+' or 0).
  char tag_body(bool is_block) {
    int depth = 0;
    int start_line = line;
    for (;;) {
      while (pos < src.size() && (src[pos] == ' ' || src[pos] == '\t' || src[pos] == '\n' || src[pos] == '\r'))
        advance_to(pos + 1);
      if (pos >= src.size()) fail(name, start_line, is_block ? "unclosed '{%' tag" : "unclosed '{{' tag");
      std::string_view rest = std::string_view(src).substr(pos);
      const char* end = is_block ? "%}" : "}}";
      if (depth == 0 || is_block) {
        for (char marker : {'-', '+', '\0'}) {
          if (marker == '+' && !is_block) continue;
          std::string e = marker ? std::string(1, marker) + end : std::string(end);
          if (rest.substr(0, e.size()) == e) {
            push(is_block ? Token::Kind::block_end : Token::Kind::var_end);
            advance_to(pos + e.size());
            return marker;
          }
        }
      }
      char c = src[pos];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t i = pos;
        while (i < src.size() && (std::isalnum(static_cast<unsigned char>(src[i])) || src[i] == '_')) i++;
        push(Token::Kind::name, src.substr(pos, i - pos));
        advance_to(i);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        number();
      } else if (c == '\'' || c == '"') {
        string_literal();
      } else {
        static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                    ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
        const char* op = nullptr;
        for (const char* o : ops)
          if (rest.substr(0, std::strlen(o)) == o) {
            op = o;
            break;
          }
        if (!op) fail(name, line, std::string("unexpected character '") + c + "'");
        if (*op == '(' || *op == '[' || *op == '{') depth++;
        if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) depth--;
        push(Token::Kind::op, op);
        advance_to(pos + std::strlen(op));
      }
    }
  }

  void run() {
    bool line_starting = true;
    for (;;) {
      size_t open = pos;
      for (;;) {
        open = src.find('{', open);
        if (open == std::string::npos || open + 1 >= src.size()) {
          open = std::string::npos;
          break;
        }
        char n = src[open + 1];
        if (n == '{' || n == '%' || n == '#') break;
        open++;
      }
      if (open == std::string::npos) {
        if (pos < src.size()) push(Token::Kind::text, src.substr(pos));
        advance_to(src.size());
        break;
      }
      char type = src[open + 1];
      char marker = open + 2 < src.size() ? src[open + 2] : 0;
      std::string text = src.substr(pos, open - pos);
      if (marker == '-') {
        text = std::string(rstrip_space(text));
      } else if (marker != '+' && type != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        std::string_view tail = std::string_view(text).substr(l_pos);
        if ((l_pos > 0 || line_starting) && !tail.empty() && leading_space(tail) == tail.size()) text.resize(l_pos);
      }
      if (!text.empty()) push(Token::Kind::text, text);
      advance_to(open);
      size_t body = open + 2 + (marker == '-' || marker == '+' ? 1 : 0);  // {{+ is accepted, as jinja2 does
      char end_marker;
      if (type == '#') {
        size_t close = src.find("#}", body);
        if (close == std::string::npos) fail(name, line, "unclosed comment '{#'");
        end_marker = close > body && src[close - 1] == '-' ? '-' : close > body && src[close - 1] == '+' ? '+' : 0;
        advance_to(close + 2);
      } else {
        push(type == '{' ? Token::Kind::var_begin : Token::Kind::block_begin);
        advance_to(body);
        end_marker = tag_body(type == '%');
      }
      if (end_marker == '-') {
        advance_to(pos + leading_space(std::string_view(src).substr(pos)));
      } else if (end_marker != '+' && type != '{' && pos < src.size() && src[pos] == '\n') {
        advance_to(pos + 1);
      }
      line_starting = pos > 0 && src[pos - 1] == '\n';
    }
    push(Token::Kind::eof);
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source, const std::string& template_name) {
  Lexer lx{{}, template_name, 0, 1, {}};
  lx.src.reserve(source.size());
  for (size_t i = 0; i < source.size(); i++) {
    if (source[i] == '\r') {
      lx.src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') i++;
    } else {
      lx.src += source[i];
    }
  }
  if (!lx.src.empty() && lx.src.back() == '\n') lx.src.pop_back();
  lx.run();
  return std::move(lx.out);
}

}  // namespace mindllm::sft::jinja
