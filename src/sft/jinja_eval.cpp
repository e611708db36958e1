// Jinja evaluator: walks the tree (jinja_parser.cpp) with jinja2's scoping (a for loop's body and a
// macro have their own variables; `set` inside them does not leak out, which is what namespace()
// is for), its default Undefined (prints as "", is false, iterates as empty; an attribute or
// item of it is an error), and the limits of jinja.h.
#include <algorithm>
#include <cmath>

#include "sft/jinja_eval.h"

namespace mindllm::sft::jinja {

namespace {
constexpr int kMaxEvalDepth = 400;  // nested evaluations (macro calls multiply the tree's depth)

struct DepthGuard {
  int& depth;
  explicit DepthGuard(int& d) : depth(d) {
    if (++depth > kMaxEvalDepth) {
      depth--;
      render_error("template recursion too deep");
    }
  }
  ~DepthGuard() { depth--; }
};
}  // namespace

Evaluator::Evaluator(const std::string& name, const Limits& limits) : name_(name), limits_(limits) {}

void Evaluator::charge(size_t bytes) {
  allocated_ += bytes;
  if (allocated_ > limits_.max_alloc)
    render_error("template creates too much data (over " + std::to_string(limits_.max_alloc >> 20) + " MiB)");
}

Value Evaluator::make_string(std::string s) {
  if (s.size() > limits_.max_output)
    render_error("string too long (over " + std::to_string(limits_.max_output >> 20) + " MiB)");
  charge(s.size());
  return Value::string(std::move(s));
}

Value Evaluator::make_list(List items, bool tuple) {
  charge(items.size() * sizeof(Value));
  return Value::make_list(std::move(items), tuple);
}

Value Evaluator::make_dict(Dict d) {
  charge(d.items.size() * sizeof(Value));
  return Value::make_dict(std::move(d));
}

void Evaluator::step() {
  if (++steps_ > limits_.max_steps)
    render_error("template runs too long (over " + std::to_string(limits_.max_steps) + " steps)");
}

void Evaluator::work(size_t units) {
  steps_ += units / 64;
  step();
}

void Evaluator::emit(std::string_view s) {
  if (out_->size() + s.size() > limits_.max_output)
    render_error("output too long (over " + std::to_string(limits_.max_output >> 20) + " MiB)");
  charge(s.size());
  out_->append(s);
}

Value Evaluator::lookup(const std::string& name) const {
  for (size_t k = frames_.size(); k-- > base_;) {
    auto it = frames_[k].vars.find(name);
    if (it != frames_[k].vars.end()) return it->second;
    if (k == 0) break;
  }
  if (base_ > 0) {
    auto it = frames_[0].vars.find(name);
    if (it != frames_[0].vars.end()) return it->second;
  }
  const auto& globals = builtin_globals();
  auto it = globals.find(name);
  if (it != globals.end()) return it->second;
  return Value::undefined("'" + name + "' is undefined");
}

void Evaluator::assign(const std::vector<std::string>& targets, const Value& v) {
  auto& vars = frames_.back().vars;
  if (targets.size() == 1) {
    vars[targets[0]] = v;
    return;
  }
  List items = iterate(*this, v);
  if (items.size() != targets.size())
    render_error("cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) +
                 " names");
  for (size_t k = 0; k < targets.size(); k++) vars[targets[k]] = items[k];
}

Args Evaluator::eval_args(const Node& n, size_t first) {
  Args a;
  for (size_t k = first; k < n.kids.size(); k++) {
    const std::string& kw = n.names[k - 1];
    if (kw.empty()) a.pos.push_back(eval(*n.kids[k]));
    else a.kw.emplace_back(kw, eval(*n.kids[k]));
  }
  return a;
}

Value Evaluator::call(const Value& fn, Args& args) {
  if (fn.is_undefined()) undefined_error(fn);
  if (fn.kind != Value::Kind::callable) render_error("'" + type_name(fn) + "' object is not callable");
  return fn.fn->call(*this, args);
}

Value Evaluator::eval_call(const Node& n) {
  const Node& callee = *n.kids[0];
  if (callee.kind == Node::Kind::attr) {
    Value obj = eval(*callee.kids[0]);
    if (obj.kind == Value::Kind::string || obj.kind == Value::Kind::dict || obj.kind == Value::Kind::list) {
      Args a = eval_args(n, 1);
      Value out;
      line = n.line;
      if (call_method(*this, obj, callee.s, a, &out)) return out;
      if (obj.kind != Value::Kind::dict || !obj.dict->find(callee.s))
        render_error("unsupported method '" + callee.s + "' of " + type_name(obj));
      Value fn = *obj.dict->find(callee.s);
      return call(fn, a);
    }
  }
  Value fn = eval(callee);
  Args a = eval_args(n, 1);
  line = n.line;
  return call(fn, a);
}

static int64_t slice_index(const Value& v, const char* what) {
  if (v.kind == Value::Kind::integer) return v.i;
  if (v.kind == Value::Kind::boolean) return v.b;
  render_error(std::string("slice ") + what + " must be an integer or none, not " + type_name(v));
}

Value Evaluator::eval_binary(const Node& n) {
  const std::string& op = n.s;
  Value a = eval(*n.kids[0]);
  if (op == "and") return truthy(a) ? eval(*n.kids[1]) : a;
  if (op == "or") return truthy(a) ? a : eval(*n.kids[1]);
  Value b = eval(*n.kids[1]);
  line = n.line;
  work(size_hint(a) + size_hint(b));
  if (op == "==") return Value::boolean(py_eq(a, b));
  if (op == "!=") return Value::boolean(!py_eq(a, b));
  if (op == "<") return Value::boolean(py_compare(a, b) < 0);
  if (op == ">") return Value::boolean(py_compare(a, b) > 0);
  if (op == "<=") return Value::boolean(py_compare(a, b) <= 0);
  if (op == ">=") return Value::boolean(py_compare(a, b) >= 0);
  if (op == "~") return make_string(py_str(a) + py_str(b));
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.kind == Value::Kind::string) {
      if (!a.is_string()) render_error("'in <string>' requires a string on the left, not " + type_name(a));
      found = b.s->find(*a.s) != std::string::npos;
    } else if (b.kind == Value::Kind::dict || b.kind == Value::Kind::ns) {
      found = a.is_string() && b.dict->find(*a.s);
    } else {
      for (const Value& x : iterate(*this, b))
        if (py_eq(a, x)) {
          found = true;
          break;
        }
    }
    return Value::boolean(found != (op == "not in"));
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  auto bad = [&]() -> Value {
    render_error("unsupported operand types for " + op + ": " + type_name(a) + " and " + type_name(b));
  };
  if (op == "+" && a.is_string() && b.is_string()) return make_string(*a.s + *b.s);
  if (op == "+" && a.kind == Value::Kind::list && b.kind == Value::Kind::list) {
    List items = *a.list;
    charge(b.list->size() * sizeof(Value));
    items.insert(items.end(), b.list->begin(), b.list->end());
    return make_list(std::move(items), a.b);
  }
  if (op == "*" && (a.is_string() || a.kind == Value::Kind::list || b.is_string() || b.kind == Value::Kind::list)) {
    const Value& seq = (a.is_string() || a.kind == Value::Kind::list) ? a : b;
    const Value& cnt = &seq == &a ? b : a;
    if (cnt.kind != Value::Kind::integer && cnt.kind != Value::Kind::boolean) return bad();
    int64_t times = std::max<int64_t>(0, cnt.kind == Value::Kind::boolean ? cnt.b : cnt.i);
    size_t unit = seq.is_string() ? seq.s->size() : seq.list->size() * sizeof(Value);
    if (unit && uint64_t(times) > limits_.max_alloc / unit) charge(limits_.max_alloc + 1);
    if (seq.is_string()) {
      std::string s;
      if (seq.s->size() * times > limits_.max_output) return make_string(std::string(limits_.max_output + 1, ' '));
      for (int64_t k = 0; k < times; k++) s += *seq.s;
      return make_string(std::move(s));
    }
    List items;
    for (int64_t k = 0; k < times; k++) items.insert(items.end(), seq.list->begin(), seq.list->end());
    return make_list(std::move(items));
  }
  if (!a.is_number() || !b.is_number()) return bad();
  bool ints = a.kind != Value::Kind::floating && b.kind != Value::Kind::floating;
  int64_t x = a.kind == Value::Kind::boolean ? a.b : a.i, y = b.kind == Value::Kind::boolean ? b.b : b.i;
  double fx = a.kind == Value::Kind::floating ? a.f : double(x), fy = b.kind == Value::Kind::floating ? b.f : double(y);
  int64_t r;
  if (op == "+")
    return ints ? (__builtin_add_overflow(x, y, &r) ? bad() : Value::integer(r)) : Value::floating(fx + fy);
  if (op == "-")
    return ints ? (__builtin_sub_overflow(x, y, &r) ? bad() : Value::integer(r)) : Value::floating(fx - fy);
  if (op == "*")
    return ints ? (__builtin_mul_overflow(x, y, &r) ? bad() : Value::integer(r)) : Value::floating(fx * fy);
  if (op == "/") {
    if (fy == 0) render_error("division by zero");
    return Value::floating(fx / fy);
  }
  if (op == "//" || op == "%") {
    if (ints ? y == 0 : fy == 0) render_error(op == "%" ? "modulo by zero" : "division by zero");
    if (ints) {
      if (x == INT64_MIN && y == -1) return bad();
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q--;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    double m = std::fmod(fx, fy);
    if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
    return Value::floating(op == "//" ? std::floor((fx - m) / fy + 0.5) : m);
  }
  if (op == "**") {
    if (ints && y >= 0) {
      int64_t acc = 1;
      if (x == 0 || x == 1) return Value::integer(y == 0 ? 1 : x);
      if (x == -1) return Value::integer(y % 2 ? -1 : 1);
      for (int64_t k = 0; k < y; k++)  // |x| >= 2: overflows within 63 steps
        if (__builtin_mul_overflow(acc, x, &acc)) return bad();
      return Value::integer(acc);
    }
    return Value::floating(std::pow(fx, fy));
  }
  return bad();
}

Value Evaluator::eval(const Node& n) {
  step();
  DepthGuard depth_guard(eval_depth_);
  line = n.line;
  switch (n.kind) {
    case Node::Kind::literal: return n.value;
    case Node::Kind::name: return lookup(n.s);
    case Node::Kind::list: {
      List items;
      for (auto& k : n.kids) items.push_back(eval(*k));
      return make_list(std::move(items), n.negate);
    }
    case Node::Kind::dict: {
      Dict d;
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        Value key = eval(*n.kids[k]);
        if (!key.is_string()) render_error("dict keys must be strings here, not " + type_name(key));
        d.set(*key.s, eval(*n.kids[k + 1]));
      }
      return make_dict(std::move(d));
    }
    case Node::Kind::attr: {
      Value obj = eval(*n.kids[0]);
      line = n.line;
      if (obj.is_undefined()) undefined_error(obj);
      if (obj.kind == Value::Kind::dict || obj.kind == Value::Kind::ns) {
        if (const Value* v = obj.dict->find(n.s)) return *v;
      }
      return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + n.s + "'");
    }
    case Node::Kind::item: {
      Value obj = eval(*n.kids[0]);
      Value key = eval(*n.kids[1]);
      line = n.line;
      if (obj.is_undefined()) undefined_error(obj);
      if (obj.is_string()) work(obj.s->size());
      if ((obj.kind == Value::Kind::dict || obj.kind == Value::Kind::ns) && key.is_string()) {
        if (const Value* v = obj.dict->find(*key.s)) return *v;
      } else if ((obj.kind == Value::Kind::list || obj.is_string()) &&
                 (key.kind == Value::Kind::integer || key.kind == Value::Kind::boolean)) {
        int64_t i = key.kind == Value::Kind::boolean ? key.b : key.i;
        if (obj.kind == Value::Kind::list) {
          int64_t len = int64_t(obj.list->size());
          if (i < 0) i += len;
          if (i >= 0 && i < len) return (*obj.list)[size_t(i)];
        } else {
          auto chars = utf8_chars(*obj.s);
          int64_t len = int64_t(chars.size());
          if (i < 0) i += len;
          if (i >= 0 && i < len) return make_string(std::string(chars[size_t(i)]));
        }
      }
      return Value::undefined("'" + type_name(obj) + " object' has no element " + py_repr(key));
    }
    case Node::Kind::slice: {
      Value obj = eval(*n.kids[0]);
      Value parts[3];
      for (int k = 0; k < 3; k++)
        if (n.kids[k + 1]) parts[k] = eval(*n.kids[k + 1]);
      line = n.line;
      if (obj.is_undefined()) undefined_error(obj);
      if (obj.kind != Value::Kind::list && !obj.is_string()) render_error("cannot slice a " + type_name(obj));
      work(size_hint(obj));
      std::vector<std::string_view> chars;
      if (obj.is_string()) chars = utf8_chars(*obj.s);
      int64_t len = obj.is_string() ? int64_t(chars.size()) : int64_t(obj.list->size());
      auto given = [&](int k) { return parts[k].kind != Value::Kind::undefined && parts[k].kind != Value::Kind::none; };
      int64_t step_v = given(2) ? slice_index(parts[2], "step") : 1;
      if (step_v == 0) render_error("slice step cannot be zero");
      // Python's slice.indices()
      auto clamp = [&](int k, int64_t dflt) {
        if (!given(k)) return dflt;
        int64_t i = slice_index(parts[k], k == 0 ? "start" : "stop");
        if (i < 0) i = std::max<int64_t>(i + len, step_v < 0 ? -1 : 0);
        else i = std::min<int64_t>(i, step_v < 0 ? len - 1 : len);
        return i;
      };
      int64_t start = clamp(0, step_v < 0 ? len - 1 : 0), stop = clamp(1, step_v < 0 ? -1 : len);
      std::string s;
      List items;
      for (int64_t i = start; step_v > 0 ? i < stop : i > stop; i += step_v) {
        if (obj.is_string()) s += chars[size_t(i)];
        else items.push_back((*obj.list)[size_t(i)]);
      }
      return obj.is_string() ? make_string(std::move(s)) : make_list(std::move(items));
    }
    case Node::Kind::call: return eval_call(n);
    case Node::Kind::filter: {
      Value v = eval(*n.kids[0]);
      Args a = eval_args(n, 1);
      line = n.line;
      return apply_filter(*this, n.s, v, a);
    }
    case Node::Kind::test: {
      Value v = eval(*n.kids[0]);
      Args a = eval_args(n, 1);
      line = n.line;
      return Value::boolean(apply_test(*this, n.s, v, a) != n.negate);
    }
    case Node::Kind::unary: {
      Value v = eval(*n.kids[0]);
      line = n.line;
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number()) render_error("bad operand type for unary " + n.s + ": " + type_name(v));
      if (n.s == "+") return v.kind == Value::Kind::boolean ? Value::integer(v.b) : v;
      if (v.kind == Value::Kind::floating) return Value::floating(-v.f);
      int64_t i = v.kind == Value::Kind::boolean ? v.b : v.i;
      if (i == INT64_MIN) render_error("integer overflow");
      return Value::integer(-i);
    }
    case Node::Kind::not_: return Value::boolean(!truthy(eval(*n.kids[0])));
    case Node::Kind::binary: return eval_binary(n);
    case Node::Kind::cond:
      if (truthy(eval(*n.kids[1]))) return eval(*n.kids[0]);
      return n.kids[2] ? eval(*n.kids[2]) : Value::undefined("the inline if's condition was false and it has no else");
    default: render_error("internal: statement evaluated as an expression");
  }
}

