// A Jinja2 subset for chat templates (the language of Hugging Face's `chat_template`), rendering
// as jinja2 does with transformers' settings: trim_blocks, lstrip_blocks, loop controls, `tojson`
// with ensure_ascii=False and key order kept, `raise_exception`. docs/sft.md lists the subset.
//
// A template that cannot be rendered (syntax error, unsupported construct, raise_exception, an
// error at run time, a limit) throws TemplateError: bad input (exit 2), one line naming the
// template, the line and what is wrong. Hostile templates are bounded by Limits.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mindllm::sft::jinja {

struct TemplateError : Error {
  explicit TemplateError(const std::string& msg) : Error(ExitCode::bad_input, msg) {}
};

// Bounds on one render, so a hostile template can neither hang nor exhaust memory.
struct Limits {
  size_t max_output = size_t(64) << 20;  // bytes of rendered text, and of any one string value
  size_t max_alloc = size_t(512) << 20;  // bytes of strings and list items created in all
  uint64_t max_steps = 20'000'000;       // expression evaluations + loop iterations
  int max_call_depth = 40;               // nested macro calls
};

// A Jinja value. Strings, lists and dicts are shared, immutable once built (transformers renders
// in an immutable sandbox); a namespace is the one mutable object (attribute assignment).
struct Value;
struct Dict;
struct Callable;
using List = std::vector<Value>;

struct Value {
  enum class Kind : uint8_t { undefined, none, boolean, integer, floating, string, list, dict, ns, callable };
  Kind kind = Kind::undefined;
  bool b = false;  // a boolean's value; for a list: it is a tuple (printed as (a, b))
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> s;
  std::shared_ptr<const List> list;
  std::shared_ptr<Dict> dict;  // dict (immutable) or namespace (mutable)
  std::shared_ptr<const Callable> fn;
  std::string undefined_hint;  // for an undefined value: what was looked up, for the error message

  static Value none() {
    Value v;
    v.kind = Kind::none;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = Kind::boolean;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.kind = Kind::integer;
    v.i = x;
    return v;
  }
  static Value floating(double x) {
    Value v;
    v.kind = Kind::floating;
    v.f = x;
    return v;
  }
  static Value string(std::string x);
  static Value make_list(List items, bool tuple = false);
  static Value make_dict(Dict d);
  static Value undefined(std::string hint) {
    Value v;
    v.undefined_hint = std::move(hint);
    return v;
  }

  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_string() const { return kind == Kind::string; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::floating || kind == Kind::boolean; }
  const std::string& str() const { return *s; }
  int depth() const;  // nesting depth of lists/dicts (0 for scalars)
};

// Insertion-ordered string-keyed map (Python dicts keep order; tojson keeps it).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  std::unordered_map<std::string, size_t> index;
  int depth = 1;
  const Value* find(const std::string& key) const {
    auto it = index.find(key);
    return it == index.end() ? nullptr : &items[it->second].second;
  }
  void set(const std::string& key, Value v);
};

struct Node;  // the parsed template (jinja_ast.h)

class Template {
 public:
  // Parses `source`; `name` names the template in error messages.
  Template(std::string_view source, std::string name, Limits limits = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&);
  Template& operator=(const Template&);

  // Renders with the given top-level variables (a JSON object).
  std::string render(const nlohmann::ordered_json& context) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Limits limits_;
  std::shared_ptr<const Node> root_;
};

}  // namespace mindllm::sft::jinja
