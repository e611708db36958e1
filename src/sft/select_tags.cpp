#include "sft/select_tags.h"

#include <algorithm>
#include <stdexcept>

#include "core/error.h"

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // rule files keep their order

namespace mindllm::sft {

std::vector<std::string> TagRules::tags() const {
  std::vector<std::string> out;
  for (const TagRule& r : rules) out.push_back(r.tag);
  return out;
}

const std::string& builtin_tag_rules_json() {
  // Kept small and legible: a starting point, documented in docs/sft-selection.md; a project
  // with its own taxonomy passes --tag-rules FILE.
  static const std::string text = R"JSON({
  "math": {"keywords": ["equation", "calculate", "solve for", "how many", "math", "algebra", "geometry",
                        "integer", "\\frac", "方程", "计算", "求解", "解得", "数学", "几何", "多少", "应用题"],
           "regex": ["\\d+(\\.\\d+)?\\s*[-+*/×÷^=]\\s*\\d+"]},
  "code": {"keywords": ["```", "def ", "#include", "function(", "public static", "console.log", "select * from",
                        "python", "javascript", "java ", "c++", "sql", "代码", "编程", "函数", "程序"]},
  "reasoning": {"keywords": ["step by step", "let's think", "first,", "therefore", "thus,", "reasoning",
                             "逐步", "一步一步", "首先", "其次", "因此", "所以", "推理", "综上"],
                "min_matches": 2},
  "exam": {"keywords": ["multiple choice", "which of the following", "选择题", "单选", "多选", "下列", "以下哪",
                        "正确的是", "考试", "试题", "答案是", "the answer is"],
           "regex": ["(?m)^\\s*\\(?[A-D][\\.．、:：)]\\s*\\S"]},
  "law": {"keywords": ["law", "legal", "court", "statute", "attorney", "lawsuit", "contract",
                       "法律", "法院", "法条", "诉讼", "律师", "刑法", "民法", "合同", "判决", "条例", "违法"]},
  "finance": {"keywords": ["finance", "financial", "stock", "invest", "interest rate", "bank", "bond", "fund",
                           "金融", "股票", "基金", "投资", "银行", "利率", "财务", "证券", "理财", "保险", "债券"]},
  "multi_turn": {"min_user_turns": 2}
})JSON";
  return text;
}

TagRules builtin_tag_rules() { return parse_tag_rules(builtin_tag_rules_json(), "(built-in tag rules)"); }

namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<std::string> string_list(const ojson& v, const std::string& what) {
  if (!v.is_array()) bad_input(what + " must be a list of strings");
  std::vector<std::string> out;
  for (const ojson& x : v) {
    if (!x.is_string() || x.get<std::string>().empty()) bad_input(what + " must be a list of non-empty strings");
    out.push_back(x.get<std::string>());
  }
  return out;
}

}  // namespace

TagRules parse_tag_rules(const std::string& text, const std::string& where) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::parse_error& e) { bad_input(where + ": not valid JSON (" + e.what() + ")"); }
  if (!j.is_object() || j.empty()) bad_input(where + ": expected a JSON object of tag -> rule");
  TagRules out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string what = where + ": tag '" + it.key() + "'";
    if (it.key().empty() || it.key().find(',') != std::string::npos || it.key().find('=') != std::string::npos)
      bad_input(what + ": a tag name must be non-empty, without ',' or '='");
    TagRule r;
    r.tag = it.key();
    const ojson& v = it.value();
    if (v.is_array()) {
      for (auto& k : string_list(v, what)) r.keywords.push_back(lower_ascii(k));
    } else if (v.is_object()) {
      for (auto f = v.begin(); f != v.end(); ++f)
        if (f.key() != "keywords" && f.key() != "regex" && f.key() != "min_matches" && f.key() != "min_user_turns" &&
            f.key() != "on")
          bad_input(what + ": unknown field '" + f.key() + "' (keywords, regex, min_matches, min_user_turns, on)");
      if (v.contains("keywords"))
        for (auto& k : string_list(v["keywords"], what + " keywords")) r.keywords.push_back(lower_ascii(k));
      if (v.contains("regex"))
        for (auto& p : string_list(v["regex"], what + " regex"))
          r.patterns.push_back(std::make_shared<Regex>(p, RegexSyntax::pcre2, what));
      for (const char* key : {"min_matches", "min_user_turns"})
        if (v.contains(key)) {
          if (!v[key].is_number_integer() || v[key].get<int64_t>() < 0 || v[key].get<int64_t>() > 1000000)
            bad_input(what + ": " + key + " must be an integer >= 0");
          (std::string(key) == "min_matches" ? r.min_matches : r.min_user_turns) = v[key].get<int>();
        }
      if (v.contains("on")) {
        if (!v["on"].is_string()) bad_input(what + ": on must be all, prompt or response");
        r.on = v["on"].get<std::string>();
        if (r.on != "all" && r.on != "prompt" && r.on != "response")
          bad_input(what + ": on must be all, prompt or response");
      }
    } else {
      bad_input(what + ": expected a list of keywords or a rule object");
    }
    out.rules.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> tag_conversation(const TagRules& rules, const Conversation& c) {
  std::string all, prompt, response;
  int user_turns = 0;
  for (const Message& m : c) {
    (m.role == "assistant" ? response : prompt) += m.content + "\n";
    all += m.content + "\n";
    user_turns += m.role == "user";
  }
  const std::string all_l = lower_ascii(all), prompt_l = lower_ascii(prompt), response_l = lower_ascii(response);
  std::vector<std::string> out;
  for (const TagRule& r : rules.rules) {
    if (user_turns < r.min_user_turns) continue;
    const std::string& text = r.on == "prompt" ? prompt : r.on == "response" ? response : all;
    const std::string& lower = r.on == "prompt" ? prompt_l : r.on == "response" ? response_l : all_l;
    int hits = 0;
    const int need = r.keywords.empty() && r.patterns.empty() ? 0 : r.min_matches;
    for (const std::string& k : r.keywords)
      if (hits < need && lower.find(k) != std::string::npos) hits++;
    for (const auto& p : r.patterns)
      if (hits < need && p->search(text, 0)) hits++;
    if (hits >= need) out.push_back(r.tag);
  }
  return out;
}

std::vector<std::string> tags_from_field(const json& sample, const std::string& field) {
  auto it = sample.find(field);
  if (it == sample.end() || it->is_null()) return {};
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      std::string t = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      while (!t.empty() && t.front() == ' ') t.erase(t.begin());
      while (!t.empty() && t.back() == ' ') t.pop_back();
      if (!t.empty() && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  };
  if (it->is_string()) {
    add(it->get<std::string>());
  } else if (it->is_array()) {
    for (const json& x : *it) {
      if (!x.is_string()) throw std::runtime_error("field '" + field + "' is not a string or a list of strings");
      add(x.get<std::string>());
    }
  } else {
    throw std::runtime_error("field '" + field + "' is not a string or a list of strings");
  }
  return out;
}

}  // namespace mindllm::sft
