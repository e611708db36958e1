#include "train/checkpoint.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;

namespace mindllm {

namespace {

constexpr const char* kTmpPrefix = ".tmp-";
const char* const kCheckpointFiles[] = {"config.json", "model.safetensors", "optimizer.safetensors",
                                        "trainer_state.json"};
// A LoRA run's checkpoint holds a PEFT adapter directory instead of the model (model/lora_io.h).
const char* const kAdapterCheckpointFiles[] = {"adapter_config.json", "adapter_model.safetensors",
                                               "optimizer.safetensors", "trainer_state.json"};

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Why the checkpoint in `dir` is not complete (a file missing or unparseable); empty if complete.
std::string incomplete_reason(const fs::path& dir) {
  const bool adapter = fs::exists(dir / "adapter_config.json");
  const auto& files = adapter ? kAdapterCheckpointFiles : kCheckpointFiles;
  for (const char* f : files)
    if (!fs::exists(dir / f)) return std::string("no ") + f;
  try {
    for (const char* f : {files[0], "trainer_state.json"}) {
      std::string path = (dir / f).string();
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(path));
      } catch (const nlohmann::json::exception&) { return path + ": not valid JSON"; }
      if (!j.is_object()) return path + ": not a JSON object";
    }
    SafetensorsFile weights((dir / files[1]).string());
    SafetensorsFile optimizer((dir / "optimizer.safetensors").string());
  } catch (const Error& e) { return e.what(); }
  return "";
}

// The step directories of <run>/ckpt, newest first.
std::vector<std::string> step_dirs(const fs::path& ckpt) {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(ckpt, ec)) {
    std::string n = e.path().filename().string();
    if (checkpoint_step(n) >= 0 && e.is_directory()) found.emplace_back(checkpoint_step(n), n);
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> names;
  for (auto& [s, n] : found) names.push_back(n);
  return names;
}

// The process id in a temporary checkpoint name ".tmp-step-NNNNNNN-PID", or -1 for other names.
long temporary_owner(const std::string& name) {
  if (name.rfind(kTmpPrefix, 0) != 0) return -1;
  size_t dash = name.rfind('-');
  std::string step = name.substr(5, dash - 5), pid = name.substr(dash + 1);
  if (dash <= 5 || checkpoint_step(step) < 0 || !all_digits(pid) || pid.size() > 9) return -1;
  return std::stol(pid);
}

bool process_running(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

std::string checkpoint_name(int step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%07d", step);
  return buf;
}

int checkpoint_step(const std::string& name) {
  if (name.size() < 12 || name.rfind("step-", 0) != 0) return -1;
  std::string digits = name.substr(5);
  if (!all_digits(digits) || digits.size() > 9) return -1;
  return std::stoi(digits);
}

std::string begin_checkpoint(const std::string& run_dir, int step) {
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  fs::create_directories(ckpt);
  fs::path tmp = ckpt / (kTmpPrefix + checkpoint_name(step) + "-" + std::to_string(::getpid()));
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
    std::vector<std::string> names = step_dirs(ckpt);
    for (size_t i = keep; i < names.size(); i++) fs::remove_all(ckpt / names[i], ec);
  }
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  fs::path latest = ckpt / "latest";
  if (fs::exists(latest)) {
    std::string name = read_file(latest.string());
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
    if (checkpoint_step(name) < 0)
      bad_input(latest.string() + ": does not name a checkpoint (got '" + name.substr(0, 40) + "')");
    fs::path dir = ckpt / name;
    std::string why = incomplete_reason(dir);
    if (!why.empty()) bad_input(dir.string() + ": checkpoint is incomplete (" + why + ")");
    return dir.string();
  }
  // No `latest` (lost, or deleted by hand): the newest step directory that is whole.
  std::vector<std::string> names = step_dirs(ckpt);
  for (const std::string& n : names) {
    std::string why = incomplete_reason(ckpt / n);
    if (why.empty()) {
      log_warn("%s is missing: resuming from the newest complete checkpoint, %s", latest.c_str(), n.c_str());
      return (ckpt / n).string();
    }
    log_warn("%s: skipping incomplete checkpoint (%s)", (ckpt / n).c_str(), why.c_str());
  }
  if (!names.empty())
    bad_input(ckpt.string() + ": no complete checkpoint to resume from (" + std::to_string(names.size()) +
              " step directories, none whole); move them away or choose a new --out");
  return std::nullopt;
}

bool has_checkpoints(const std::string& run_dir) {
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  return fs::exists(ckpt / "latest") || !step_dirs(ckpt).empty();
}

StaleRemoval remove_stale_temporaries(const std::string& run_dir) {
  StaleRemoval r;
  fs::path ckpt = fs::path(run_dir) / "ckpt";
  std::error_code ec;
  std::vector<fs::path> stale;
  for (auto& e : fs::directory_iterator(ckpt, ec)) {
    long pid = temporary_owner(e.path().filename().string());
    if (pid < 0 || !e.is_directory() || (pid != ::getpid() && process_running(pid))) continue;
    stale.push_back(e.path());
  }
  for (const fs::path& p : stale) {
    for (auto& f : fs::recursive_directory_iterator(p, ec))
      if (f.is_regular_file(ec)) r.bytes += f.file_size(ec);
    fs::remove_all(p, ec);
    if (ec) bad_input(p.string() + ": cannot remove stale temporary checkpoint (" + ec.message() + ")");
    r.dirs++;
  }
  return r;
}

}  // namespace mindllm
