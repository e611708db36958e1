// A training run's directory (--out): created and cleaned at start, metrics.jsonl cut back to the
// checkpoint a run resumes from, and the checks on what a resumed checkpoint holds.
#pragma once
#include <string>

#include "model/lora.h"
#include "train/trainer.h"

namespace mindllm {

// Keeps the metrics lines of steps <= last_step (a resumed run rewrites what came after).
void truncate_metrics(const std::string& path, int last_step);

// The run directory: created if needed; stale temporaries of killed runs removed; a fresh run
// refuses one that already holds checkpoints (it would overwrite them and metrics.jsonl).
void prepare_run_dir(const TrainOptions& o);

struct ResumeState {
  int step = 0, skipped = 0;
  double tokens_seen = 0;
};

// trainer_state.json of checkpoint `dir`, checked: its step is an integer that matches the
// directory's name and lies in [0, --steps]; the seed is the run's; skipped steps in [0, step].
ResumeState read_trainer_state(const std::string& dir, const TrainOptions& o);

// A LoRA checkpoint's adapter must be the one these flags train (same modules, rank, alpha, dropout).
void check_lora_checkpoint(const std::string& dir, const LoraLayout& want);

}  // namespace mindllm
