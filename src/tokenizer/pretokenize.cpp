#include "tokenizer/pretokenize.h"

namespace mindllm {

namespace {
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2Tiktoken = R"('(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace

const char* split_pattern_name(SplitPattern p) {
  switch (p) {
    case SplitPattern::gpt2: return "gpt2";
    case SplitPattern::llama3: return "llama3";
    default: return "qwen2";
  }
}

const char* split_pattern_regex(SplitPattern p) {
  switch (p) {
    case SplitPattern::gpt2: return kGpt2;
    case SplitPattern::llama3: return kLlama3;
    default: return kQwen2;
  }
}

std::optional<SplitPattern> split_pattern_from_regex(std::string_view r) {
  if (r == kGpt2 || r == kGpt2Tiktoken) return SplitPattern::gpt2;
  if (r == kLlama3) return SplitPattern::llama3;
  if (r == kQwen2) return SplitPattern::qwen2;
  return std::nullopt;
}

std::optional<SplitPattern> split_pattern_from_name(std::string_view n) {
  if (n == "gpt2") return SplitPattern::gpt2;
  if (n == "llama3" || n == "gpt4") return SplitPattern::llama3;
  if (n == "qwen2") return SplitPattern::qwen2;
  return std::nullopt;
}

Regex compile_split_regex(std::string_view regex, const std::string& where) {
  return Regex(regex, RegexSyntax::oniguruma, where);
}

}  // namespace mindllm
