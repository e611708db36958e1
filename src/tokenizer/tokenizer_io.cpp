// Tokenizer files: Hugging Face tokenizer.json (read and write) and GPT-2 style vocab.json +
// merges.txt (+ added_tokens.json, special_tokens_map.json). Every field a user's file gives is
// checked; anything wrong or unsupported is bad_input naming the file and the field.
#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer_impl.h"

namespace mindllm {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxId = 1u << 26;

[[noreturn]] void fail(const std::string& where, const std::string& field, const std::string& what) {
  bad_input(where + ": " + field + ": " + what);
}

std::string type_name(const json& v) { return v.type_name(); }

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool get_bool(const json& obj, const char* key, bool def, const std::string& where, const std::string& ctx) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) return def;
  if (!v->is_boolean()) fail(where, ctx + "." + key, "expected true or false, got " + type_name(*v));
  return v->get<bool>();
}

std::string get_string(const json& obj, const char* key, const std::string& where, const std::string& ctx,
                       bool required) {
  const json* v = member(obj, key);
  if (!v || v->is_null()) {
    if (required) fail(where, ctx + "." + key, "missing");
    return {};
  }
  if (!v->is_string()) fail(where, ctx + "." + key, "expected a string, got " + type_name(*v));
  return v->get<std::string>();
}

TokenId get_id(const json& v, const std::string& where, const std::string& ctx) {
  if (!v.is_number_integer()) fail(where, ctx, "expected a token id (non-negative integer), got " + type_name(v));
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u >= kMaxId) fail(where, ctx, "token id " + std::to_string(u) + " is too large");
    return static_cast<TokenId>(u);
  }
  int64_t i = v.get<int64_t>();
  if (i < 0 || static_cast<uint64_t>(i) >= kMaxId)
    fail(where, ctx, "token id " + std::to_string(i) + " is out of range");
  return static_cast<TokenId>(i);
}

void parse_normalizer(const json& n, std::vector<NormStep>& out, const std::string& where, const std::string& ctx,
                      int depth) {
  if (n.is_null()) return;
  if (!n.is_object()) fail(where, ctx, "expected an object or null, got " + type_name(n));
  if (depth > 8) fail(where, ctx, "nested too deeply");
  std::string type = get_string(n, "type", where, ctx, true);
  if (type == "NFC") out.push_back(NormStep::nfc);
  else if (type == "NFKC") out.push_back(NormStep::nfkc);
  else if (type == "NFD") out.push_back(NormStep::nfd);
  else if (type == "NFKD") out.push_back(NormStep::nfkd);
  else if (type == "Lowercase") out.push_back(NormStep::lowercase);
  else if (type == "Sequence") {
    const json* list = member(n, "normalizers");
    if (!list || !list->is_array()) fail(where, ctx + ".normalizers", "expected an array");
    for (size_t i = 0; i < list->size(); i++)
      parse_normalizer((*list)[i], out, where, ctx + ".normalizers[" + std::to_string(i) + "]", depth + 1);
  } else {
    fail(where, ctx + ".type",
         "normalizer '" + type + "' is not supported (NFC, NFKC, NFD, NFKD, Lowercase, Sequence are)");
  }
}