void Evaluator::exec_block_into(const Node& body, std::string& out) {
  std::string* saved = out_;
  out_ = &out;
  try {
    Flow f = exec(body);
    out_ = saved;
    if (f != Flow::normal) render_error("'break'/'continue' outside a loop");
  } catch (...) {
    out_ = saved;
    throw;
  }
}

Value Evaluator::call_macro(const Node& m, Args& args) {
  if (++call_depth_ > limits_.max_call_depth) render_error("macro calls nested too deeply");
  Frame f;
  size_t np = m.names.size();
  if (args.pos.size() > np) render_error("macro '" + m.s + "' takes " + std::to_string(np) + " arguments");
  for (size_t k = 0; k < np; k++) {
    if (k < args.pos.size()) f.vars[m.names[k]] = args.pos[k];
  }
  for (auto& [kw, v] : args.kw) {
    bool known = false;
    for (size_t k = 0; k < np; k++) known |= m.names[k] == kw;
    if (!known) render_error("macro '" + m.s + "' has no argument '" + kw + "'");
    f.vars[kw] = v;
  }
  size_t saved_base = base_;
  frames_.push_back(std::move(f));
  base_ = frames_.size() - 1;
  std::string out;
  try {
    for (size_t k = 0; k < np; k++) {
      if (frames_.back().vars.count(m.names[k])) continue;
      const NodePtr& d = m.kids[k + 1];
      frames_.back().vars[m.names[k]] = d ? eval(*d) : Value::undefined("'" + m.names[k] + "' is undefined");
    }
    exec_block_into(*m.kids[0], out);
  } catch (...) {
    frames_.pop_back();
    base_ = saved_base;
    call_depth_--;
    throw;
  }
  frames_.pop_back();
  base_ = saved_base;
  call_depth_--;
  return make_string(std::move(out));
}

