// libFuzzer target: the pytorch_model.bin reader (zip + restricted pickle). Any input either
// loads or is rejected with mindllm::Error (bad input); never a crash, hang, huge allocation or
// code run. Every tensor of a loaded file must read.
// Build: bash tests/fuzz/build_interop_fuzzers.sh (seeds: tests/fuzz/seeds_interop.py)
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/torch_bin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mindllm::TorchBinFile f(std::span<const uint8_t>(data, size), "fuzz.bin");
    for (auto& [name, t] : f.tensors()) {
      if (t.numel() > (int64_t{1} << 24)) continue;  // valid but too large to read in a fuzz loop
      std::vector<float> out(t.numel());
      f.read_f32(name, out.data());
    }
  } catch (const mindllm::Error& e) {
    if (e.code != mindllm::ExitCode::bad_input) std::abort();
  }
  return 0;
}
