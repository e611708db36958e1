// mindllm train: pre-train or continue training a model on token shards.
#include "cli/command.h"
#include "cli/dist_job.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "train/trainer.h"

namespace mindllm::cli {

static int run_train(int argc, char** argv) {
  CLI::App app{
      "Train a decoder-only language model on token shards (<data>/train-*.bin, val-*.bin).\n"
      "Checkpoints go to <out>/ckpt/step-NNNNNNN (Hugging Face model dirs), metrics to <out>/metrics.jsonl.\n"
      "Data parallel: mpirun -np N mindllm train ... (global batch = --batch x --grad-accum x N; "
      "docs/distributed.md).",
      "mindllm train"};
  TrainFlags f;
  TrainOptions& o = f.options;
  app.add_option("--model", o.model, "preset name, config.json, or model directory to continue from")->required();
  app.add_option("--data", o.data, "directory of token shards")->required();
  app.add_option("--out", o.out, "run directory")->required();
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json to store in checkpoints (default: the model directory's, else "
                 "<data>/tokenizer.json); checked against the shards' tokenizer hash");
  add_train_flags(app, f);
  app.add_option("--zero", o.zero,
                 "1: ZeRO-1 under mpirun, the AdamW state sharded across the ranks (1/N of it per rank; "
                 "checkpoints hold all of it)")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  app.add_flag("--ignore-tokenizer-mismatch", o.ignore_tokenizer_mismatch,
               "train although the shards' header names another tokenizer than the one given");
  parse_args(app, argc, argv);
  f.finish();
  // Under `mpirun -np N`: data-parallel over N ranks (docs/distributed.md); rank 0 alone reports.
  return run_as_job("mindllm train", argc, argv, [&](dist::Communicator& job) {
    TrainResult r = run_training(o, &job);
    if (job.rank() == 0) print_train_summary(f, "train", r);
  });
}

MINDLLM_COMMAND("train", "train a model on token shards (CPU or CUDA GPU; exact resume)", run_train);

}  // namespace mindllm::cli
