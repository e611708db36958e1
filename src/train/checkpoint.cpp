#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace fs = std::filesystem;

namespace mindllm {

std::string checkpoint_name(int step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%07d", step);
  return buf;
}

std::string begin_checkpoint(const std::string& run_dir, int step) {
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  fs::create_directories(ckpt);
  fs::path tmp = ckpt / (".tmp-" + checkpoint_name(step) + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  return tmp.string();
}

void publish_checkpoint(const std::string& run_dir, const std::string& tmp_dir, int step, int keep) {
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  fs::path final_dir = ckpt / checkpoint_name(step);
  fsync_dir(tmp_dir);
  std::error_code ec;
  if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a re-run of the same step replaces it
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) internal_error(final_dir.string() + ": cannot publish checkpoint: " + ec.message());
  fsync_dir(ckpt.string());
  write_file_atomic((ckpt / "latest").string(), checkpoint_name(step) + "\n");
  if (keep > 0) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(ckpt)) {
      std::string n = e.path().filename().string();
      if (n.rfind("step-", 0) == 0 && e.is_directory()) names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    for (size_t i = 0; i + keep < names.size(); i++) fs::remove_all(ckpt / names[i], ec);
  }
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  fs::path latest = fs::path(run_dir) / "ckpt" / "latest";
  if (!fs::exists(latest)) return std::nullopt;
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  if (name.rfind("step-", 0) != 0 || name.find('/') != std::string::npos)
    bad_input(latest.string() + ": does not name a checkpoint (got '" + name.substr(0, 40) + "')");
  fs::path dir = fs::path(run_dir) / "ckpt" / name;
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    if (!fs::exists(dir / f)) bad_input(dir.string() + ": checkpoint is incomplete (no " + f + ")");
  return dir.string();
}

}  // namespace mindllm
