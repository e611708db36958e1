// mindllm quantize: a model directory to a quantised model directory (f16, bf16, q8_0, q4_0 or q4_k weights,
// llama.cpp's block formats; layout in model/quant_weights.h and docs/formats.md). generate,
// chat, serve and eval run it in that type; every other command reads it dequantised.
#include <cstdio>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "model/gguf_import.h"
#include "model/model.h"
#include "model/quant_weights.h"
#include "model/weights_io.h"

namespace mindllm::cli {

static int run_quantize(int argc, char** argv) {
  CLI::App app{"Write a quantised copy of a model directory (weights in f16, bf16, q8_0, q4_0 or q4_k blocks).",
               "mindllm quantize"};
  std::string model_dir, type, out, tokenizer_path;
  int threads = 0;
  app.add_option("--model", model_dir, "model directory (mindllm or Hugging Face layout) or GGUF file")->required();
  app.add_option("--type", type,
                 "f16 | bf16 | q8_0 | q4_0 | q4_k (q4_0 / q4_k keep the output projection in q8_0; q4_k rows not a "
                 "multiple of 256 are q4_0)")
      ->required()
      ->check(CLI::IsMember({"f16", "bf16", "q8_0", "q4_0", "q4_k"}));
  app.add_option("--out", out, "output model directory")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer to copy (default: the model directory's)");
  add_threads_option(app, threads);
  OutputFlags output;
  add_output_flags(app, output);
  parse_args(app, argc, argv);
  apply_threads(threads);
  check_output_dir(out, "--out");
  std::string weights;
  ModelConfig cfg = resolve_model_dir(model_dir, &weights);
  cpu::QuantType t;
  cpu::quant_type_from_name(type, &t);
  Model model(cfg);
  QuantBlocks blocks;  // a quantised source's blocks are kept as they are (model/quant_weights.h)
  if (is_gguf_path(weights)) {
    load_gguf_weights(model, weights, &blocks);
  } else {
    model.load_weights(weights);
    blocks = read_quant_blocks(weights);
  }
  check_weights_finite(model, weights, false, "");
  Progress progress("quantize", (double)model.params().size() * 4e-6, "MB", !output.quiet);
  write_quantized_dir(model, t, tokenizer_path.empty() ? weights : tokenizer_path, out, &progress, &blocks);
  progress.end();
  print_summary(output, "quantize", "quantized " + model_dir + " -> " + out + " (" + type + ")",
                {{"model", model_dir}, {"out", out}, {"type", type}});
  return 0;
}

MINDLLM_COMMAND("quantize", "write a quantised (f16 / bf16 / q8_0 / q4_0 / q4_k) copy of a model directory",
                run_quantize);

}  // namespace mindllm::cli