void parse_pre_tokenizer(const json& p, std::vector<PreStep>& out, const std::string& where, const std::string& ctx,
                         int depth) {
  if (p.is_null()) return;
  if (!p.is_object()) fail(where, ctx, "expected an object or null, got " + type_name(p));
  if (depth > 8) fail(where, ctx, "nested too deeply");
  std::string type = get_string(p, "type", where, ctx, true);
  bool after_bl = false;
  for (auto& st : out) after_bl |= st.kind == PreStep::byte_level;
  PreStep st;
  st.after_byte_level = after_bl;
  if (type == "ByteLevel") {
    if (after_bl) fail(where, ctx, "two ByteLevel pre-tokenizers are not supported");
    st.kind = PreStep::byte_level;
    st.add_prefix_space = get_bool(p, "add_prefix_space", true, where, ctx);
    st.use_regex = get_bool(p, "use_regex", true, where, ctx);
    out.push_back(st);
  } else if (type == "Split") {
    if (after_bl) fail(where, ctx, "a Split after ByteLevel is not supported");
    const json* pat = member(p, "pattern");
    if (!pat || !pat->is_object()) fail(where, ctx + ".pattern", "expected {\"Regex\": ...}");
    std::string regex = get_string(*pat, "Regex", where, ctx + ".pattern", false);
    if (regex.empty()) fail(where, ctx + ".pattern", "only non-empty Regex patterns are supported");
    // The known patterns have hand-written scanners (fast); any other runs on PCRE2.
    auto kind = split_pattern_from_regex(regex);
    if (kind) st.pattern = *kind;
    else st.regex = std::make_shared<const Regex>(compile_split_regex(regex, where + ": " + ctx + ".pattern.Regex"));
    std::string behavior = get_string(p, "behavior", where, ctx, false);
    if (!behavior.empty() && behavior != "Isolated")
      fail(where, ctx + ".behavior", "'" + behavior + "' is not supported (Isolated is)");
    if (get_bool(p, "invert", false, where, ctx)) fail(where, ctx + ".invert", "invert=true is not supported");
    st.kind = PreStep::split;
    out.push_back(st);
  } else if (type == "Digits") {
    st.kind = PreStep::digits;
    st.individual_digits = get_bool(p, "individual_digits", false, where, ctx);
    out.push_back(st);
  } else if (type == "Sequence") {
    const json* list = member(p, "pretokenizers");
    if (!list || !list->is_array()) fail(where, ctx + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list->size(); i++)
      parse_pre_tokenizer((*list)[i], out, where, ctx + ".pretokenizers[" + std::to_string(i) + "]", depth + 1);
  } else {
    fail(where, ctx + ".type",
         "pre-tokenizer '" + type + "' is not supported (ByteLevel, Split, Digits, Sequence are)");
  }
}

void check_sparse(uint64_t max_id, size_t count, const std::string& where) {
  if (max_id + 1 > 4 * count + 1024)
    bad_input(where + ": token ids go up to " + std::to_string(max_id) + " but there are only " +
              std::to_string(count) + " tokens; the vocabulary is too sparse");
}

void check_sparse_ids(const TokenizerImpl& t, const std::string& where) {
  size_t count = 0;
  for (bool b : t.model.present) count += b;
  count += t.added.size();
  size_t max_id = t.model.size();
  for (auto& a : t.added) max_id = std::max<size_t>(max_id, a.id + 1);
  if (max_id > 4 * count + 1024)
    bad_input(where + ": token ids go up to " + std::to_string(max_id - 1) + " but there are only " +
              std::to_string(count) + " tokens; the vocabulary is too sparse");
}

}  // namespace

