// Jinja parser: tokens → tree, with jinja2's grammar and operator precedence (lowest first):
//   x if c else y | or | and | not | comparisons, in, not in | + - | ~ | * / // % | ** |
//   unary - + | filters `|f(...)` and tests `is [not] t(...)` | primary with .attr [i] [a:b:c] (...)
// What each node kind keeps (Node::s, kids, names):
//   literal: value.  name: s.  list: kids (negate: a tuple).  dict: kids = k0 v0 k1 v1 ...  attr: kids[0], s.
//   item: kids[0] [kids[1]].  slice: kids[0] [start stop step], null when absent.
//   call: kids[0] callee, kids[1..] arguments, names[k] the keyword of kids[k+1] ("" positional).
//   filter/test: s = name, kids[0] subject, kids[1..] / names as for call; test: negate.
//   unary, binary: s = operator.  cond: kids = then, condition, else (null when absent).
//   text: s.  output: kids[0].  block: kids = statements.  if_: kids = cond0 body0 cond1 body1 ...
//   (a null cond is else).  for_: names = targets, kids = iterable, filter (or null), body, else.
//   set: names = targets, kids[0] value.  set_attr: names[0] object, s attribute, kids[0].
//   set_block: names[0], kids[0] body.  macro: s name, names params, kids[0] body, kids[1..] defaults.
#include "sft/jinja_ast.h"

namespace mindllm::sft::jinja {

namespace {

constexpr int kMaxDepth = 96;  // nesting of expressions and blocks

struct Parser {
  std::vector<Token> toks;
  const std::string& name;
  size_t p = 0;
  int depth = 0;

  struct DepthGuard {
    Parser& ps;
    explicit DepthGuard(Parser& p) : ps(p) {
      if (++ps.depth > kMaxDepth) fail(ps.name, ps.cur().line, "template nested too deeply");
    }
    ~DepthGuard() { ps.depth--; }
  };

