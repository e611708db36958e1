// libFuzzer target: the token shard reader (src/data/shard.cpp) on arbitrary bytes. A file that
// is not a valid shard must be refused with mindllm::Error; a valid one must read back fully.
// Build and run: bash tests/fuzz/build_interop_fuzzers.sh; build-fuzz/fuzz_shard -max_total_time=60
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mindllm_fuzz_shard_" + std::to_string(::getpid()) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    mindllm::Shard s(path);
    std::vector<int32_t> ids(s.size());
    s.copy(0, s.size(), ids.data());
  } catch (const mindllm::Error&) {}
  return 0;
}
