// The pool of `mindllm select`: the instruction samples of one or more files (any format
// sft/sft_data.h reads), each with what scoring and picking need beside its conversation: where
// it came from, its id, its original JSON text, its language and its ability tags.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sft/sft_data.h"
#include "sft/select_tags.h"

namespace mindllm::sft {

struct PoolSample {
  std::string source;  // the file, as given
  int64_t index = 0;   // position in the pool: 0-based over all files in order, unusable samples included
  nlohmann::json id;   // the sample's own "id" (a string or an integer), else `index`
  std::string raw;     // the sample's JSON text as in the file
  Conversation conv;
  std::string lang;               // the sample's "lang"/"language" field, else zh | en | other (data/langid.h)
  std::vector<std::string> tags;  // --tag-field's value, else the tag rules'
};

// The key that names a sample in scores files: source + TAB + the id as JSON. Unique in a pool.
std::string sample_key(const std::string& source, const nlohmann::json& id);

struct PoolOptions {
  SftFormat format = SftFormat::auto_detect;
  std::string tag_field;            // tags from this field when not empty
  const TagRules* rules = nullptr;  // else from these rules (none: no tags)
};

struct Pool {
  std::vector<PoolSample> samples;
  LoadReport report;  // samples without a usable conversation, duplicate ids, ... are skipped and counted
};

Pool load_pool(const std::vector<std::string>& files, const PoolOptions& o);

// The sample's text for near-duplicate detection and tag rules: every message, one per line.
std::string conversation_text(const Conversation& c);

}  // namespace mindllm::sft
