// Jinja built-ins: the filters, tests and globals of jinja2 that chat templates use, transformers' tojson
// and the Python methods of str and dict they call (`content.strip()`, `message.get('x')`).
// Case mapping (upper, lower, title, capitalize) is ASCII-only.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "sft/jinja_eval.h"

namespace mindllm::sft::jinja {

namespace {

// The argument at position `pos` or keyword `kw`; null when neither was given.
const Value* arg(const Args& a, size_t pos, const char* kw) {
  if (pos < a.pos.size()) return &a.pos[pos];
  for (auto& [k, v] : a.kw)
    if (k == kw) return &v;
  return nullptr;
}

const std::string& need_string(const Value& v, const std::string& what) {
  if (v.is_undefined()) undefined_error(v);
  if (!v.is_string()) render_error(what + " needs a string, not " + type_name(v));
  return *v.s;
}

int64_t need_int(const Value* v, int64_t dflt, const std::string& what) {
  if (!v || v->kind == Value::Kind::none) return dflt;
  if (v->kind == Value::Kind::integer) return v->i;
  if (v->kind == Value::Kind::boolean) return v->b;
  render_error(what + " needs an integer, not " + type_name(*v));
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

std::string capitalize(const std::string& s) {
  std::string out = ascii_map(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(std::toupper(out[0]));
  return out;
}

// jinja2's title filter: words begin after runs of whitespace, '-', '(', '{', '[' or '<'; each
// word's first character upper-cased, the rest lower-cased.
std::string title_filter(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    bool sep = std::isspace(u) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (u < 0x80 && !sep) c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
    start = sep;
  }
  return out;
}

// Python's str.title(): a letter after a non-letter starts a word.
std::string title(const std::string& s) {
  std::string out = s;
  bool prev_alpha = false;
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    bool alpha = u < 0x80 && std::isalpha(u);
    if (alpha) c = static_cast<char>(prev_alpha ? std::tolower(u) : std::toupper(u));
    prev_alpha = alpha || u >= 0x80;
  }
  return out;
}

// str.strip/lstrip/rstrip: Python whitespace, or the code points of `chars`.
std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> set;
  bool by_set = chars && chars->kind != Value::Kind::none;
  if (by_set) {
    const std::string& c = need_string(*chars, "strip()");
    for (size_t i = 0; i < c.size();) set.push_back(utf8_next(c, i));
  }
  auto strippable = [&](uint32_t cp) {
    return by_set ? std::find(set.begin(), set.end(), cp) != set.end() : is_py_space(cp);
  };
  auto chars_v = utf8_chars(s);
  size_t b = 0, e = chars_v.size();
  auto cp_of = [&](size_t k) {
    size_t i = 0;
    return utf8_next(chars_v[k], i);
  };
  if (left)
    while (b < e && strippable(cp_of(b))) b++;
  if (right)
    while (e > b && strippable(cp_of(e - 1))) e--;
  size_t start = 0;
  for (size_t k = 0; k < b; k++) start += chars_v[k].size();
  size_t len = 0;
  for (size_t k = b; k < e; k++) len += chars_v[k].size();
  return s.substr(start, len);
}

// str.split / str.rsplit (sep None: runs of whitespace).
List split(Evaluator& ev, const std::string& s, const Value* sep_v, int64_t maxsplit, bool from_right) {
  List out;
  if (sep_v && sep_v->kind != Value::Kind::none) {
    const std::string& sep = need_string(*sep_v, "split()");
    if (sep.empty()) render_error("split(): empty separator");
    std::vector<std::string> parts;
    if (!from_right) {
      size_t pos = 0;
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; n++) {
        size_t f = s.find(sep, pos);
        if (f == std::string::npos) break;
        parts.push_back(s.substr(pos, f - pos));
        pos = f + sep.size();
      }
      parts.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; n++) {
        if (end < sep.size()) break;
        size_t f = s.rfind(sep, end - sep.size());
        if (f == std::string::npos) break;
        parts.push_back(s.substr(f + sep.size(), end - f - sep.size()));
        end = f;
      }
      parts.push_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    for (auto& p : parts) out.push_back(ev.make_string(std::move(p)));
    return out;
  }
  // Whitespace runs; leading/trailing whitespace gives no empty parts.
  auto chars = utf8_chars(s);
  auto space = [&](size_t k) {
    size_t i = 0;
    return is_py_space(utf8_next(chars[k], i));
  };
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) in chars
  for (size_t k = 0; k < chars.size();) {
    if (space(k)) {
      k++;
      continue;
    }
    size_t b = k;
    while (k < chars.size() && !space(k)) k++;
    words.emplace_back(b, k);
  }
  auto text = [&](size_t b, size_t e) {
    std::string t;
    for (size_t k = b; k < e; k++) t += chars[k];
    return t;
  };
  size_t n = words.size();
  if (maxsplit >= 0 && n > size_t(maxsplit) + 1) {
    if (!from_right) {
      size_t e = chars.size();
      while (e > 0 && space(e - 1)) e--;
      for (size_t k = 0; k < size_t(maxsplit); k++)
        out.push_back(ev.make_string(text(words[k].first, words[k].second)));
      out.push_back(ev.make_string(text(words[maxsplit].first, e)));
    } else {
      size_t b = 0;
      while (b < chars.size() && space(b)) b++;
      out.push_back(ev.make_string(text(b, words[n - maxsplit - 1].second)));
      for (size_t k = n - maxsplit; k < n; k++) out.push_back(ev.make_string(text(words[k].first, words[k].second)));
    }
    return out;
  }
  for (auto& [b, e] : words) out.push_back(ev.make_string(text(b, e)));
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count, size_t limit) {
  std::string out;
  auto check = [&] {
    if (out.size() > limit) render_error("replace(): result too long");
  };
  if (from.empty()) {
    auto chars = utf8_chars(s);
    int64_t n = 0;
    for (size_t k = 0; k <= chars.size(); k++) {
      if (count < 0 || n < count) {
        out += to;
        n++;
      }
      if (k < chars.size()) out += chars[k];
      check();
    }
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; n++) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    check();
    pos = f + from.size();
  }
  out.append(s, pos);
  return out;
}

