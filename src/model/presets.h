// Model presets compiled into the binary from configs/*.json (see CMakeLists.txt).
#pragma once
#include <string>
#include <vector>

namespace mindllm {

const char* find_preset(const std::string& name);  // JSON text, or null
std::vector<std::string> preset_names();

}  // namespace mindllm