std::shared_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view text, const std::string& where) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) { bad_input(where + ": not valid JSON (" + e.what() + ")"); }
  if (!doc.is_object()) bad_input(where + ": expected a JSON object at the top level, got " + type_name(doc));
  auto t = std::make_shared<TokenizerImpl>();
  const json* model = member(doc, "model");
  if (!model || !model->is_object()) bad_input(where + ": model: missing or not an object");
  std::string type = get_string(*model, "type", where, "model", false);
  if (!type.empty() && type != "BPE")
    fail(where, "model.type", "model type '" + type + "' is not supported (byte-level BPE only)");
  const json* vocab = member(*model, "vocab");
  if (!vocab || !vocab->is_object()) fail(where, "model.vocab", "missing or not an object");
  const json* merges = member(*model, "merges");
  if (!merges || !merges->is_array()) fail(where, "model.merges", "missing or not an array");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string v = get_string(*model, k, where, "model", false);
    if (!v.empty()) fail(where, std::string("model.") + k, "a non-empty value is not supported for byte-level BPE");
  }
  BpeModel& m = t->model;
  uint64_t max_id = 0;
  for (auto it = vocab->begin(); it != vocab->end(); ++it)
    max_id = std::max<uint64_t>(max_id, get_id(it.value(), where, "model.vocab[\"" + it.key() + "\"]"));
  check_sparse(max_id, vocab->size(), where);
  m.tokens.reserve(max_id + 1);
  for (auto it = vocab->begin(); it != vocab->end(); ++it)
    m.add_token(it.key(), get_id(it.value(), where, "model.vocab[\"" + it.key() + "\"]"), where);
  m.merge_map.reserve(merges->size());
  m.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); i++) {
    const json& mg = (*merges)[i];
    std::string ctx = "model.merges[" + std::to_string(i) + "]";
    if (mg.is_string()) {
      const std::string& s = mg.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
        fail(where, ctx, "expected \"left right\", got \"" + s + "\"");
      m.add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1), where);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      m.add_merge(mg[0].get_ref<const std::string&>(), mg[1].get_ref<const std::string&>(), where);
    } else {
      fail(where, ctx, "expected \"left right\" or [\"left\", \"right\"], got " + type_name(mg));
    }
  }
  m.unk_token = get_string(*model, "unk_token", where, "model", false);
  m.fuse_unk = get_bool(*model, "fuse_unk", false, where, "model");
  m.byte_fallback = get_bool(*model, "byte_fallback", false, where, "model");
  m.ignore_merges = get_bool(*model, "ignore_merges", false, where, "model");
  if (const json* d = member(*model, "dropout"); d && !d->is_null()) {
    if (!d->is_number()) fail(where, "model.dropout", "expected a number or null");
    m.dropout = d->get<double>();
  }
  if (const json* added = member(doc, "added_tokens"); added && !added->is_null()) {
    if (!added->is_array()) fail(where, "added_tokens", "expected an array, got " + type_name(*added));
    std::map<TokenId, size_t> seen;
    for (size_t i = 0; i < added->size(); i++) {
      const json& a = (*added)[i];
      std::string ctx = "added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object()) fail(where, ctx, "expected an object, got " + type_name(a));
      AddedToken tok;
      const json* id = member(a, "id");
      if (!id) fail(where, ctx + ".id", "missing");
      tok.id = get_id(*id, where, ctx + ".id");
      tok.content = get_string(a, "content", where, ctx, true);
      if (tok.content.empty()) fail(where, ctx + ".content", "empty");
      tok.special = get_bool(a, "special", false, where, ctx);
      tok.single_word = get_bool(a, "single_word", false, where, ctx);
      tok.lstrip = get_bool(a, "lstrip", false, where, ctx);
      tok.rstrip = get_bool(a, "rstrip", false, where, ctx);
      tok.normalized = get_bool(a, "normalized", !tok.special, where, ctx);
      if (!seen.emplace(tok.id, i).second)
        fail(where, ctx + ".id", "id " + std::to_string(tok.id) + " is used by two added tokens");
      t->added.push_back(std::move(tok));
    }
  }
  if (const json* n = member(doc, "normalizer")) {
    parse_normalizer(*n, t->normalizers, where, "normalizer", 0);
    t->normalizer_json = *n;
  }
  const json* pre = member(doc, "pre_tokenizer");
  if (!pre || pre->is_null())
    bad_input(where + ": pre_tokenizer: missing; only byte-level BPE tokenizers are supported");
  parse_pre_tokenizer(*pre, t->pre, where, "pre_tokenizer", 0);
  t->pre_tokenizer_json = *pre;
  if (const json* p = member(doc, "post_processor")) t->post_processor_json = *p;
  if (const json* d = member(doc, "decoder")) t->decoder_json = *d;
  check_sparse_ids(*t, where);
  t->finish(where);
  return t;
}

