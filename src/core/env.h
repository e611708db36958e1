// Opt-out switches read from the environment (MINDLLM_NO_AMX, MINDLLM_NO_AVX512,
// MINDLLM_QUANT_SCALAR, ...): set to anything but "" or "0" means on.
#pragma once
#include <cstdlib>
#include <cstring>

namespace mindllm {

inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && std::strcmp(e, "0") != 0;
}

}  // namespace mindllm
