// libFuzzer target: instruction data files (src/sft/sft_data.h) — JSON arrays split item by item
// and JSON lines in any of the three formats. Every input must give conversations or counted
// skips, never a crash; --strict-mode errors must be bad input (mindllm::Error).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "sft/sft_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (auto format : {mindllm::sft::SftFormat::auto_detect, mindllm::sft::SftFormat::sharegpt}) {
    mindllm::sft::LoadReport report;
    auto convs = mindllm::sft::parse_conversations(text, "fuzz.json", format, false, report);
    if ((int64_t)convs.size() != report.kept || report.kept + report.skipped_total() != report.samples)
      __builtin_trap();
    try {
      mindllm::sft::LoadReport strict;
      mindllm::sft::parse_conversations(text, "fuzz.json", format, true, strict);
    } catch (const mindllm::Error&) {}
  }
  return 0;
}
