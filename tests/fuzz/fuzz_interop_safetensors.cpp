// libFuzzer target: the safetensors reader. Any input either loads or is rejected with
// mindllm::Error (bad input); never a crash. Every tensor of a loaded file must read.
// The reader memory-maps files, so each input is written to a per-process temporary directory.
// Build: bash tests/fuzz/build_interop_fuzzers.sh
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = "/tmp/fuzz_interop_st." + std::to_string(getpid());
    std::string cmd = "mkdir -p " + d;
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }();
  FILE* f = std::fopen((dir + "/model.safetensors").c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    mindllm::SafetensorsFile st(dir + "/model.safetensors");
    for (auto& [name, t] : st.tensors()) {
      if (t.numel() > (1 << 24)) continue;
      std::vector<float> out(t.numel());
      try {
        st.read_f32(name, out.data(), &t.shape);
      } catch (const mindllm::Error& e) {  // integer tensors are refused as weights
        if (e.code != mindllm::ExitCode::bad_input) std::abort();
      }
    }
  } catch (const mindllm::Error& e) {
    if (e.code != mindllm::ExitCode::bad_input) std::abort();
  }
  return 0;
}