  const Token& cur() const { return toks[p]; }
  const Token& next() { return toks[p++]; }
  bool is_op(const char* op) const { return cur().kind == Token::Kind::op && cur().s == op; }
  bool is_name(const char* n) const { return cur().kind == Token::Kind::name && cur().s == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    p++;
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    p++;
    return true;
  }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case Token::Kind::text: return "text";
      case Token::Kind::var_begin: return "'{{'";
      case Token::Kind::var_end: return "'}}'";
      case Token::Kind::block_begin: return "'{%'";
      case Token::Kind::block_end: return "'%}'";
      case Token::Kind::name: return "'" + t.s + "'";
      case Token::Kind::string: return "a string";
      case Token::Kind::integer:
      case Token::Kind::floating: return "a number";
      case Token::Kind::op: return "'" + t.s + "'";
      case Token::Kind::eof: return "the end of the template";
    }
    return "?";
  }
  [[noreturn]] void unexpected(const std::string& wanted) {
    fail(name, cur().line, "expected " + wanted + ", got " + describe(cur()));
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) unexpected(std::string("'") + op + "'");
  }
  std::string expect_name() {
    if (cur().kind != Token::Kind::name) unexpected("a name");
    return next().s;
  }
  void expect_block_end() {
    if (cur().kind != Token::Kind::block_end) unexpected("'%}'");
    p++;
  }

  std::shared_ptr<Node> node(Node::Kind k, int line) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    n->line = line;
    return n;
  }

  // ---- expressions ----
  NodePtr expression() {
    DepthGuard g(*this);
    int line = cur().line;
    NodePtr e = or_expr();
    if (accept_name("if")) {
      auto n = node(Node::Kind::cond, line);
      NodePtr c = or_expr();
      NodePtr els = accept_name("else") ? expression() : nullptr;
      n->kids = {e, c, els};
      return n;
    }
    return e;
  }
  NodePtr binary(const std::string& op, NodePtr a, NodePtr b, int line) {
    auto n = node(Node::Kind::binary, line);
    n->s = op;
    n->kids = {std::move(a), std::move(b)};
    return n;
  }
  NodePtr or_expr() {
    NodePtr e = and_expr();
    while (is_name("or")) {
      int line = next().line;
      e = binary("or", e, and_expr(), line);
    }
    return e;
  }
  NodePtr and_expr() {
    NodePtr e = not_expr();
    while (is_name("and")) {
      int line = next().line;
      e = binary("and", e, not_expr(), line);
    }
    return e;
  }
  NodePtr not_expr() {
    if (is_name("not")) {
      DepthGuard g(*this);
      auto n = node(Node::Kind::not_, next().line);
      n->kids = {not_expr()};
      return n;
    }
    return compare();
  }
  // a < b <= c is (a < b) and (b <= c), as in Python (b is evaluated twice here).
  NodePtr compare() {
    NodePtr left = math1(), result;
    for (;;) {
      int line = cur().line;
      std::string op;
      if (cur().kind == Token::Kind::op && (cur().s == "==" || cur().s == "!=" || cur().s == "<" || cur().s == ">" ||
                                            cur().s == "<=" || cur().s == ">=")) {
        op = next().s;
      } else if (is_name("in")) {
        p++;
        op = "in";
      } else if (is_name("not") && toks[p + 1].kind == Token::Kind::name && toks[p + 1].s == "in") {
        p += 2;
        op = "not in";
      } else {
        return result ? result : left;
      }
      NodePtr right = math1();
      NodePtr cmp = binary(op, left, right, line);
      result = result ? binary("and", result, cmp, line) : cmp;
      left = right;
    }
  }
  NodePtr math1() {
    NodePtr e = concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      e = binary(t.s, e, concat(), t.line);
    }
    return e;
  }
  NodePtr concat() {
    NodePtr e = math2();
    while (is_op("~")) {
      int line = next().line;
      e = binary("~", e, math2(), line);
    }
    return e;
  }
  NodePtr math2() {
    NodePtr e = pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      e = binary(t.s, e, pow(), t.line);
    }
    return e;
  }
  NodePtr pow() {
    NodePtr e = unary(true);
    while (is_op("**")) {
      int line = next().line;
      e = binary("**", e, unary(true), line);
    }
    return e;
  }
  NodePtr unary(bool with_filter) {
    DepthGuard g(*this);
    NodePtr e;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      auto n = node(Node::Kind::unary, t.line);
      n->s = t.s;
      n->kids = {unary(false)};
      e = n;
    } else {
      e = primary();
    }
    e = postfix(e);
    if (with_filter) e = filters(e);
    return e;
  }
  NodePtr primary() {
    const Token& t = cur();
    auto lit = [&](Value v) {
      auto n = node(Node::Kind::literal, t.line);
      n->value = std::move(v);
      p++;
      return n;
    };
    switch (t.kind) {
      case Token::Kind::name:
        if (t.s == "true" || t.s == "True") return lit(Value::boolean(true));
        if (t.s == "false" || t.s == "False") return lit(Value::boolean(false));
        if (t.s == "none" || t.s == "None") return lit(Value::none());
        {
          auto n = node(Node::Kind::name, t.line);
          n->s = t.s;
          p++;
          return n;
        }
      case Token::Kind::string: {
        std::string s = t.s;
        p++;
        while (cur().kind == Token::Kind::string) s += next().s;  // adjacent literals concatenate
        auto n = node(Node::Kind::literal, t.line);
        n->value = Value::string(std::move(s));
        return n;
      }
      case Token::Kind::integer: return lit(Value::integer(t.i));
      case Token::Kind::floating: return lit(Value::floating(t.f));
      case Token::Kind::op:
        if (t.s == "(") {
          p++;
          if (accept_op(")")) return list_node(t.line, {}, true);  // () is an empty tuple
          NodePtr e = expression();
          if (is_op(",")) {  // a tuple
            std::vector<NodePtr> items{e};
            while (accept_op(",")) {
              if (is_op(")")) break;
              items.push_back(expression());
            }
            expect_op(")");
            return list_node(t.line, std::move(items), true);
          }
          expect_op(")");
          return e;
        }
        if (t.s == "[") {
          p++;
          std::vector<NodePtr> items;
          while (!is_op("]")) {
            if (!items.empty()) {
              expect_op(",");
              if (is_op("]")) break;
            }
            items.push_back(expression());
          }
          p++;
          return list_node(t.line, std::move(items));
        }
        if (t.s == "{") {
          p++;
          auto n = node(Node::Kind::dict, t.line);
          while (!is_op("}")) {
            if (!n->kids.empty()) {
              expect_op(",");
              if (is_op("}")) break;
            }
            n->kids.push_back(expression());
            expect_op(":");
            n->kids.push_back(expression());
          }
          p++;
          return n;
        }
        break;
      default: break;
    }
    unexpected("an expression");
  }
  NodePtr list_node(int line, std::vector<NodePtr> items, bool tuple = false) {
    auto n = node(Node::Kind::list, line);
    n->kids = std::move(items);
    n->negate = tuple;
    return n;
  }
  // Call arguments after '(' up to ')': positional then keyword (name=value).
  void arguments(Node& n) {
    while (!is_op(")")) {
      if (n.kids.size() > 1) {
        expect_op(",");
        if (is_op(")")) break;
      }
      std::string kw;
      if (cur().kind == Token::Kind::name && toks[p + 1].kind == Token::Kind::op && toks[p + 1].s == "=") {
        kw = next().s;
        p++;
      } else if (!n.names.empty() && !n.names.back().empty()) {
        fail(name, cur().line, "positional argument after keyword argument");
      }
      n.names.push_back(kw);
      n.kids.push_back(expression());
    }
    p++;
  }
  NodePtr postfix(NodePtr e) {
    for (;;) {
      int line = cur().line;
      if (accept_op(".")) {
        auto n = node(Node::Kind::attr, line);
        if (cur().kind == Token::Kind::integer) {  // foo.0 is foo[0]
          n->kind = Node::Kind::item;
          auto idx = node(Node::Kind::literal, line);
          idx->value = Value::integer(next().i);
          n->kids = {e, idx};
        } else {
          n->s = expect_name();
          n->kids = {e};
        }
        e = n;
      } else if (accept_op("[")) {
        DepthGuard g(*this);
        NodePtr parts[3] = {nullptr, nullptr, nullptr};
        bool is_slice = false;
        if (!is_op(":")) parts[0] = expression();
        if (accept_op(":")) {
          is_slice = true;
          if (!is_op(":") && !is_op("]")) parts[1] = expression();
          if (accept_op(":") && !is_op("]")) parts[2] = expression();
        }
        expect_op("]");
        auto n = node(is_slice ? Node::Kind::slice : Node::Kind::item, line);
        n->kids = {e, parts[0]};
        if (is_slice) n->kids = {e, parts[0], parts[1], parts[2]};
        e = n;
      } else if (accept_op("(")) {
        DepthGuard g(*this);
        auto n = node(Node::Kind::call, line);
        n->kids = {e};
        arguments(*n);
        e = n;
      } else {
        return e;
      }
    }
  }
  NodePtr filters(NodePtr e) {
    for (;;) {
      int line = cur().line;
      if (accept_op("|")) {
        DepthGuard g(*this);
        auto n = node(Node::Kind::filter, line);
        n->s = expect_name();
        while (accept_op(".")) n->s.append(1, '.').append(expect_name());
        n->kids = {e};
        if (accept_op("(")) arguments(*n);
        e = n;
      } else if (accept_name("is")) {
        DepthGuard g(*this);
        auto n = node(Node::Kind::test, line);
        n->negate = accept_name("not");
        n->s = expect_name();
        n->kids = {e};
        if (accept_op("(")) {
          arguments(*n);
        } else if (cur().kind == Token::Kind::string || cur().kind == Token::Kind::integer ||
                   cur().kind == Token::Kind::floating ||
                   (cur().kind == Token::Kind::name && !is_name("else") && !is_name("or") && !is_name("and") &&
                    !is_name("if") && !is_name("in") && !is_name("not") && !is_name("is"))) {
          n->names.push_back("");  // `is sameas x`, `is equalto 3`: one argument without parentheses
          n->kids.push_back(primary());
        }
        e = n;
      } else if (is_op("(")) {
        e = postfix(e);
      } else {
        return e;
      }
    }
  }

  // ---- statements ----
  // Parses statements up to a block tag named in `ends`; returns the body, leaves p after that
  // tag's name and sets *which to it.
  NodePtr body(std::initializer_list<const char*> ends, std::string* which, const char* opener, int open_line) {
    DepthGuard g(*this);
    auto blk = node(Node::Kind::block, cur().line);
    for (;;) {
      const Token& t = cur();
      if (t.kind == Token::Kind::eof) {
        if (ends.size() == 0) return blk;
        fail(name, open_line,
             std::string("'") + opener + "' is never closed (missing '{% " + *(ends.end() - 1) + " %}')");
      }
      if (t.kind == Token::Kind::text) {
        auto n = node(Node::Kind::text, t.line);
        n->s = t.s;
        blk->kids.push_back(n);
        p++;
      } else if (t.kind == Token::Kind::var_begin) {
        p++;
        auto n = node(Node::Kind::output, t.line);
        n->kids = {expression()};
        if (cur().kind != Token::Kind::var_end) unexpected("'}}'");
        p++;
        blk->kids.push_back(n);
      } else if (t.kind == Token::Kind::block_begin) {
        p++;
        if (cur().kind != Token::Kind::name) unexpected("a tag name");
        for (const char* e : ends)
          if (cur().s == e) {
            *which = next().s;
            return blk;
          }
        NodePtr s = statement();
        if (s) blk->kids.push_back(s);
      } else {
        unexpected("text or a tag");
      }
    }
  }

  // Assignment targets: a name, or names separated by commas (tuple unpacking).
  std::vector<std::string> targets() {
    std::vector<std::string> names{expect_name()};
    while (accept_op(",")) names.push_back(expect_name());
    return names;
  }

  NodePtr statement() {
    const Token& t = next();
    const std::string tag = t.s;
    int line = t.line;
    std::string which;
    if (tag == "if") {
      auto n = node(Node::Kind::if_, line);
      NodePtr c = expression();
      expect_block_end();
      for (;;) {
        NodePtr b = body({"elif", "else", "endif"}, &which, "if", line);
        n->kids.push_back(c);
        n->kids.push_back(b);
        if (which == "endif") break;
        if (which == "elif") {
          c = expression();
          expect_block_end();
        } else {
          expect_block_end();
          n->kids.push_back(nullptr);
          n->kids.push_back(body({"endif"}, &which, "if", line));
          break;
        }
      }
      expect_block_end();
      return n;
    }
    if (tag == "for") {
      auto n = node(Node::Kind::for_, line);
      if (accept_op("(")) {
        n->names = targets();
        expect_op(")");
      } else {
        n->names = targets();
      }
      if (!accept_name("in")) unexpected("'in'");
      NodePtr iter = or_expr();  // `if` here filters the loop, not a conditional expression
      NodePtr cond = accept_name("if") ? expression() : nullptr;
      if (accept_name("recursive")) fail(name, line, "unsupported: recursive for loops");
      expect_block_end();
      NodePtr b = body({"else", "endfor"}, &which, "for", line);
      NodePtr els;
      if (which == "else") {
        expect_block_end();
        els = body({"endfor"}, &which, "for", line);
      }
      expect_block_end();
      n->kids = {iter, cond, b, els};
      return n;
    }
    if (tag == "set") {
      std::string first = expect_name();
      if (accept_op(".")) {
        auto n = node(Node::Kind::set_attr, line);
        n->names = {first};
        n->s = expect_name();
        expect_op("=");
        n->kids = {expression()};
        expect_block_end();
        return n;
      }
      std::vector<std::string> names{first};
      while (accept_op(",")) names.push_back(expect_name());
      if (cur().kind == Token::Kind::block_end && names.size() == 1) {  // {% set x %}...{% endset %}
        p++;
        auto n = node(Node::Kind::set_block, line);
        n->names = names;
        n->kids = {body({"endset"}, &which, "set", line)};
        expect_block_end();
        return n;
      }
      expect_op("=");
      auto n = node(Node::Kind::set, line);
      n->names = names;
      NodePtr v = expression();
      if (is_op(",")) {  // set a, b = 1, 2
        std::vector<NodePtr> items{v};
        while (accept_op(",")) items.push_back(expression());
        v = list_node(line, std::move(items));
      }
      n->kids = {v};
      expect_block_end();
      return n;
    }
    if (tag == "macro") {
      auto n = node(Node::Kind::macro, line);
      n->s = expect_name();
      expect_op("(");
      std::vector<NodePtr> defaults;
      while (!is_op(")")) {
        if (!n->names.empty()) expect_op(",");
        n->names.push_back(expect_name());
        defaults.push_back(accept_op("=") ? expression() : nullptr);
      }
      p++;
      expect_block_end();
      n->kids.push_back(body({"endmacro"}, &which, "macro", line));
      expect_block_end();
      for (auto& d : defaults) n->kids.push_back(d);
      return n;
    }
    if (tag == "break" || tag == "continue") {
      expect_block_end();
      return node(tag == "break" ? Node::Kind::break_ : Node::Kind::continue_, line);
    }
    if (tag == "generation") {  // transformers' assistant-mask marker: renders its body as it is
      expect_block_end();
      NodePtr b = body({"endgeneration"}, &which, "generation", line);
      expect_block_end();
      return b;
    }
    if (tag == "elif" || tag == "else" || tag.rfind("end", 0) == 0)
      fail(name, line, "unexpected '{% " + tag + " %}' (no open block it could close)");
    fail(name, line, "unsupported tag '{% " + tag + " %}'");
  }
};

}  // namespace

NodePtr parse(std::vector<Token> tokens, const std::string& template_name) {
  Parser ps{std::move(tokens), template_name};
  std::string which;
  return ps.body({}, &which, "", 1);
}

}  // namespace mindllm::sft::jinja
