// Ability tags of instruction samples (math, code, reasoning, exam, law, finance, multi_turn) for
// `mindllm select`: from keyword / regex rules, or from a field of the sample.
//
// A rule file is a JSON object, tag -> rule:
//   {"math": {"keywords": ["equation", "方程"], "regex": ["\\d+\\s*[-+*/=]\\s*\\d+"],
//             "min_matches": 1, "min_user_turns": 0, "on": "all"}, ...}
//   or tag -> ["keyword", ...] (keywords only).
// keywords match as substrings, ASCII case-insensitively; regex is PCRE2 (core/regex.h). A sample
// gets the tag when at least min_matches (default 1) keywords/patterns occur in its text and it
// has at least min_user_turns user turns (a rule with neither keywords nor regex only counts
// turns, e.g. multi_turn). "on" picks the text: "all" (every message, default), "prompt"
// (system and user turns) or "response" (assistant turns). docs/sft-selection.md lists the
// built-in rules.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/regex.h"
#include "sft/message.h"

namespace mindllm::sft {

struct TagRule {
  std::string tag;
  std::vector<std::string> keywords;  // lowercased
  std::vector<std::shared_ptr<Regex>> patterns;
  int min_matches = 1;
  int min_user_turns = 0;
  std::string on = "all";
};

struct TagRules {
  std::vector<TagRule> rules;  // in the file's order
  std::vector<std::string> tags() const;
};

// The built-in rule set (its JSON text: builtin_tag_rules_json()).
TagRules builtin_tag_rules();
const std::string& builtin_tag_rules_json();
// Rules from JSON text; bad input naming `where` (a file) and the tag on any error.
TagRules parse_tag_rules(const std::string& text, const std::string& where);

// The tags of a conversation, in rule order.
std::vector<std::string> tag_conversation(const TagRules& rules, const Conversation& c);
// The tags in a sample's field: a string (one tag, or comma-separated) or a list of strings;
// absent or null: none. Anything else throws std::runtime_error naming the field.
std::vector<std::string> tags_from_field(const nlohmann::json& sample, const std::string& field);

}  // namespace mindllm::sft