// The attribute (dotted path, or item index) of a value, as jinja2's attribute= arguments.
Value get_attribute(const Value& v, const std::string& path) {
  Value cur = v;
  size_t b = 0;
  while (b <= path.size()) {
    size_t e = path.find('.', b);
    if (e == std::string::npos) e = path.size();
    std::string part = path.substr(b, e - b);
    if (cur.kind == Value::Kind::dict || cur.kind == Value::Kind::ns) {
      const Value* x = cur.dict->find(part);
      cur = x ? *x : Value::undefined("'dict object' has no attribute '" + part + "'");
    } else if (cur.kind == Value::Kind::list && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) &&
               part.size() < 10) {
      size_t i = std::stoul(part);
      cur = i < cur.list->size() ? (*cur.list)[i] : Value::undefined("no element " + part);
    } else if (cur.is_undefined()) {
      undefined_error(cur);
    } else {
      std::string hint = "'";
      hint.append(type_name(cur)).append(" object' has no attribute '").append(part).append("'");
      cur = Value::undefined(std::move(hint));
    }
    b = e + 1;
  }
  return cur;
}

Value length_of(const Value& v) {
  switch (v.kind) {
    case Value::Kind::undefined: return Value::integer(0);
    case Value::Kind::string: return Value::integer(int64_t(utf8_chars(*v.s).size()));
    case Value::Kind::list: return Value::integer(int64_t(v.list->size()));
    case Value::Kind::dict: return Value::integer(int64_t(v.dict->items.size()));
    default: render_error("object of type '" + type_name(v) + "' has no len()");
  }
}

// select/reject/selectattr/rejectattr: keep the items whose test (args from `first`) is `want`.
Value select_items(Evaluator& ev, const Value& seq, Args& a, bool by_attr, bool want) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.pos.empty()) render_error("selectattr/rejectattr need an attribute name");
    attr = need_string(a.pos[0], "selectattr()");
    first = 1;
  }
  std::string test;
  if (a.pos.size() > first) test = need_string(a.pos[first], "select()");
  Args targs;
  targs.pos.assign(a.pos.begin() + std::min(a.pos.size(), first + 1), a.pos.end());
  List out;
  for (const Value& x : iterate(ev, seq)) {
    Value subject = by_attr ? get_attribute(x, attr) : x;
    bool ok = test.empty() ? truthy(subject) : apply_test(ev, test, subject, targs);
    if (ok == want) out.push_back(x);
  }
  return ev.make_list(std::move(out));
}

}  // namespace

