#include "model/presets.h"

// Defined in the file CMake generates from configs/*.json (cmake/embed_json.cmake).
extern "C" const char* mindllm_builtin_preset_spec(const char* name);
extern "C" const char* const* mindllm_builtin_preset_names();

namespace mindllm {

const char* find_preset(const std::string& name) { return mindllm_builtin_preset_spec(name.c_str()); }

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  for (const char* const* n = mindllm_builtin_preset_names(); *n; n++) v.push_back(*n);
  return v;
}

}  // namespace mindllm
