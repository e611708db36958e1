// Config files for `mindllm data prepare` (YAML or JSON), applied on top of the defaults.
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/file_io.h"
#include "data/prepare.h"

namespace mindllm::data {

static nlohmann::json yaml_node_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) j[it->first.as<std::string>()] = yaml_node_to_json(it->second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (auto it = n.begin(); it != n.end(); ++it) j.push_back(yaml_node_to_json(*it));
      return j;
    }
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True" || s == "yes") return true;
      if (s == "false" || s == "False" || s == "no") return false;
      if (s == "null" || s == "~") return nullptr;
      try {
        size_t k = 0;
        long long v = std::stoll(s, &k);
        if (k == s.size()) return v;
      } catch (...) {}
      try {
        size_t k = 0;
        double v = std::stod(s, &k);
        if (k == s.size()) return v;
      } catch (...) {}
      return s;
    }
    default: return nullptr;
  }
}

nlohmann::json yaml_to_json(const std::string& text, const std::string& where) {
  try {
    return yaml_node_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    bad_input(where + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
}

namespace {

struct Getter {
  const nlohmann::json& j;
  std::string where, prefix;
  void check_keys(std::initializer_list<const char*> keys) const {
    if (!j.is_object()) bad_input(where + ": '" + prefix + "' must be a mapping");
    for (auto& [k, v] : j.items()) {
      bool ok = false;
      for (const char* key : keys) ok |= k == key;
      if (!ok) bad_input(where + ": unknown key '" + prefix + (prefix.empty() ? "" : ".") + k + "'");
    }
  }
  std::string name(const char* k) const { return prefix + (prefix.empty() ? "" : ".") + k; }
  void get(const char* k, bool& out) const {
    if (!j.contains(k)) return;
    if (!j[k].is_boolean()) bad_input(where + ": " + name(k) + " must be true or false");
    out = j[k].get<bool>();
  }
  template <typename T>
  void get_num(const char* k, T& out, double lo, double hi) const {
    if (!j.contains(k)) return;
    if (!j[k].is_number()) bad_input(where + ": " + name(k) + " must be a number");
    double v = j[k].get<double>();
    if (!(v >= lo && v <= hi)) bad_input(where + ": " + name(k) + " = " + j[k].dump() + " is out of range");
    out = static_cast<T>(v);
  }
  void get(const char* k, std::string& out) const {
    if (!j.contains(k)) return;
    if (!j[k].is_string()) bad_input(where + ": " + name(k) + " must be a string");
    out = j[k].get<std::string>();
  }
  void get(const char* k, std::vector<std::string>& out) const {
    if (!j.contains(k)) return;
    auto& v = j[k];
    if (v.is_string()) {
      out = {v.get<std::string>()};
      return;
    }
    if (!v.is_array()) bad_input(where + ": " + name(k) + " must be a list of strings");
    out.clear();
    for (auto& x : v) {
      if (!x.is_string()) bad_input(where + ": " + name(k) + " must be a list of strings");
      out.push_back(x.get<std::string>());
    }
  }
  Getter sub(const char* k) const { return Getter{j[k], where, name(k)}; }
};

}  // namespace

void apply_prepare_json(PrepareConfig& c, const nlohmann::json& j, const std::string& where) {
  Getter g{j, where, ""};
  g.check_keys({"input", "output", "reader", "clean", "langid", "filters", "pii", "dedup", "compress", "zstd_level",
                "max_file_bytes", "threads", "batch_bytes", "examples_per_filter", "progress"});
  g.get("input", c.inputs);
  g.get("output", c.output);
  g.get("pii", c.pii);
  g.get("compress", c.compress);
  g.get("progress", c.progress);
  g.get_num("zstd_level", c.zstd_level, 1, 22);
  g.get_num("max_file_bytes", c.max_file_bytes, 1 << 10, 1e15);
  g.get_num("threads", c.threads, 0, 4096);
  g.get_num("batch_bytes", c.batch_bytes, 1 << 10, 1e12);
  g.get_num("examples_per_filter", c.examples_per_filter, 0, 1000);
  if (j.contains("reader")) {
    auto r = g.sub("reader");
    r.check_keys({"text_unit", "text_field", "max_doc_bytes", "encoding"});
    r.get("encoding", c.reader.encoding);
    r.get("text_unit", c.reader.text_unit);
    r.get("text_field", c.reader.text_field);
    r.get_num("max_doc_bytes", c.reader.max_doc_bytes, 16, 1ull << 40);
  }
  if (j.contains("clean")) {
    auto r = g.sub("clean");
    r.check_keys({"strip_html", "normalize_nfkc", "fold_fullwidth", "traditional_to_simplified", "opencc_config",
                  "strip_markdown", "remove_boilerplate_lines", "boilerplate_max_line_bytes", "boilerplate_phrases"});
    r.get("strip_html", c.clean.strip_html);
    r.get("normalize_nfkc", c.clean.normalize_nfkc);
    r.get("fold_fullwidth", c.clean.fold_fullwidth);
    r.get("traditional_to_simplified", c.clean.traditional_to_simplified);
    r.get("opencc_config", c.clean.opencc_config);
    r.get("strip_markdown", c.clean.strip_markdown);
    r.get("remove_boilerplate_lines", c.clean.remove_boilerplate_lines);
    r.get_num("boilerplate_max_line_bytes", c.clean.boilerplate_max_line_bytes, 0, 1e9);
    r.get("boilerplate_phrases", c.clean.boilerplate_phrases);
    for (auto& p : c.clean.boilerplate_phrases)
      for (auto& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (j.contains("langid")) {
    auto r = g.sub("langid");
    r.check_keys({"min_en_stopword_ratio", "min_letters"});
    r.get_num("min_en_stopword_ratio", c.langid.min_en_stopword_ratio, 0, 1);
    r.get_num("min_letters", c.langid.min_letters, 0, 1e9);
  }
  if (j.contains("filters")) apply_filter_json(c.filters, j["filters"], where);
  if (j.contains("dedup")) {
    auto r = g.sub("dedup");
    r.check_keys({"exact", "near", "num_perm", "bands", "rows", "word_ngram", "char_ngram", "scheme", "seed"});
    r.get("exact", c.dedup.exact);
    r.get("near", c.dedup.near);
    r.get_num("num_perm", c.dedup.num_perm, 1, 1024);
    r.get_num("bands", c.dedup.bands, 1, 1024);
    r.get_num("rows", c.dedup.rows, 1, 1024);
    r.get_num("word_ngram", c.dedup.word_ngram, 1, 64);
    r.get_num("char_ngram", c.dedup.char_ngram, 1, 64);
    r.get("scheme", c.dedup.scheme);
    r.get_num("seed", c.dedup.seed, 0, 9007199254740992.0);
  }
}

PrepareConfig load_prepare_config(const std::string& path) {
  std::string text = read_file(path);
  bool yaml = path.size() > 5 && (path.ends_with(".yaml") || path.ends_with(".yml"));
  nlohmann::json j;
  if (yaml) {
    j = yaml_to_json(text, path);
    if (j.is_null()) j = nlohmann::json::object();
  } else {
    j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) bad_input(path + ": not valid JSON (YAML configs need a .yaml or .yml name)");
  }
  PrepareConfig c;
  apply_prepare_json(c, j, path);
  return c;
}

nlohmann::json prepare_config_to_json(const PrepareConfig& c) {
  nlohmann::json j;
  j["input"] = c.inputs;
  j["output"] = c.output;
  j["reader"] = {{"text_unit", c.reader.text_unit},
                 {"text_field", c.reader.text_field},
                 {"max_doc_bytes", c.reader.max_doc_bytes},
                 {"encoding", c.reader.encoding.empty() ? "utf-8" : c.reader.encoding}};
  j["clean"] = {{"strip_html", c.clean.strip_html},
                {"normalize_nfkc", c.clean.normalize_nfkc},
                {"fold_fullwidth", c.clean.fold_fullwidth},
                {"traditional_to_simplified", c.clean.traditional_to_simplified},
                {"opencc_config", c.clean.opencc_config},
                {"strip_markdown", c.clean.strip_markdown},
                {"remove_boilerplate_lines", c.clean.remove_boilerplate_lines},
                {"boilerplate_max_line_bytes", c.clean.boilerplate_max_line_bytes},
                {"boilerplate_phrases", c.clean.boilerplate_phrases}};
  j["langid"] = {{"min_en_stopword_ratio", c.langid.min_en_stopword_ratio}, {"min_letters", c.langid.min_letters}};
  j["filters"] = filter_config_to_json(c.filters);
  j["pii"] = c.pii;
  j["dedup"] = {{"exact", c.dedup.exact},           {"near", c.dedup.near},     {"num_perm", c.dedup.num_perm},
                {"bands", c.dedup.bands},           {"rows", c.dedup.rows},     {"word_ngram", c.dedup.word_ngram},
                {"char_ngram", c.dedup.char_ngram}, {"scheme", c.dedup.scheme}, {"seed", c.dedup.seed}};
  j["compress"] = c.compress;
  j["zstd_level"] = c.zstd_level;
  j["max_file_bytes"] = c.max_file_bytes;
  j["batch_bytes"] = c.batch_bytes;
  j["examples_per_filter"] = c.examples_per_filter;
  return j;
}

}  // namespace mindllm::data
