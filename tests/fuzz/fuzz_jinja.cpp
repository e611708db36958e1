// libFuzzer target: the Jinja subset (src/sft/jinja.h). Any template either renders or is rejected
// with TemplateError (bad input); never a crash, hang or unbounded allocation. Small limits keep
// each run fast; the limits themselves are what a hostile template meets.
// Build: bash tests/fuzz/build_jinja_fuzzer.sh
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sft/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "héllo {{ x }}"},
                 {"role": "assistant", "content": "<think>\nr\n</think>\n\nok", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                 {"role": "tool", "content": "22"}],
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "tools": null})");
  mindllm::sft::jinja::Limits limits;
  limits.max_output = 1 << 20;
  limits.max_alloc = 64 << 20;
  limits.max_steps = 200000;
  std::string_view src(reinterpret_cast<const char*>(data), size);
  try {
    mindllm::sft::jinja::Template t(src, "fuzz");
    std::string out = t.render(ctx);
    if (out.size() > limits.max_output) std::abort();
  } catch (const mindllm::Error& e) {
    if (e.code != mindllm::ExitCode::bad_input) std::abort();
  }
  return 0;
}