Value apply_filter(Evaluator& ev, const std::string& name, const Value& v, Args& a) {
  ev.work(size_hint(v));
  if (name == "default" || name == "d") {
    const Value* dflt = arg(a, 0, "default_value");
    const Value* boolean = arg(a, 1, "boolean");
    bool use = v.is_undefined() || (boolean && truthy(*boolean) && !truthy(v));
    return use ? (dflt ? *dflt : ev.make_string("")) : v;
  }
  if (name == "length" || name == "count") return length_of(v);
  if (name == "string") return v.is_string() ? v : ev.make_string(py_str(v));
  if (name == "safe") return v;
  if (name == "tojson") {
    const Value* indent = arg(a, 0, "indent");
    const Value* separators = arg(a, 2, "separators");
    const Value* sort_keys = arg(a, 3, "sort_keys");
    int64_t ind = need_int(indent, -1, "tojson(indent=...)");
    if (ind > 64) render_error("tojson(indent=...) too large");
    JsonStyle style{int(ind), ind >= 0 ? "," : ", ", ": ", sort_keys && truthy(*sort_keys)};
    if (separators && separators->kind != Value::Kind::none) {
      if (separators->kind != Value::Kind::list || separators->list->size() != 2)
        render_error("tojson(separators=...) needs two strings");
      style.item_sep = need_string((*separators->list)[0], "tojson(separators=...)");
      style.key_sep = need_string((*separators->list)[1], "tojson(separators=...)");
    }
    return ev.make_string(to_json(v, style));
  }
  if (name == "items") {
    if (v.is_undefined()) return ev.make_list({});
    if (v.kind != Value::Kind::dict) render_error("items filter needs a mapping, not " + type_name(v));
    List out;
    for (auto& [k, x] : v.dict->items) out.push_back(ev.make_list({ev.make_string(k), x}, true));
    return ev.make_list(std::move(out));
  }
  if (name == "list") return v.kind == Value::Kind::list ? v : ev.make_list(iterate(ev, v));
  if (name == "first" || name == "last") {
    List items = iterate(ev, v);
    if (items.empty()) return Value::undefined("no " + name + " item, sequence was empty");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto chars = utf8_chars(*v.s);
      std::string out;
      for (size_t k = chars.size(); k-- > 0;) out += chars[k];
      return ev.make_string(std::move(out));
    }
    List items = iterate(ev, v);
    std::reverse(items.begin(), items.end());
    return ev.make_list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    std::string s = sep ? py_str(*sep) : "", out;
    bool first = true;
    for (const Value& x : iterate(ev, v)) {
      out += first ? "" : s;
      out += py_str(attr ? get_attribute(x, py_str(*attr)) : x);
      first = false;
      if (out.size() > kMaxBuiltString) render_error("join(): result too long");
    }
    return ev.make_string(std::move(out));
  }
  if (name == "map") {
    const Value* attr = arg(a, 99, "attribute");
    List out;
    if (attr) {
      const Value* dflt = arg(a, 99, "default");
      for (const Value& x : iterate(ev, v)) {
        Value y = get_attribute(x, py_str(*attr));
        out.push_back(y.is_undefined() && dflt ? *dflt : y);
      }
    } else {
      if (a.pos.empty()) render_error("map needs a filter name or attribute=");
      std::string f = need_string(a.pos[0], "map()");
      Args fargs;
      fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
      fargs.kw = a.kw;
      for (const Value& x : iterate(ev, v)) out.push_back(apply_filter(ev, f, x, fargs));
    }
    return ev.make_list(std::move(out));
  }
  if (name == "select" || name == "reject") return select_items(ev, v, a, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select_items(ev, v, a, true, name == "selectattr");
  if (name == "unique") {
    List out;
    for (const Value& x : iterate(ev, v))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return py_eq(x, y); })) out.push_back(x);
    return ev.make_list(std::move(out));
  }
  if (name == "int" || name == "float") {
    const Value* dflt = arg(a, 0, "default");
    Value fallback = dflt ? *dflt : (name == "int" ? Value::integer(0) : Value::floating(0));
    double d;
    if (v.is_number()) d = v.kind == Value::Kind::floating ? v.f : double(v.kind == Value::Kind::boolean ? v.b : v.i);
    else if (v.is_string()) {
      std::string t = strip(*v.s, nullptr, true, true);
      char* end = nullptr;
      if (name == "int") {
        errno = 0;
        long long i = std::strtoll(t.c_str(), &end, 10);
        if (!t.empty() && *end == 0 && errno == 0) return Value::integer(i);
      }
      d = std::strtod(t.c_str(), &end);
      if (t.empty() || *end != 0) return fallback;
    } else {
      return fallback;
    }
    if (name == "float") return Value::floating(d);
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(int64_t(d));
  }
  if (name == "abs") {
    if (v.kind == Value::Kind::floating) return Value::floating(std::fabs(v.f));
    if (v.kind == Value::Kind::integer && v.i != INT64_MIN) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.kind == Value::Kind::boolean) return Value::integer(v.b);
    render_error("abs needs a number, not " + type_name(v));
  }
  if (name == "escape" || name == "e" || name == "forceescape") {
    std::string out;
    for (char c : py_str(v)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return ev.make_string(std::move(out));
  }
  // String filters.
  if (name == "trim" || name == "upper" || name == "lower" || name == "capitalize" || name == "title" ||
      name == "replace") {
    std::string s = py_str(v);
    if (name == "trim") return ev.make_string(strip(s, arg(a, 0, "chars"), true, true));
    if (name == "upper") return ev.make_string(ascii_map(s, [](int c) { return std::toupper(c); }));
    if (name == "lower") return ev.make_string(ascii_map(s, [](int c) { return std::tolower(c); }));
    if (name == "capitalize") return ev.make_string(capitalize(s));
    if (name == "title") return ev.make_string(title_filter(s));
    const Value* from = arg(a, 0, "old");
    const Value* to = arg(a, 1, "new");
    if (!from || !to) render_error("replace needs two arguments");
    return ev.make_string(
        replace(s, py_str(*from), py_str(*to), need_int(arg(a, 2, "count"), -1, "replace()"), kMaxBuiltString));
  }
  render_error("unsupported filter '" + name + "'");
}

