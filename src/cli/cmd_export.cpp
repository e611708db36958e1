// mindllm export: a model directory (mindllm's, or any Hugging Face gpt2 / gpt_neo / llama / qwen2
// directory with safetensors, sharded safetensors or pytorch_model.bin) to a Hugging Face
// directory that transformers loads, or to a GGUF file that llama.cpp runs. See docs/interop.md.
#include <omp.h>

#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "model/gguf_export.h"
#include "model/gguf_import.h"
#include "model/lora_io.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::cli {

static int run_export(int argc, char** argv) {
  CLI::App app{"Export a model directory to a Hugging Face directory or a GGUF file (llama.cpp).", "mindllm export"};
  std::string model_dir, format, dtype = "", out, tokenizer_path, name, adapter;
  int threads = 0;
  bool merge_lora = false;
  app.add_option("--model", model_dir,
                 "model directory (mindllm or Hugging Face layout) or GGUF file; with --merge-lora the "
                 "base model (default: the adapter's base_model_name_or_path)");
  app.add_option("--format", format, "hf | gguf (default with --merge-lora: hf)");
  app.add_flag("--merge-lora", merge_lora, "merge the LoRA adapter of --adapter into the --model weights");
  app.add_option("--adapter", adapter, "PEFT adapter directory (a LoRA sft checkpoint) for --merge-lora");
  app.add_option(
      "--dtype,--type", dtype,
      "weights: f32 | f16 | bf16 (hf, default f32); f32 | f16 | bf16 | q8_0 | q4_0 | q4_k (gguf, default f16)");
  app.add_option("--out", out, "output directory (hf) or file (gguf)")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer (default: the model directory's)");
  app.add_option("--name", name, "general.name in GGUF (default: the model directory's name)");
  add_threads_option(app, threads);
  OutputFlags output;
  add_output_flags(app, output);
  parse_args(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  if (merge_lora != !adapter.empty())
    bad_input(merge_lora ? "--merge-lora needs --adapter DIR" : "--adapter needs --merge-lora");
  if (merge_lora && format.empty()) format = "hf";
  if (merge_lora && model_dir.empty()) {
    model_dir = read_peft_adapter_config(adapter).base_model;
    if (model_dir.empty())
      bad_input(adapter + "/adapter_config.json: no base_model_name_or_path: give --model BASE_DIR");
  }
  if (model_dir.empty()) bad_input("--model is required");
  if (format.empty()) bad_input("--format is required (hf or gguf)");
  if (format != "hf" && format != "gguf") bad_input("--format must be hf or gguf, got '" + format + "'");
  if (format == "hf") check_output_dir(out, "--out");
  else check_output_file(out, "--out");
  std::string weights;
  // A GGUF file (model/gguf_import.h) exports too: its tensors dequantised (GGUF -> Hugging Face).
  const bool from_gguf = is_gguf_path(model_dir);
  ModelConfig cfg = from_gguf ? resolve_model_dir(model_dir, &weights) : resolve_model_config(model_dir, &weights);
  if (weights.empty()) bad_input("--model " + model_dir + ": not a model directory");
  // A LoRA sft checkpoint carries the tokenizer and the chat template it was tuned with: prefer those.
  std::string tok_src = !tokenizer_path.empty()                          ? tokenizer_path
                        : merge_lora && !find_tokenizer(adapter).empty() ? find_tokenizer(adapter)
                                                                         : find_tokenizer(weights);
  auto load = [&](Model& model) {
    if (from_gguf) load_gguf_weights(model, weights);
    else model.load_weights(weights);
    if (!merge_lora) return;
    LoraLayout l = peft_adapter_layout(adapter, cfg, model.layout());
    LoraWeights w(l);
    load_peft_adapter(adapter, w);
    lora_merge(model.params().data(), w, model.layout().linear_layout);
    std::fprintf(stderr, "merged %s (r=%d, %zu modules) into %s\n", adapter.c_str(), l.cfg.rank, l.modules.size(),
                 model_dir.c_str());
  };
  if (format == "hf") {
    DType dt = DType::f32;
    if (dtype == "f16") dt = DType::f16;
    else if (dtype == "bf16") dt = DType::bf16;
    else if (!dtype.empty() && dtype != "f32")
      bad_input("--dtype for hf must be f32, f16 or bf16, got '" + dtype + "'");
    Model model(cfg);
    load(model);
    if (cfg.deepnorm || cfg.partial_rotary != 1.0f)
      std::fprintf(stderr,
                   "warning: %s uses mindllm_ options (DeepNorm or partial rotary) that transformers ignores; "
                   "the exported directory runs correctly in mindllm only\n",
                   model_dir.c_str());
    write_hf_dir(model, dt, tok_src, out);
    const std::string dt_name = dtype.empty() ? "f32" : dtype;
    print_summary(output, "export", "exported " + model_dir + " -> " + out + " (Hugging Face, " + dt_name + ")",
                  {{"model", model_dir}, {"out", out}, {"format", "hf"}, {"dtype", dt_name}});
    return 0;
  }
  GGUFExportOptions opt;
  if (dtype.empty() || dtype == "f16") opt.type = GGMLType::f16;
  else if (dtype == "f32") opt.type = GGMLType::f32;
  else if (dtype == "bf16") opt.type = GGMLType::bf16;
  else if (dtype == "q8_0") opt.type = GGMLType::q8_0;
  else if (dtype == "q4_0") opt.type = GGMLType::q4_0;
  else if (dtype == "q4_k") opt.type = GGMLType::q4_k;
  else bad_input("--dtype for gguf must be f32, f16, bf16, q8_0, q4_0 or q4_k, got '" + dtype + "'");
  if (tok_src.empty())
    bad_input("--model " + model_dir +
              ": no tokenizer (tokenizer.json or vocab.json + merges.txt); GGUF needs one, give --tokenizer");
  Tokenizer tok = Tokenizer::load(tok_src);
  opt.name = name.empty() ? std::filesystem::path(model_dir).lexically_normal().filename().string() : name;
  if (opt.name.empty())
    opt.name = std::filesystem::path(model_dir).lexically_normal().parent_path().filename().string();
  opt.chat_template = find_chat_template(!tokenizer_path.empty() ? tokenizer_path : merge_lora ? adapter : weights);
  if (!opt.chat_template && !tokenizer_path.empty()) opt.chat_template = find_chat_template(weights);
  Model model(cfg);
  load(model);
  Progress progress("export", (double)model.params().size() * 4e-6, "MB", !output.quiet);
  opt.progress = &progress;
  export_gguf(model, tok, opt, out);
  progress.end();
  print_summary(output, "export",
                "exported " + model_dir + " -> " + out + " (GGUF v3, " + ggml_type_name(opt.type) + ")",
                {{"model", model_dir}, {"out", out}, {"format", "gguf"}, {"dtype", ggml_type_name(opt.type)}});
  return 0;
}

MINDLLM_COMMAND("export", "export a model to a Hugging Face directory or GGUF (llama.cpp)", run_export);

}  // namespace mindllm::cli
