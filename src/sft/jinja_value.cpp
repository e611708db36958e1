// Jinja values with Python's semantics where templates see them: str()/repr() of what a template
// prints, truthiness, ==, ordering, iteration, and json.dumps as transformers' tojson calls it.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "sft/jinja_eval.h"

namespace mindllm::sft::jinja {

namespace {
constexpr int kMaxValueDepth = 64;  // nesting of lists/dicts, so printing and freeing stay shallow
}

Value Value::string(std::string x) {
  Value v;
  v.kind = Kind::string;
  v.s = std::make_shared<const std::string>(std::move(x));
  return v;
}

int Value::depth() const {
  if (kind == Kind::list)
    return list->empty() ? 1 : 1 + std::max_element(list->begin(), list->end(), [](const Value& a, const Value& b) {
                                     return a.depth() < b.depth();
                                   })->depth();
  if (kind == Kind::dict) return dict->depth;
  return 0;
}

Value Value::make_list(List items, bool tuple) {
  int d = 0;
  for (const Value& x : items) {
    if (x.kind == Kind::ns) render_error("a namespace cannot be stored in a list (unsupported)");
    d = std::max(d, x.depth());
  }
  if (d + 1 > kMaxValueDepth) render_error("lists/dicts nested too deeply");
  Value v;
  v.kind = Kind::list;
  v.b = tuple;
  v.list = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::make_dict(Dict d) {
  Value v;
  v.kind = Kind::dict;
  v.dict = std::make_shared<Dict>(std::move(d));
  return v;
}

void Dict::set(const std::string& key, Value v) {
  if (v.kind == Value::Kind::ns) render_error("a namespace cannot be stored in a dict or namespace (unsupported)");
  depth = std::max(depth, 1 + v.depth());
  if (depth > kMaxValueDepth) render_error("lists/dicts nested too deeply");
  auto it = index.find(key);
  if (it != index.end()) {
    items[it->second].second = std::move(v);
    return;
  }
  index.emplace(key, items.size());
  items.emplace_back(key, std::move(v));
}

static Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth) render_error("JSON data nested too deeply");
  using J = nlohmann::ordered_json;
  switch (j.type()) {
    case J::value_t::null: return Value::none();
    case J::value_t::boolean: return Value::boolean(j.get<bool>());
    case J::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case J::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      return u > uint64_t(INT64_MAX) ? Value::floating(double(u)) : Value::integer(int64_t(u));
    }
    case J::value_t::number_float: return Value::floating(j.get<double>());
    case J::value_t::string: return Value::string(j.get<std::string>());
    case J::value_t::array: {
      List items;
      for (auto& x : j) items.push_back(from_json_at(x, depth + 1));
      return Value::make_list(std::move(items));
    }
    case J::value_t::object: {
      Dict d;
      for (auto& [k, x] : j.items()) d.set(k, from_json_at(x, depth + 1));
      return Value::make_dict(std::move(d));
    }
    default: render_error("unsupported JSON value");
  }
}

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

size_t size_hint(const Value& v) {
  if (v.kind == Value::Kind::string) return v.s->size();
  if (v.kind == Value::Kind::list) return v.list->size();
  if (v.kind == Value::Kind::dict || v.kind == Value::Kind::ns) return v.dict->items.size();
  return 0;
}

static void check_built(const std::string& s) {
  if (s.size() > kMaxBuiltString)
    render_error("string too long (over " + std::to_string(kMaxBuiltString >> 20) + " MiB)");
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined:
    case Value::Kind::none: return false;
    case Value::Kind::boolean: return v.b;
    case Value::Kind::integer: return v.i != 0;
    case Value::Kind::floating: return v.f != 0;
    case Value::Kind::string: return !v.s->empty();
    case Value::Kind::list: return !v.list->empty();
    case Value::Kind::dict: return !v.dict->items.empty();
    case Value::Kind::ns:
    case Value::Kind::callable: return true;
  }
  return false;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "Undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return "dict";
    case Value::Kind::ns: return "Namespace";
    case Value::Kind::callable: return "function";
  }
  return "?";
}

void undefined_error(const Value& v) {
  render_error(v.undefined_hint.empty() ? std::string("undefined value") : v.undefined_hint);
}

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // [-]d[.ddd]e[+-]XX, shortest round trip
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exp = std::atoi(sci.c_str() + e + 1);
  std::string digits;
  for (size_t k = 0; k < e; k++)
    if (sci[k] != '.') digits += sci[k];
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {  // repr's fixed notation for 1e-4 <= |d| < 1e16
    if (exp < 0) return out + "0." + std::string(-exp - 1, '0') + digits;
    std::string ip = digits.substr(0, std::min<size_t>(digits.size(), exp + 1));
    while (ip.size() < size_t(exp + 1)) ip += '0';
    std::string fp = digits.size() > size_t(exp + 1) ? digits.substr(exp + 1) : "0";
    return out + ip + "." + fp;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + eb;
}

