// Helpers shared by the data-pipeline tests: temp dirs, the shared corpus, running the CLI.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "test_tmp.h"
#include "core/error.h"
#include "core/file_io.h"

namespace data_test {

inline std::string corpus_dir() { return std::string(MINDLLM_SOURCE_DIR) + "/../shared/data/corpus"; }
inline bool have_corpus() { return std::filesystem::exists(corpus_dir() + "/zh"); }

inline std::string temp_dir(const std::string& name) { return mindllm_test::fresh_tmp_dir("data/" + name).string(); }

inline void write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

// Runs the mindllm binary; returns the exit code, stderr in *err.
inline int run_cli(const std::string& args, std::string* err = nullptr) {
  std::filesystem::create_directories(mindllm_test::test_tmp_root());
  std::string errf = mindllm_test::test_tmp_root() / "cli_stderr";
  std::string cmd = std::string(MINDLLM_BINARY) + " " + args + " >/dev/null 2>" + errf;
  int rc = std::system(cmd.c_str());
  if (err) *err = mindllm::read_file(errf);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Splits a text into chunks of about `bytes` bytes at line ends.
inline std::vector<std::string> chunks(const std::string& text, size_t bytes, size_t max_chunks) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size() && out.size() < max_chunks) {
    size_t end = std::min(text.size(), pos + bytes);
    // End at a newline, else a space, within `bytes` more; else at a UTF-8 character boundary.
    size_t nl = text.find('\n', end), sp = text.find(' ', end);
    if (nl != std::string::npos && nl < end + bytes) end = nl + 1;
    else if (sp != std::string::npos && sp < end + bytes) end = sp + 1;
    else
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) end++;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace data_test
