// mindllm generate: sample a continuation from a model directory on the inference engine (K/V
// cache: each token costs one position, not the whole context), streamed to stdout as it comes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/profile.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/quant_weights.h"
#include "model/weights_io.h"
#include "serve/generator.h"
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
      } catch (...) { bad_input("--prompt-ids: '" + part + "' is not a token id"); }
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
  app.add_option("--max-new-tokens", max_new, "tokens to generate (at least 1)")
      ->check(positive())
      ->capture_default_str();
  add_sampling_options(app, sp, seed);
  add_threads_option(app, threads);
  InferenceWeights how;
  add_inference_weights_options(app, how);
  app.add_flag("!--no-stop-at-eos", stop_at_eos,
               "keep going past the end-of-sequence token (config.json's eos_token_id, else the tokenizer's "
               "end-of-text token)");
  bool allow_non_finite = false;
  app.add_flag("--allow-non-finite", allow_non_finite, "generate from a model whose weights hold NaN or infinities");
  std::vector<std::string> stop_strings;
  app.add_option("--stop", stop_strings, "stop before this text (repeatable; needs a tokenizer)");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "print token counts and the decode speed on stderr");
  OutputFlags output;  // --json: no streaming; the ids (and text), counts and speeds as one JSON object
  add_output_flags(app, output);
  std::optional<KvType> kv_cache;
  add_kv_cache_option(app, kv_cache);
  Device device = Device::cpu;
  add_device_option(app, device, "cpu | cuda (the GPU engine: fp32 weights, --precision bf16 for bf16 compute)");
  parse_args(app, argc, argv);
  if (device == Device::cuda) check_cuda_device();
  apply_threads(threads);
  check_sampling_params(sp);
  std::string weights;
  ModelConfig cfg = resolve_model_dir(model_dir, &weights);
  if (prompt_ids.empty() && text_opt->count() == 0) bad_input("give --prompt TEXT or --prompt-ids IDS");
  std::optional<Tokenizer> tok;
  GenerationRequest req;
  if (text_opt->count() > 0) {
    tok = Tokenizer::load(tokenizer_path.empty() ? weights : tokenizer_path);
    req.prompt = tok->encode(prompt);
    if (req.prompt.empty()) bad_input("--prompt: empty prompt");
  } else {
    req.prompt = parse_ids(prompt_ids);
    if (req.prompt.empty()) bad_input("--prompt-ids: no ids given");
    // The tokenizer still names the end-of-text token when the config does not.
    std::string tp = tokenizer_path.empty() ? weights + "/tokenizer.json" : tokenizer_path;
    if (!tokenizer_path.empty() || std::filesystem::exists(tp)) tok = Tokenizer::load(tp);
  }
  check_token_ids(req.prompt, cfg.vocab_size, "prompt", false);
  Model model(cfg);
  load_for_inference(model, weights, allow_non_finite, host_weights(how, device));
  // End of sequence: the config's eos_token_id, else the tokenizer's end-of-text token.
  int32_t eos = cfg.eos_token_id;
  if (eos < 0 && tok && tok->eos_id()) eos = static_cast<int32_t>(*tok->eos_id());
  if (stop_at_eos && eos >= 0) req.stop_tokens.push_back(eos);
  req.max_new_tokens = max_new;
  req.sampling = sp;
  req.seed = seed;
  req.stop_strings = stop_strings;
  const bool text_out = text_opt->count() > 0;
  if (!req.stop_strings.empty() && !tok)
    bad_input("--stop needs a tokenizer (--tokenizer, or one in the model directory)");
  TokenText token_text;
  if (tok)
    token_text = [&](int32_t id) { return tok->is_special(id) ? std::string() : std::string(tok->token_bytes(id)); };

  std::unique_ptr<InferenceEngine> engine = make_engine(model, device, how.matmul);
  const KvType kv = kv_cache.value_or(engine->kv_type());
  // The CPU's cache grows as needed; the GPU's pool is sized once (the prompt and every new token).
  const int64_t positions =
      device == Device::cuda ? std::min<int64_t>((int64_t)req.prompt.size() + max_new, engine->max_length()) : 0;
  KvCache cache = engine->make_cache(16, positions, kv);
  install_interrupt_handler();
  const bool stream = !output.json;
  if (text_out && stream) std::fputs(prompt.c_str(), stdout);
  int count = 0;
  std::chrono::steady_clock::time_point t_first;  // the first new token: the prompt's prefill ends
  int n_new = 0;
  auto on_token = [&](int, int32_t id, std::string_view text) {
    if (n_new++ == 0) t_first = std::chrono::steady_clock::now();
    if (!stream) {
      return !interrupted();
    } else if (text_out) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {  // ids, the end-of-sequence token included (it says why generation ended)
      std::printf("%s%d", count++ ? " " : "", id);
    }
    std::fflush(stdout);
    return !interrupted();
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<GenerationResult> res = generate(*engine, cache, std::span(&req, 1), token_text, on_token);
  const auto t1 = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  if (stream) std::printf("\n");
  std::fflush(stdout);
  const GenerationResult& r = res[0];
  if (r.finish == FinishReason::context)
    std::fprintf(stderr, "generate: stopped at the model's %d positions\n", cfg.max_positions);
  const double pre = n_new > 0 ? std::chrono::duration<double>(t_first - t0).count() : secs;
  const double dec = n_new > 0 ? std::chrono::duration<double>(t1 - t_first).count() : 0.0;
  // The weights the engine multiplied by: a quantised or 16-bit type (a file's own, or --weights), else f32.
  const char* weights_type = model.quantized() ? cpu::quant_type_name(model.quantized()->type) : "f32";
  if (output.json) {
    nlohmann::json s = {{"weights", weights_type}, {"prompt_tokens", req.prompt.size()},
                        {"tokens", r.tokens},      {"finish", finish_reason_name(r.finish)},
                        {"seconds", secs},         {"tokens_per_s", secs > 0 ? r.tokens.size() / secs : 0.0},
                        {"prefill_seconds", pre}};
    if (text_out) s["text"] = r.text;
    if (n_new > 1) s["decode_tokens_per_s"] = (n_new - 1) / dec;
    print_summary(output, "generate", "", s);
  }
  if (verbose)
    std::fprintf(stderr, "generate: %s weights, %zu prompt + %zu new tokens in %.2f s (%.1f tokens/s), finish: %s\n",
                 weights_type, req.prompt.size(), r.tokens.size(), secs, secs > 0 ? r.tokens.size() / secs : 0.0,
                 finish_reason_name(r.finish));
  if (verbose && n_new > 1) {
    std::fprintf(stderr,
                 "generate: prefill %zu tokens in %.3f s (%.1f tokens/s), decode %d tokens in %.3f s (%.2f tokens/s)\n",
                 req.prompt.size(), pre, req.prompt.size() / pre, n_new - 1, dec, (n_new - 1) / dec);
  }
  if (profile_enabled()) std::fputs(profile_report().c_str(), stderr);
  if (r.finish == FinishReason::cancelled) return 128 + interrupt_signal();
  return 0;
}

MINDLLM_COMMAND("generate", "sample a continuation from a model directory", run_generate);

}  // namespace mindllm::cli
