#include "train/run_dir.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "model/lora_io.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace mindllm {

void truncate_metrics(const std::string& path, int last_step) {
  if (!path_exists(path)) return;
  std::string kept;
  for_each_jsonl_line(read_file(path), [&](std::string_view line, int) {
    try {
      if (json::parse(line).value("step", 0) > last_step) return;
    } catch (...) {
      return;  // a line cut short by a crash
    }
    kept.append(line).push_back('\n');
  });
  write_file_atomic(path, kept);
}

void prepare_run_dir(const TrainOptions& o) {
  if (path_exists(o.out) && !is_directory(o.out)) bad_input("--out " + o.out + ": exists and is not a directory");
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) bad_input("--out " + o.out + ": cannot create the run directory (" + ec.message() + ")");
  StaleRemoval removed = remove_stale_temporaries(o.out);
  if (removed.dirs > 0)
    log_info("removed %d stale temporary checkpoint director%s (%.1f MB) left by interrupted runs", removed.dirs,
             removed.dirs == 1 ? "y" : "ies", removed.bytes / 1e6);
  if (!o.resume && has_checkpoints(o.out))
    bad_input(o.out + ": already holds checkpoints; pass --resume to continue that run, or choose a new --out");
}

ResumeState read_trainer_state(const std::string& dir, const TrainOptions& o) {
  const std::string path = dir + "/trainer_state.json";
  json st;
  try {
    st = json::parse(read_file(path));
  } catch (const json::exception&) { bad_input(path + ": malformed trainer state (not JSON)"); }
  auto integer = [&](const char* key, int64_t lo, int64_t hi, bool required) -> int64_t {
    if (!st.is_object() || !st.contains(key)) {
      if (required) bad_input(path + ": no '" + key + "'");
      return 0;
    }
    const json& v = st[key];
    bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= (uint64_t)hi
                                           : v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range)
      bad_input(path + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got " + v.dump().substr(0, 40));
    return v.get<int64_t>();
  };
  ResumeState r;
  r.step = static_cast<int>(integer("step", 0, o.steps, true));
  int named = checkpoint_step(fs::path(dir).filename().string());
  if (named >= 0 && named != r.step)
    bad_input(path + ": step " + std::to_string(r.step) + " does not match the directory name");
  r.skipped = static_cast<int>(integer("skipped_steps", 0, r.step, false));
  if (st.contains("tokens_seen")) {
    if (!st["tokens_seen"].is_number() || !(st["tokens_seen"].get<double>() >= 0))
      bad_input(path + ": 'tokens_seen' must be a non-negative number");
    r.tokens_seen = st["tokens_seen"].get<double>();
  }
  if (st.contains("seed") && !(st["seed"].is_number_unsigned() && st["seed"].get<uint64_t>() == o.seed))
    bad_input("--seed " + std::to_string(o.seed) + " differs from the checkpoint's seed " +
              st["seed"].dump().substr(0, 40));
  return r;
}

void check_lora_checkpoint(const std::string& dir, const LoraLayout& want) {
  const PeftAdapterInfo a = read_peft_adapter_config(dir);
  const LoraConfig& c = want.cfg;
  if (a.cfg.rank != c.rank || a.cfg.scale() != c.scale() || a.cfg.dropout != c.dropout ||
      a.target_modules != want.peft_target_modules())
    bad_input(dir +
              "/adapter_config.json: the checkpoint's LoRA (r, lora_alpha, lora_dropout, target_modules) "
              "differs from --lora-rank/--lora-alpha/--lora-dropout/--lora-targets");
}

}  // namespace mindllm
