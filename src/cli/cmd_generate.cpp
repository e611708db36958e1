// mindllm generate: sample a continuation from a model directory (plain full-context forward
// per token; the inference work makes this fast with a KV cache).
#include <omp.h>

#include <cstdio>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "core/error.h"
#include "model/model.h"
#include "serve/sampling.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::cli {

static std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string tok;
  std::istringstream in(s);
  while (in >> tok) {
    for (char& c : tok)
      if (c == ',') c = ' ';
    std::istringstream t(tok);
    std::string part;
    while (t >> part) {
      try {
        size_t pos = 0;
        long v = std::stol(part, &pos);
        if (pos != part.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(part);
        ids.push_back(static_cast<int32_t>(v));
      } catch (...) {
        bad_input("--prompt-ids: '" + part + "' is not a token id");
      }
    }
  }
  return ids;
}

static int run_generate(int argc, char** argv) {
  CLI::App app{"Generate tokens from a model directory.", "mindllm generate"};
  std::string model_dir, prompt_ids, prompt, tokenizer_path;
  int max_new = 64, threads = 0;
  uint64_t seed = 0;
  SamplingParams sp;
  bool stop_at_eos = true;
  app.add_option("--model", model_dir, "model directory (config.json + model.safetensors)")->required();
  auto* ids_opt = app.add_option("--prompt-ids", prompt_ids, "prompt token ids, space or comma separated");
  auto* text_opt = app.add_option("--prompt", prompt, "prompt text (needs a tokenizer); prints text");
  ids_opt->excludes(text_opt);
  app.add_option("--tokenizer", tokenizer_path, "tokenizer (default: the model directory's)");
  app.add_option("--max-new-tokens", max_new, "tokens to generate")->capture_default_str();
  app.add_option("--temperature", sp.temperature, "0 = greedy")->capture_default_str();
  app.add_option("--top-k", sp.top_k, "sample from the k most likely (0: off)")->capture_default_str();
  app.add_option("--top-p", sp.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  app.add_option("--seed", seed, "sampling seed")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0: all cores)")->capture_default_str();
  std::string precision = "fp32";
  add_precision_option(app, precision);
  app.add_flag("!--no-stop-at-eos", stop_at_eos, "keep going past the end-of-sequence token");
  parse_args(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  if (max_new < 0) bad_input("--max-new-tokens must be >= 0");
  if (sp.top_p <= 0.0f || sp.top_p > 1.0f) bad_input("--top-p must be in (0, 1]");
  std::string weights;
  ModelConfig cfg = resolve_model_config(model_dir, &weights);
  if (weights.empty()) bad_input("--model " + model_dir + ": not a model directory");
  Model model(cfg);
  model.load_weights(weights);
  model.set_matmul_precision(matmul_precision_from_name(precision));
  if (prompt_ids.empty() && text_opt->count() == 0) bad_input("give --prompt TEXT or --prompt-ids IDS");
  std::optional<Tokenizer> tok;
  std::vector<int32_t> ids;
  if (text_opt->count() > 0) {
    tok = Tokenizer::load(tokenizer_path.empty() ? weights : tokenizer_path);
    for (uint32_t id : tok->encode(prompt)) ids.push_back(static_cast<int32_t>(id));
    if (ids.empty()) bad_input("--prompt: empty prompt");
  } else {
    ids = parse_ids(prompt_ids);
    if (ids.empty()) bad_input("--prompt-ids: no ids given");
  }
  for (int32_t id : ids)
    if (id >= cfg.vocab_size) bad_input("prompt token " + std::to_string(id) + " is outside the model's vocabulary");
  // End of sequence: the config's eos_token_id, else the tokenizer's end-of-text token.
  int32_t eos = cfg.eos_token_id;
  if (eos < 0 && tok && tok->eos_id()) eos = static_cast<int32_t>(*tok->eos_id());
  Rng rng(seed);
  std::vector<int32_t> out;
  for (int i = 0; i < max_new; i++) {
    int T = static_cast<int>(ids.size());
    int start = cfg.learned_positions && T > cfg.max_positions ? T - cfg.max_positions : 0;
    model.forward(ids.data() + start, nullptr, 1, T - start);
    int32_t next = sample_token(model.logits() + (size_t)(T - start - 1) * cfg.vocab_size, cfg.vocab_size, sp, rng);
    ids.push_back(next);
    out.push_back(next);
    if (stop_at_eos && next == eos) break;
  }
  if (tok) {
    if (stop_at_eos && !out.empty() && out.back() == eos) out.pop_back();  // text ends before the EOS token
    std::vector<uint32_t> u(out.begin(), out.end());
    std::printf("%s%s\n", prompt.c_str(), tok->decode(u).c_str());
  } else {
    for (size_t i = 0; i < out.size(); i++) std::printf("%s%d", i ? " " : "", out[i]);
    std::printf("\n");
  }
  return 0;
}

MINDLLM_COMMAND("generate", "sample a continuation from a model directory", run_generate);

}  // namespace mindllm::cli