std::shared_ptr<TokenizerImpl> load_gpt2_files(const std::string& dir) {
  auto t = std::make_shared<TokenizerImpl>();
  std::string vpath = dir + "vocab.json", mpath = dir + "merges.txt";
  json vocab;
  try {
    vocab = json::parse(read_file(vpath));
  } catch (const json::exception& e) { bad_input(vpath + ": not valid JSON (" + e.what() + ")"); }
  if (!vocab.is_object()) bad_input(vpath + ": expected an object {token: id}, got " + type_name(vocab));
  BpeModel& m = t->model;
  uint64_t max_id = 0;
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    max_id = std::max<uint64_t>(max_id, get_id(it.value(), vpath, "\"" + it.key() + "\""));
  check_sparse(max_id, vocab.size(), vpath);
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    m.add_token(it.key(), get_id(it.value(), vpath, "\"" + it.key() + "\""), vpath);
  std::string merges = read_file(mpath);
  size_t pos = 0, line_no = 0;
  while (pos < merges.size()) {
    size_t e = merges.find('\n', pos);
    if (e == std::string::npos) e = merges.size();
    std::string_view line(merges.data() + pos, e - pos);
    pos = e + 1;
    line_no++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      bad_input(mpath + ": line " + std::to_string(line_no) + ": expected \"left right\"");
    m.add_merge(line.substr(0, sp), line.substr(sp + 1), mpath);
  }
  // special_tokens_map.json: {"eos_token": "..." or {"content": ...}, "additional_special_tokens": [...]}
  std::map<std::string, AddedToken> specials;
  auto special_entry = [&](const json& v, const std::string& ctx, const std::string& path) {
    AddedToken tok;
    tok.special = true;
    tok.normalized = false;
    if (v.is_string()) {
      tok.content = v.get<std::string>();
    } else if (v.is_object()) {
      tok.content = get_string(v, "content", path, ctx, true);
      tok.single_word = get_bool(v, "single_word", false, path, ctx);
      tok.lstrip = get_bool(v, "lstrip", false, path, ctx);
      tok.rstrip = get_bool(v, "rstrip", false, path, ctx);
      tok.normalized = get_bool(v, "normalized", false, path, ctx);
    } else {
      fail(path, ctx, "expected a string or an object, got " + type_name(v));
    }
    if (tok.content.empty()) fail(path, ctx, "empty token");
    return tok;
  };
  std::string spath = dir + "special_tokens_map.json";
  if (path_exists(spath)) {
    json sm;
    try {
      sm = json::parse(read_file(spath));
    } catch (const json::exception& e) { bad_input(spath + ": not valid JSON (" + e.what() + ")"); }
    if (!sm.is_object()) bad_input(spath + ": expected an object");
    for (auto it = sm.begin(); it != sm.end(); ++it) {
      if (it.value().is_array()) {
        for (size_t i = 0; i < it.value().size(); i++) {
          AddedToken tok = special_entry(it.value()[i], it.key() + "[" + std::to_string(i) + "]", spath);
          specials.emplace(tok.content, tok);
        }
      } else if (!it.value().is_null()) {
        AddedToken tok = special_entry(it.value(), it.key(), spath);
        if (it.key() == "eos_token") t->eos_hint = tok.content;
        specials.emplace(tok.content, tok);
      }
    }
  } else if (m.token_to_id.count("<|endoftext|>")) {
    AddedToken tok;
    tok.content = "<|endoftext|>";
    tok.special = true;
    tok.normalized = true;
    specials.emplace(tok.content, tok);
  }
  // added_tokens.json: {"token": id}
  std::map<TokenId, std::string> added_ids;
  std::string apath = dir + "added_tokens.json";
  if (path_exists(apath)) {
    json at;
    try {
      at = json::parse(read_file(apath));
    } catch (const json::exception& e) { bad_input(apath + ": not valid JSON (" + e.what() + ")"); }
    if (!at.is_object()) bad_input(apath + ": expected an object {token: id}, got " + type_name(at));
    for (auto it = at.begin(); it != at.end(); ++it) {
      TokenId id = get_id(it.value(), apath, "\"" + it.key() + "\"");
      if (it.key().empty()) bad_input(apath + ": empty token");
      if (!added_ids.emplace(id, it.key()).second) bad_input(apath + ": id " + std::to_string(id) + " is used twice");
    }
  }
  // Special tokens get the id of the vocabulary or added_tokens.json; the others follow by id.
  // A special token in neither file gets the next free id, as transformers appends it.
  std::map<TokenId, AddedToken> all;
  TokenId next_id = static_cast<TokenId>(m.size());
  for (auto& [i, c] : added_ids) next_id = std::max(next_id, i + 1);
  for (auto& [content, tok] : specials) {
    AddedToken a = tok;
    auto it = m.token_to_id.find(content);
    std::optional<TokenId> id;
    if (it != m.token_to_id.end()) id = it->second;
    for (auto& [i, c] : added_ids)
      if (c == content) id = i;
    a.id = id ? *id : next_id++;
    all[a.id] = a;
  }
  for (auto& [id, content] : added_ids) {
    if (all.count(id)) continue;
    AddedToken a;
    a.id = id;
    a.content = content;
    a.normalized = true;
    a.special = false;
    all[id] = a;
  }
  for (auto& [id, a] : all) t->added.push_back(a);
  PreStep st;
  st.kind = PreStep::byte_level;
  st.add_prefix_space = false;
  st.use_regex = true;
  t->pre.push_back(st);
  t->pre_tokenizer_json = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  t->post_processor_json = {
      {"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  t->decoder_json = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  check_sparse_ids(*t, dir);
  t->finish(dir);
  return t;
}

json normalizer_to_json(const std::vector<NormStep>& steps) {
  auto one = [](NormStep s) -> json {
    switch (s) {
      case NormStep::nfc: return {{"type", "NFC"}};
      case NormStep::nfkc: return {{"type", "NFKC"}};
      case NormStep::nfd: return {{"type", "NFD"}};
      case NormStep::nfkd: return {{"type", "NFKD"}};
      default: return {{"type", "Lowercase"}};
    }
  };
  if (steps.empty()) return nullptr;
  if (steps.size() == 1) return one(steps[0]);
  json list = json::array();
  for (auto s : steps) list.push_back(one(s));
  return {{"type", "Sequence"}, {"normalizers", list}};
}

namespace {
std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

std::string write_tokenizer_json(const TokenizerImpl& t) {
  std::string o;
  o.reserve(t.model.size() * 40 + t.model.merges.size() * 30 + 4096);
  o += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
  std::vector<const AddedToken*> added;
  for (auto& a : t.added) added.push_back(&a);
  std::sort(added.begin(), added.end(), [](auto* a, auto* b) { return a->id < b->id; });
  auto b = [](bool v) { return v ? "true" : "false"; };
  for (size_t i = 0; i < added.size(); i++) {
    const AddedToken& a = *added[i];
    o += i ? ",\n    " : "\n    ";
    o += "{\"id\": " + std::to_string(a.id) + ", \"content\": " + quote(a.content) +
         ", \"single_word\": " + b(a.single_word) + ", \"lstrip\": " + b(a.lstrip) + ", \"rstrip\": " + b(a.rstrip) +
         ", \"normalized\": " + b(a.normalized) + ", \"special\": " + b(a.special) + "}";
  }
  o += added.empty() ? "],\n" : "\n  ],\n";
  o += "  \"normalizer\": " + t.normalizer_json.dump() + ",\n";
  o += "  \"pre_tokenizer\": " + t.pre_tokenizer_json.dump() + ",\n";
  o += "  \"post_processor\": " + t.post_processor_json.dump() + ",\n";
  o += "  \"decoder\": " + t.decoder_json.dump() + ",\n";
  const BpeModel& m = t.model;
  o += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": ";
  o += m.dropout ? json(*m.dropout).dump() : "null";
  o += ",\n    \"unk_token\": ";
  o += m.unk_token.empty() ? "null" : quote(m.unk_token);
  o += ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n";
  o += std::string("    \"fuse_unk\": ") + b(m.fuse_unk) + ",\n    \"byte_fallback\": " + b(m.byte_fallback) +
       ",\n    \"ignore_merges\": " + b(m.ignore_merges) + ",\n    \"vocab\": {";
  bool first = true;
  for (size_t id = 0; id < m.size(); id++) {
    if (!m.present[id]) continue;
    o += first ? "\n      " : ",\n      ";
    first = false;
    o += quote(m.tokens[id]) + ": " + std::to_string(id);
  }
  o += first ? "},\n" : "\n    },\n";
  o += "    \"merges\": [";
  for (size_t i = 0; i < m.merges.size(); i++) {
    o += i ? ",\n      [" : "\n      [";
    o += quote(m.tokens[m.merges[i].first]) + ", " + quote(m.tokens[m.merges[i].second]) + "]";
  }
  o += m.merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
  return o;
}

}  // namespace mindllm
