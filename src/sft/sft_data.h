// Instruction data: JSON arrays or JSON lines (plain, .gz, .zst) of samples in one of three
// formats, each turned into a conversation of system/user/assistant messages:
//   alpaca    {"instruction", "input"?, "output", "system"?, "history"?: [[user, assistant], ...]}
//   sharegpt  {"conversations": [{"from": "system"|"human"|"user"|"gpt"|"assistant", "value"}], "system"?}
//   messages  {"messages": [{"role": "system"|"user"|"assistant", "content"}]}   (OpenAI)
// A sample that cannot be used (not an object, a missing or non-string field, an unknown role,
// turns out of order, an empty assistant turn, invalid UTF-8) is skipped and counted with the
// first few reasons; with `strict` it is bad input instead.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "sft/message.h"

namespace mindllm::sft {

enum class SftFormat { auto_detect, alpaca, sharegpt, messages };
SftFormat sft_format_from_name(const std::string& name);  // auto | alpaca | sharegpt | messages

// FILE or FILE:WEIGHT: the file's samples are taken WEIGHT times per epoch (2 = each twice,
// 0.5 = a seeded half).
struct SftSource {
  std::string path;
  double weight = 1.0;
};
// "a.json,b.jsonl:0.5" (a path may itself contain ':' when no weight follows).
std::vector<SftSource> parse_sft_sources(const std::string& spec);

struct LoadReport {
  int64_t samples = 0, kept = 0;
  std::map<std::string, int64_t> skipped;  // reason -> count
  std::vector<std::string> examples;       // "file:item: reason" for the first few
  int64_t skipped_total() const;
  void skip(const std::string& reason, const std::string& where);
  std::string summary() const;  // one line: "1000 samples, 998 kept, 2 skipped (empty assistant turn: 2)"
};

// The conversations of one file, in file order.
std::vector<Conversation> load_conversations(const std::string& path, SftFormat format, bool strict,
                                             LoadReport& report);
// The same for a file's (decompressed) text; `path` names it in the report.
std::vector<Conversation> parse_conversations(const std::string& text, const std::string& path, SftFormat format,
                                              bool strict, LoadReport& report);

// The samples of a file's (decompressed) text, unparsed: the items of a JSON array, else the
// non-blank lines; number[i] is the 1-based item or line number of item i (for messages).
struct SampleTexts {
  std::vector<std::string> items;
  std::vector<size_t> number;
  std::string unit;  // "item" or "line"
};
SampleTexts split_samples(const std::string& text);
// A file's whole (decompressed: .gz, .zst) text; unreadable is bad input naming the file.
std::string read_sample_file(const std::string& path);

// One sample (a JSON value) as a conversation; throws SampleError with the reason.
struct SampleError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
Conversation to_conversation(const nlohmann::json& sample, SftFormat format);

}  // namespace mindllm::sft
