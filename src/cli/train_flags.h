// The optimizer, schedule, checkpoint and device flags that `train` and `sft` share.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "cli/output.h"
#include "train/trainer.h"

namespace mindllm::cli {

struct TrainFlags {
  TrainOptions options;
  std::string schedule = "cosine";
  OutputFlags output;  // --quiet, --json
  std::string lora_targets = "q,v";
  std::vector<CLI::Option*> lora_options;  // --lora-alpha, --lora-targets, --lora-dropout (need --lora-rank)
  // Call after parse_args: turns the string flags into options.
  void finish();
};

void add_train_flags(CLI::App& app, TrainFlags& f);
// --lora-rank, --lora-alpha, --lora-targets, --lora-dropout (sft).
void add_lora_flags(CLI::App& app, TrainFlags& f);

// The final summary of a `train` / `sft` run (output.h: a text line, or JSON with --json).
void print_train_summary(const TrainFlags& f, const std::string& command, const TrainResult& r);

}  // namespace mindllm::cli
