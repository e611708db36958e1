// Internals of the Jinja subset: the evaluator, Python-like value semantics, the built-in filters,
// tests and methods.
#pragma once
#include <string>
#include <vector>

#include "sft/jinja_ast.h"

namespace mindllm::sft::jinja {

// An error while rendering; the evaluator adds the template name and line.
struct RenderError {
  std::string what;
};
[[noreturn]] inline void render_error(std::string what) { throw RenderError{std::move(what)}; }

// Strings built in one piece (printing a list, tojson, join, replace, format) stop growing here;
// Limits::max_output then bounds what a template keeps.
constexpr size_t kMaxBuiltString = size_t(64) << 20;

// ---- values (jinja_value.cpp) ----
size_t size_hint(const Value& v);                  // bytes of a string, items of a list or dict: the work of a scan
Value from_json(const nlohmann::ordered_json& j);  // messages, tools, extra variables
bool truthy(const Value& v);
std::string type_name(const Value& v);
std::string py_str(const Value& v);   // str(v): what {{ v }} prints
std::string py_repr(const Value& v);  // repr(v), as inside a printed list
std::string py_float(double d);       // repr(float)
// json.dumps(v, ensure_ascii=False, indent=..., separators=..., sort_keys=...): transformers' tojson.
struct JsonStyle {
  int indent = -1;  // < 0: None (one line)
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style);
bool py_eq(const Value& a, const Value& b);
int py_compare(const Value& a, const Value& b);  // <0, 0, >0; error when not orderable
// The items `for` iterates over: a list's items, a dict's keys, a string's characters.
class Evaluator;
List iterate(Evaluator& ev, const Value& v);
[[noreturn]] void undefined_error(const Value& v);

class Evaluator {
 public:
  Evaluator(const std::string& name, const Limits& limits);
  std::string render(const Node& root, const nlohmann::ordered_json& context);

  // Values created while rendering count against Limits.
  Value make_string(std::string s);
  Value make_list(List items, bool tuple = false);
  Value make_dict(Dict d);
  Value call(const Value& fn, Args& args);
  void charge(size_t bytes);
  void work(size_t units);  // a scan over `units` bytes or items counts as units/64 steps

 private:
  enum class Flow { normal, break_, continue_ };
  struct Frame {
    std::unordered_map<std::string, Value> vars;
  };

  Value eval(const Node& n);
  Value eval_binary(const Node& n);
  Value eval_call(const Node& n);
  Args eval_args(const Node& n, size_t first);
  Flow exec(const Node& n);
  Flow exec_for(const Node& n);
  void exec_block_into(const Node& body, std::string& out);
  Value call_macro(const Node& macro, Args& args);
  Value lookup(const std::string& name) const;
  void assign(const std::vector<std::string>& targets, const Value& v);
  void emit(std::string_view s);
  void step();

  const std::string& name_;
  Limits limits_;
  std::vector<Frame> frames_;
  size_t base_ = 0;  // the lowest frame a lookup sees, above the root frame (a macro's own)
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  size_t allocated_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;

 public:
  int line = 0;  // of the node being evaluated, for errors
};

// ---- built-ins (jinja_builtins.cpp) ----
Value apply_filter(Evaluator& ev, const std::string& name, const Value& v, Args& args);
bool apply_test(Evaluator& ev, const std::string& name, const Value& v, Args& args);
// range, namespace, dict, raise_exception, strftime_now.
const std::unordered_map<std::string, Value>& builtin_globals();
// A method call on a string, dict or list (`s.strip()`, `d.items()`); false when there is none.
bool call_method(Evaluator& ev, const Value& obj, const std::string& name, Args& args, Value* out);

}  // namespace mindllm::sft::jinja