Evaluator::Flow Evaluator::exec_for(const Node& n) {
  Value seq = eval(*n.kids[0]);
  line = n.line;
  work(size_hint(seq));
  List all = iterate(*this, seq);
  frames_.emplace_back();
  struct Pop {
    std::vector<Frame>& f;
    ~Pop() { f.pop_back(); }
  } pop{frames_};
  List items;
  if (n.kids[1]) {
    for (Value& x : all) {
      step();
      assign(n.names, x);
      if (truthy(eval(*n.kids[1]))) items.push_back(std::move(x));
    }
  } else {
    items = std::move(all);
  }
  // jinja2: variables set in the body start afresh each iteration, and `else` runs unless some
  // iteration reached the end of the body (so also after a break or continue in every one).
  int64_t len = int64_t(items.size());
  bool completed = false;
  for (int64_t k = 0; k < len; k++) {
    step();
    frames_.back().vars.clear();
    Dict loop;
    loop.set("index", Value::integer(k + 1));
    loop.set("index0", Value::integer(k));
    loop.set("revindex", Value::integer(len - k));
    loop.set("revindex0", Value::integer(len - k - 1));
    loop.set("first", Value::boolean(k == 0));
    loop.set("last", Value::boolean(k == len - 1));
    loop.set("length", Value::integer(len));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    loop.set("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
    loop.set("nextitem", k + 1 < len ? items[k + 1] : Value::undefined("there is no next item"));
    frames_.back().vars["loop"] = Value::make_dict(std::move(loop));
    assign(n.names, items[k]);
    Flow f = exec(*n.kids[2]);
    if (f == Flow::normal) completed = true;
    if (f == Flow::break_) break;
  }
  if (!completed && n.kids[3]) {
    frames_.back().vars.clear();
    return exec(*n.kids[3]);
  }
  return Flow::normal;
}

Evaluator::Flow Evaluator::exec(const Node& n) {
  DepthGuard depth_guard(eval_depth_);
  line = n.line;
  switch (n.kind) {
    case Node::Kind::text: emit(n.s); return Flow::normal;
    case Node::Kind::output: {
      Value v = eval(*n.kids[0]);
      if (!v.is_string()) work(size_hint(v));
      if (v.is_string()) emit(*v.s);
      else emit(py_str(v));
      return Flow::normal;
    }
    case Node::Kind::block:
      for (auto& k : n.kids) {
        Flow f = exec(*k);
        if (f != Flow::normal) return f;
      }
      return Flow::normal;
    case Node::Kind::if_:
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        if (!n.kids[k] || truthy(eval(*n.kids[k]))) return exec(*n.kids[k + 1]);
      }
      return Flow::normal;
    case Node::Kind::for_: return exec_for(n);
    case Node::Kind::set: assign(n.names, eval(*n.kids[0])); return Flow::normal;
    case Node::Kind::set_attr: {
      Value obj = lookup(n.names[0]);
      Value v = eval(*n.kids[0]);
      line = n.line;
      if (obj.kind != Value::Kind::ns)
        render_error("cannot assign attribute '" + n.s + "' on '" + n.names[0] + "': not a namespace");
      obj.dict->set(n.s, std::move(v));
      return Flow::normal;
    }
    case Node::Kind::set_block: {
      std::string out;
      exec_block_into(*n.kids[0], out);
      assign(n.names, make_string(std::move(out)));
      return Flow::normal;
    }
    case Node::Kind::macro: {
      Value v;
      v.kind = Value::Kind::callable;
      const Node* m = &n;
      v.fn =
          std::make_shared<const Callable>(Callable{n.s, [m](Evaluator& ev, Args& a) { return ev.call_macro(*m, a); }});
      frames_.back().vars[n.s] = v;
      return Flow::normal;
    }
    case Node::Kind::break_: return Flow::break_;
    case Node::Kind::continue_: return Flow::continue_;
    default: {
      Value v = eval(n);
      (void)v;
      return Flow::normal;
    }
  }
}

std::string Evaluator::render(const Node& root, const nlohmann::ordered_json& context) {
  frames_.assign(1, Frame{});
  base_ = 0;
  std::string out;
  out_ = &out;
  try {
    if (!context.is_null() && !context.is_object()) render_error("the template's variables must be a JSON object");
    if (context.is_object())
      for (auto& [k, v] : context.items()) frames_[0].vars[k] = from_json(v);
    Flow f = exec(root);
    if (f != Flow::normal) render_error("'break'/'continue' outside a loop");
  } catch (const RenderError& e) { fail(name_, line, e.what); }
  return out;
}

// ---- Template ----

Template::Template(std::string_view source, std::string name, Limits limits) : name_(std::move(name)), limits_(limits) {
  try {
    root_ = parse(lex(source, name_), name_);
  } catch (const RenderError& e) { fail(name_, 0, e.what); }
}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

std::string Template::render(const nlohmann::ordered_json& context) const {
  Evaluator ev(name_, limits_);
  return ev.render(*root_, context);
}

}  // namespace mindllm::sft::jinja
