// libFuzzer target: the GGUF reader. Any input either parses or is rejected with mindllm::Error
// (bad input); never a crash, hang or huge allocation. Parsed tensors lie inside the input.
// Build: bash tests/fuzz/build_interop_fuzzers.sh
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "core/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mindllm::GGUFFile g = mindllm::parse_gguf(std::span<const uint8_t>(data, size), "fuzz.gguf");
    for (auto& t : g.tensors)
      if (g.data_start + t.offset + t.size > size) std::abort();
  } catch (const mindllm::Error& e) {
    if (e.code != mindllm::ExitCode::bad_input) std::abort();
  }
  return 0;
}
