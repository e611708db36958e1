// mindllm convert: one-time conversion of a Hugging Face model directory (pytorch_model.bin,
// sharded safetensors or .bin, bf16/f16 weights, vocab.json + merges.txt tokenizers) into a
// mindllm model directory: config.json, one float32 model.safetensors, generation_config.json,
// tokenizer.json. Every command reads the original directory directly too; converting once saves
// the parsing and conversion on each load.
#include <cstdio>

#include "cli/command.h"
#include "cli/output.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/model.h"
#include "model/weights_io.h"

namespace mindllm::cli {

static int run_convert(int argc, char** argv) {
  CLI::App app{"Convert a Hugging Face model directory (.bin, sharded, bf16/f16) into a mindllm model directory.",
               "mindllm convert"};
  std::string model_dir, out, tokenizer_path;
  app.add_option("--model", model_dir, "Hugging Face model directory")->required();
  app.add_option("--out", out, "output model directory")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer (default: the model directory's)");
  OutputFlags output;
  add_output_flags(app, output);
  parse_args(app, argc, argv);
  check_output_dir(out, "--out");
  std::string weights;
  ModelConfig cfg = resolve_model_config(model_dir, &weights);
  if (weights.empty()) bad_input("--model " + model_dir + ": not a model directory");
  if (path_exists(out) && is_directory(out) && path_exists(out + "/config.json"))
    bad_input("--out " + out + ": already holds a model (config.json); choose a new directory");
  Model model(cfg);
  model.load_weights(weights);
  write_hf_dir(model, DType::f32, tokenizer_path.empty() ? weights : tokenizer_path, out);
  print_summary(output, "convert", "converted " + model_dir + " -> " + out + " (" + describe(cfg).c_str() + ")",
                {{"model", model_dir}, {"out", out}, {"config", describe(cfg)}});
  return 0;
}

MINDLLM_COMMAND("convert", "convert a Hugging Face model directory (.bin, sharded) into a mindllm directory",
                run_convert);

}  // namespace mindllm::cli
