// mindllm train: pre-train or continue training a model on token shards.
#include "cli/command.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "train/trainer.h"

namespace mindllm::cli {

static int run_train(int argc, char** argv) {
  CLI::App app{"Train a decoder-only language model on token shards (<data>/train-*.bin, val-*.bin).\n"
               "Checkpoints go to <out>/ckpt/step-NNNNNNN (Hugging Face model dirs), metrics to <out>/metrics.jsonl.",
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
  app.add_flag("--ignore-tokenizer-mismatch", o.ignore_tokenizer_mismatch,
               "train although the shards' header names another tokenizer than the one given");
  parse_args(app, argc, argv);
  f.finish();
  print_train_summary(f, "train", run_training(o));
  return 0;
}

MINDLLM_COMMAND("train", "train a model on token shards (CPU or CUDA GPU; exact resume)", run_train);

}  // namespace mindllm::cli
