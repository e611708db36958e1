#pragma once
// One scratch directory per test process: temp_directory_path()/mindllm_tests_<pid>. Every unit test that
// writes files puts them under it, and test_tmp.cpp removes it when the process's tests end, so a ctest run
// (one process per test) leaves nothing behind in /tmp.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace mindllm_test {

inline std::filesystem::path test_tmp_root() {
  return std::filesystem::temp_directory_path() / ("mindllm_tests_" + std::to_string(::getpid()));
}

// test_tmp_root()/name, emptied and created.
inline std::filesystem::path fresh_tmp_dir(const std::string& name) {
  std::filesystem::path d = test_tmp_root() / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace mindllm_test
