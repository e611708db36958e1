// Checkpoints of a run directory: <run>/ckpt/step-NNNNNNN/ holds a Hugging Face model directory
// (config.json, model.safetensors, generation_config.json, tokenizer.json when known), or for a
// LoRA run a PEFT adapter directory (adapter_config.json, adapter_model.safetensors), plus
// optimizer.safetensors and trainer_state.json. <run>/ckpt/latest names the newest complete one.
// Each checkpoint is written under a temporary name (ckpt/.tmp-step-NNNNNNN-PID), fsynced, then
// renamed, and `latest` is replaced atomically last: a crash never leaves a half checkpoint that
// looks whole.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace mindllm {

std::string checkpoint_name(int step);  // "step-0000100"
// The step of a checkpoint directory name ("step-0000100" -> 100); -1 for any other name.
int checkpoint_step(const std::string& name);

// Writes the checkpoint for `step` using `fill(dir)` to put files into a temporary directory,
// then publishes it. Keeps only the newest `keep` checkpoints when keep > 0.
template <typename Fill>
void write_checkpoint(const std::string& run_dir, int step, int keep, Fill fill);

// The checkpoint a resumed run starts from: the one <run>/ckpt/latest names (it must exist and be
// complete, else bad input), or without `latest` the newest step directory that is complete (all
// its files present and parseable; older ones are tried in turn, each skip logged). Empty when the
// run has no checkpoint at all; bad input when it has step directories but none is complete.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Whether <run>/ckpt holds a checkpoint or a `latest` pointer (a fresh run must not overwrite it).
bool has_checkpoints(const std::string& run_dir);

// Removes the temporary checkpoint directories (ckpt/.tmp-step-NNNNNNN-PID) that killed runs left
// in this run directory, except those of a process that is still running. Returns how many.
struct StaleRemoval {
  int dirs = 0;
  uint64_t bytes = 0;
};
StaleRemoval remove_stale_temporaries(const std::string& run_dir);

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