bool apply_test(Evaluator& ev, const std::string& name, const Value& v, Args& a) {
  using K = Value::Kind;
  ev.work(size_hint(v) + (a.pos.empty() ? 0 : size_hint(a.pos[0])));
  const Value* other = arg(a, 0, "value");
  auto need_other = [&]() -> const Value& {
    if (!other) render_error("test '" + name + "' needs an argument");
    return *other;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == K::none;
  if (name == "string") return v.kind == K::string;
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == K::integer;
  if (name == "float") return v.kind == K::floating;
  if (name == "boolean") return v.kind == K::boolean;
  if (name == "true") return v.kind == K::boolean && v.b;
  if (name == "false") return v.kind == K::boolean && !v.b;
  if (name == "mapping") return v.kind == K::dict;
  if (name == "iterable")
    return v.kind == K::list || v.kind == K::dict || v.kind == K::string || v.kind == K::undefined;
  if (name == "sequence")
    return v.kind == K::list || v.kind == K::dict || v.kind == K::string || v.kind == K::undefined;
  if (name == "callable") return v.kind == K::callable;
  if (name == "odd" || name == "even") {
    if (v.kind != K::integer && v.kind != K::boolean) render_error("test '" + name + "' needs an integer");
    int64_t i = v.kind == K::boolean ? v.b : v.i;
    return (i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t d = need_int(&need_other(), 0, "divisibleby");
    if (d == 0) render_error("divisibleby(0)");
    int64_t i = need_int(&v, 0, "divisibleby");
    return d == -1 || i % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return py_eq(v, need_other());
  if (name == "ne" || name == "!=") return !py_eq(v, need_other());
  if (name == "lt" || name == "lessthan" || name == "<") return py_compare(v, need_other()) < 0;
  if (name == "le" || name == "<=") return py_compare(v, need_other()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return py_compare(v, need_other()) > 0;
  if (name == "ge" || name == ">=") return py_compare(v, need_other()) >= 0;
  if (name == "sameas") {
    const Value& o = need_other();
    if (v.kind != o.kind) return false;
    if (v.kind == K::none || v.kind == K::undefined) return true;
    if (v.kind == K::boolean) return v.b == o.b;
    return py_eq(v, o) && (v.kind != K::list || v.list == o.list) && (v.kind != K::dict || v.dict == o.dict);
  }
  if (name == "in") {
    const Value& o = need_other();
    if (o.kind == K::string) return v.is_string() && o.s->find(*v.s) != std::string::npos;
    if (o.kind == K::dict) return v.is_string() && o.dict->find(*v.s);
    for (const Value& x : iterate(ev, o))
      if (py_eq(v, x)) return true;
    return false;
  }
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    bool any = false;
    for (unsigned char c : *v.s) {
      if (!std::isalpha(c)) continue;
      any = true;
      if ((name == "lower") != (std::islower(c) != 0)) return false;
    }
    return any;
  }
  render_error("unsupported test '" + name + "'");
}

bool call_method(Evaluator& ev, const Value& obj, const std::string& name, Args& a, Value* out) {
  ev.work(size_hint(obj));
  if (obj.kind == Value::Kind::dict) {
    if (name == "get") {
      const Value* key = arg(a, 0, "key");
      if (!key) render_error("get() needs a key");
      const Value* found = key->is_string() ? obj.dict->find(*key->s) : nullptr;
      const Value* dflt = arg(a, 1, "default");
      *out = found ? *found : dflt ? *dflt : Value::none();
      return true;
    }
    if (name == "items" || name == "keys" || name == "values") {
      List items;
      for (auto& [k, x] : obj.dict->items) {
        if (name == "items") items.push_back(ev.make_list({ev.make_string(k), x}, true));
        else if (name == "keys") items.push_back(ev.make_string(k));
        else items.push_back(x);
      }
      *out = ev.make_list(std::move(items));
      return true;
    }
    return false;
  }
  if (obj.kind == Value::Kind::list) return false;
  const std::string& s = *obj.s;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    *out = ev.make_string(strip(s, arg(a, 0, "chars"), name != "rstrip", name != "lstrip"));
    return true;
  }
  if (name == "split" || name == "rsplit") {
    *out = ev.make_list(
        split(ev, s, arg(a, 0, "sep"), need_int(arg(a, 1, "maxsplit"), -1, name + "()"), name == "rsplit"));
    return true;
  }
  if (name == "startswith" || name == "endswith") {
    const Value* x = arg(a, 0, "prefix");
    if (!x) render_error(name + "() needs an argument");
    List options = x->kind == Value::Kind::list ? *x->list : List{*x};
    bool found = false;
    for (const Value& o : options) {
      const std::string& p = need_string(o, name + "()");
      found |= p.size() <= s.size() && (name == "startswith" ? s.compare(0, p.size(), p) == 0
                                                             : s.compare(s.size() - p.size(), p.size(), p) == 0);
    }
    *out = Value::boolean(found);
    return true;
  }
  if (name == "title") {
    *out = ev.make_string(title(s));
    return true;
  }
  if (name == "upper" || name == "lower" || name == "capitalize") {
    *out = apply_filter(ev, name, obj, a);
    return true;
  }
  if (name == "replace") {
    if (a.pos.size() < 2) render_error("replace() needs two arguments");
    *out = ev.make_string(replace(s, need_string(a.pos[0], "replace()"), need_string(a.pos[1], "replace()"),
                                  need_int(arg(a, 2, "count"), -1, "replace()"), kMaxBuiltString));
    return true;
  }
  if (name == "find" || name == "count") {
    const std::string& sub = need_string(a.pos.empty() ? Value() : a.pos[0], name + "()");
    if (name == "find") {
      size_t f = s.find(sub);
      *out = Value::integer(f == std::string::npos ? -1 : int64_t(utf8_chars(std::string_view(s).substr(0, f)).size()));
    } else {
      int64_t n = 0;
      if (sub.empty()) n = int64_t(utf8_chars(s).size()) + 1;
      else
        for (size_t f = s.find(sub); f != std::string::npos; f = s.find(sub, f + sub.size())) n++;
      *out = Value::integer(n);
    }
    return true;
  }
  if (name == "join") {
    std::string r;
    bool first = true;
    for (const Value& x : iterate(ev, a.pos.empty() ? Value() : a.pos[0])) {
      r += first ? "" : s;
      r += need_string(x, "join()");
      first = false;
      if (r.size() > kMaxBuiltString) render_error("join(): result too long");
    }
    *out = ev.make_string(std::move(r));
    return true;
  }
  if (name == "format") {  // "{}", "{0}", "{name}" without format specs
    std::string r;
    size_t next_pos = 0;
    for (size_t i = 0; i < s.size(); i++) {
      if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') {
        r += '{';
        i++;
        continue;
      }
      if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') {
        r += '}';
        i++;
        continue;
      }
      if (s[i] != '{') {
        r += s[i];
        continue;
      }
      size_t close = s.find('}', i);
      if (close == std::string::npos) render_error("format(): single '{'");
      std::string field = s.substr(i + 1, close - i - 1);
      const Value* v = nullptr;
      if (field.empty()) v = next_pos < a.pos.size() ? &a.pos[next_pos++] : nullptr;
      else if (std::all_of(field.begin(), field.end(), ::isdigit) && field.size() < 6) {
        size_t k = std::stoul(field);
        v = k < a.pos.size() ? &a.pos[k] : nullptr;
      } else {
        for (auto& [kw, x] : a.kw)
          if (kw == field) v = &x;
      }
      if (!v) render_error("format(): no argument for '{" + field + "}'");
      r += py_str(*v);
      if (r.size() > kMaxBuiltString) render_error("format(): result too long");
      i = close;
    }
    *out = ev.make_string(std::move(r));
    return true;
  }
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
    bool ok = !s.empty();
    for (size_t i = 0; i < s.size() && ok;) {
      uint32_t cp = utf8_next(s, i);
      if (name == "isspace") ok = is_py_space(cp);
      else if (cp >= 0x80) ok = name != "isdigit";
      else if (name == "isdigit") ok = std::isdigit(int(cp));
      else if (name == "isalpha") ok = std::isalpha(int(cp));
      else ok = std::isalnum(int(cp));
    }
    *out = Value::boolean(ok);
    return true;
  }
  return false;
}