std::string py_repr(const Value& v) {
  if (v.kind != Value::Kind::string) return py_str(v);
  const std::string& s = *v.s;
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    uint32_t cp = utf8_next(s, i);
    char buf[8];
    if (cp == '\\' || cp == uint32_t(q)) {
      out += '\\';
      out += char(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else {
      out.append(s, start, i - start);
    }
  }
  return out + q;
}

std::string py_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return "";
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return v.b ? "True" : "False";
    case Value::Kind::integer: return std::to_string(v.i);
    case Value::Kind::floating: return py_float(v.f);
    case Value::Kind::string: return *v.s;
    case Value::Kind::list: {
      std::string out = v.b ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); k++) {
        out += (k ? ", " : "") + py_repr((*v.list)[k]);
        check_built(out);
      }
      return out + (v.b ? (v.list->size() == 1 ? ",)" : ")") : "]");
    }
    case Value::Kind::dict:
    case Value::Kind::ns: {
      std::string out = v.kind == Value::Kind::ns ? "<Namespace {" : "{";
      bool first = true;
      for (auto& [k, x] : v.dict->items) {
        out += (first ? "" : ", ") + py_repr(Value::string(k)) + ": " + py_repr(x);
        first = false;
        check_built(out);
      }
      return out + (v.kind == Value::Kind::ns ? "}>" : "}");
    }
    case Value::Kind::callable: return "<function " + v.fn->name + ">";
  }
  return "";
}

namespace {

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

void json_value(std::string& out, const Value& v, const JsonStyle& st, int level) {
  int indent = st.indent;
  auto newline = [&](int lvl) {
    if (indent >= 0) {
      out += '\n';
      out.append(size_t(indent) * lvl, ' ');
    }
  };
  const std::string& item_sep = st.item_sep;
  switch (v.kind) {
    case Value::Kind::none: out += "null"; return;
    case Value::Kind::boolean: out += v.b ? "true" : "false"; return;
    case Value::Kind::integer: out += std::to_string(v.i); return;
    case Value::Kind::floating:
      out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f < 0 ? "-Infinity" : "Infinity") : py_float(v.f);
      return;
    case Value::Kind::string: json_string(out, *v.s); return;
    case Value::Kind::list:
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); k++) {
        if (k) out += item_sep;
        newline(level + 1);
        json_value(out, (*v.list)[k], st, level + 1);
        check_built(out);
      }
      newline(level);
      out += ']';
      return;
    case Value::Kind::dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (auto& kv : v.dict->items) items.push_back(&kv);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t k = 0; k < items.size(); k++) {
        if (k) out += item_sep;
        newline(level + 1);
        json_string(out, items[k]->first);
        out += st.key_sep;
        json_value(out, items[k]->second, st, level + 1);
        check_built(out);
      }
      newline(level);
      out += '}';
      return;
    }
    case Value::Kind::undefined: undefined_error(v);
    default: render_error("tojson: object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  json_value(out, v, style, 0);
  return out;
}

static bool numeric(const Value& v) { return v.is_number(); }
static double as_double(const Value& v) {
  return v.kind == Value::Kind::floating ? v.f : v.kind == Value::Kind::boolean ? double(v.b) : double(v.i);
}
static bool is_int_like(const Value& v) { return v.kind == Value::Kind::integer || v.kind == Value::Kind::boolean; }
static int64_t as_int(const Value& v) { return v.kind == Value::Kind::boolean ? int64_t(v.b) : v.i; }

bool py_eq(const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (is_int_like(a) && is_int_like(b)) return as_int(a) == as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return *a.s == *b.s;
    case Value::Kind::list:
      if (a.b != b.b || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); k++)
        if (!py_eq((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Value::Kind::dict:
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (auto& [k, x] : a.dict->items) {
        const Value* y = b.dict->find(k);
        if (!y || !py_eq(x, *y)) return false;
      }
      return true;
    case Value::Kind::ns: return a.dict == b.dict;
    case Value::Kind::callable: return a.fn == b.fn;
    default: return false;
  }
}

int py_compare(const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (is_int_like(a) && is_int_like(b)) return as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b);
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y;
  }
  if (a.kind == Value::Kind::string && b.kind == Value::Kind::string) return a.s->compare(*b.s) < 0 ? -1 : *a.s != *b.s;
  if (a.kind == Value::Kind::list && b.kind == Value::Kind::list) {
    for (size_t k = 0; k < a.list->size() && k < b.list->size(); k++) {
      if (py_eq((*a.list)[k], (*b.list)[k])) continue;
      return py_compare((*a.list)[k], (*b.list)[k]);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size();
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  render_error("cannot compare " + type_name(a) + " with " + type_name(b));
}

List iterate(Evaluator& ev, const Value& v) {
  ev.charge(size_hint(v) * sizeof(Value));  // the items are copied (a string's: one per byte at most)
  switch (v.kind) {
    case Value::Kind::undefined: return {};
    case Value::Kind::list: return *v.list;
    case Value::Kind::dict: {
      List keys;
      for (auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Kind::string: {
      List chars;
      for (auto c : utf8_chars(*v.s)) chars.push_back(Value::string(std::string(c)));
      return chars;
    }
    default: render_error("'" + type_name(v) + "' object is not iterable");
  }
}

}  // namespace mindllm::sft::jinja
