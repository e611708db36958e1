// Checkpoints of a run directory: <run>/ckpt/step-NNNNNNN/ holds a Hugging Face model directory
// (config.json, model.safetensors, generation_config.json, tokenizer.json when known) plus
// optimizer.safetensors and trainer_state.json. <run>/ckpt/latest names the newest complete one.
// Each checkpoint is written under a temporary name, fsynced, then renamed, and `latest` is
// replaced atomically last: a crash never leaves a half checkpoint that looks whole.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace mindllm {

std::string checkpoint_name(int step);  // "step-0000100"

// Writes the checkpoint for `step` using `fill(dir)` to put files into a temporary directory,
// then publishes it. Keeps only the newest `keep` checkpoints when keep > 0.
template <typename Fill>
void write_checkpoint(const std::string& run_dir, int step, int keep, Fill fill);

// The directory named by <run>/ckpt/latest, if any; checks that it exists and is complete.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Internal pieces of write_checkpoint.
std::string begin_checkpoint(const std::string& run_dir, int step);
void publish_checkpoint(const std::string& run_dir, const std::string& tmp_dir, int step, int keep);

template <typename Fill>
void write_checkpoint(const std::string& run_dir, int step, int keep, Fill fill) {
  std::string tmp = begin_checkpoint(run_dir, step);
  fill(tmp);
  publish_checkpoint(run_dir, tmp, step, keep);
}

}  // namespace mindllm