// Built once; the callables hold no state, so renders on several threads share them.
const std::unordered_map<std::string, Value>& builtin_globals() {
  static const std::unordered_map<std::string, Value> globals = [] {
    std::unordered_map<std::string, Value> g;
    auto fn = [](std::string n, std::function<Value(Evaluator&, Args&)> f) {
      Value v;
      v.kind = Value::Kind::callable;
      v.fn = std::make_shared<const Callable>(Callable{std::move(n), std::move(f)});
      return v;
    };
    g["raise_exception"] = fn("raise_exception", [](Evaluator&, Args& a) -> Value {
      std::string msg = a.pos.empty() ? std::string() : py_str(a.pos[0]);
      render_error("raise_exception: " + msg);
    });
    g["range"] = fn("range", [](Evaluator& ev, Args& a) -> Value {
      int64_t r[3] = {0, 0, 1};
      if (a.pos.empty() || a.pos.size() > 3 || !a.kw.empty()) render_error("range() takes 1 to 3 integer arguments");
      for (size_t k = 0; k < a.pos.size(); k++)
        if (a.pos[k].kind != Value::Kind::integer && a.pos[k].kind != Value::Kind::boolean)
          render_error("range() arguments must be integers, not " + type_name(a.pos[k]));
      auto as_i = [](const Value& v) { return v.kind == Value::Kind::boolean ? int64_t(v.b) : v.i; };
      if (a.pos.size() == 1) r[1] = as_i(a.pos[0]);
      else
        for (size_t k = 0; k < a.pos.size(); k++) r[k] = as_i(a.pos[k]);
      if (r[2] == 0) render_error("range() step must not be zero");
      __int128 n = r[2] > 0 ? (__int128(r[1]) - r[0] + r[2] - 1) / r[2] : (__int128(r[0]) - r[1] - r[2] - 1) / -r[2];
      if (n < 0) n = 0;
      ev.charge(size_t(std::min<__int128>(n, __int128(1) << 40)) * sizeof(Value));
      List items;
      for (__int128 k = 0; k < n; k++) items.push_back(Value::integer(int64_t(r[0] + k * r[2])));
      return ev.make_list(std::move(items));
    });
    g["namespace"] = fn("namespace", [](Evaluator&, Args& a) -> Value {
      Value v;
      v.kind = Value::Kind::ns;
      v.dict = std::make_shared<Dict>();
      for (auto& p : a.pos) {
        if (p.kind != Value::Kind::dict) render_error("namespace() takes a dict or keyword arguments");
        for (auto& [k, x] : p.dict->items) v.dict->set(k, x);
      }
      for (auto& [k, x] : a.kw) v.dict->set(k, x);
      return v;
    });
    g["dict"] = fn("dict", [](Evaluator& ev, Args& a) -> Value {
      Dict d;
      for (auto& p : a.pos) {
        if (p.kind != Value::Kind::dict) render_error("dict() takes a dict or keyword arguments");
        for (auto& [k, x] : p.dict->items) d.set(k, x);
      }
      for (auto& [k, x] : a.kw) d.set(k, x);
      return ev.make_dict(std::move(d));
    });
    g["strftime_now"] = fn("strftime_now", [](Evaluator& ev, Args& a) -> Value {
      if (a.pos.size() != 1 || !a.pos[0].is_string()) render_error("strftime_now() takes one format string");
      std::time_t t = std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[256];
      size_t n = std::strftime(buf, sizeof buf, a.pos[0].str().c_str(), &tm);
      return ev.make_string(std::string(buf, n));
    });
    return g;
  }();
  return globals;
}

}  // namespace mindllm::sft::jinja
