// Internals of the Jinja subset (jinja.h): tokens, the syntax tree, callables, text helpers.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "sft/jinja.h"

namespace mindllm::sft::jinja {

struct Token {
  enum class Kind { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof };
  Kind kind;
  std::string s;  // text, name, operator, decoded string literal
  int64_t i = 0;
  double f = 0;
  int line = 1;
};

// The template's tokens: text runs with whitespace control applied (trim_blocks, lstrip_blocks,
// `-`/`+` markers), tags and the expression tokens inside them; the last token is eof.
std::vector<Token> lex(std::string_view source, const std::string& template_name);

// One tree node; what `s`, `kids` and `names` hold depends on the kind (see jinja_parser.cpp).
struct Node {
  enum class Kind {
    // expressions
    literal,
    name,
    list,
    dict,
    attr,
    item,
    slice,
    call,
    filter,
    test,
    unary,
    binary,
    cond,
    not_,
    // statements
    text,
    output,
    block,
    if_,
    for_,
    set,
    set_attr,
    set_block,
    macro,
    break_,
    continue_
  };
  Kind kind;
  int line = 0;
  std::string s;
  Value value;
  std::vector<std::shared_ptr<const Node>> kids;  // a null child is an absent optional part
  std::vector<std::string> names;
  bool negate = false;
};
using NodePtr = std::shared_ptr<const Node>;

NodePtr parse(std::vector<Token> tokens, const std::string& template_name);

class Evaluator;
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};
struct Callable {
  std::string name;
  std::function<Value(Evaluator&, Args&)> call;
};

// [[noreturn]] helper: "template NAME line N: what".
[[noreturn]] void fail(const std::string& template_name, int line, const std::string& what);

// Python's notion of whitespace (str.strip(), \s), on one code point.
bool is_py_space(uint32_t cp);
// Splits UTF-8 into code points (an invalid byte is one unit of its own).
std::vector<std::string_view> utf8_chars(std::string_view s);
// Decodes the code point at s[i] (advancing i); an invalid byte decodes as itself.
uint32_t utf8_next(std::string_view s, size_t& i);

}  // namespace mindllm::sft::jinja
