// mindllm chat: talk to a model in the terminal, rendered with its chat template (sft/), answers
// streamed from the inference engine. Ctrl-C stops the current answer; Ctrl-D or /quit ends.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "serve/generator.h"
#include "serve/stop_tokens.h"
#include "sft/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace mindllm::cli {

static int run_chat(int argc, char** argv) {
  CLI::App app{
      "Chat with a model in the terminal (its chat template; answers streamed).\n"
      "Type a message and Enter. /reset clears the history, /system TEXT sets the system message, "
      "/quit or Ctrl-D ends; Ctrl-C stops the current answer.",
      "mindllm chat"};
  std::string model_dir, tokenizer_path, template_name, system, prompt;
  int max_new = 512, threads = 0;
  uint64_t seed = 0;
  SamplingParams sp;
  sp.temperature = 0.7f;
  app.add_option("--model", model_dir, "model directory")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer (default: the model directory's)");
  app.add_option("--chat-template", template_name,
                 "builtin name (mindllm, chatml, llama2, llama3) or a .jinja / tokenizer_config.json file "
                 "(default: the model directory's template)");
  app.add_option("--system", system, "system message");
  auto* prompt_opt = app.add_option("--prompt", prompt, "one message: print the answer and exit (for scripts)");
  app.add_option("--max-new-tokens", max_new, "most tokens per answer")->check(positive())->capture_default_str();
  add_sampling_options(app, sp, seed);
  add_threads_option(app, threads);
  InferenceWeights how;
  add_inference_weights_options(app, how);
  bool allow_non_finite = false;
  app.add_flag("--allow-non-finite", allow_non_finite, "chat with a model whose weights hold NaN or infinities");
  OutputFlags output;  // with --prompt: --json prints the answer as one JSON object instead of streaming it
  add_output_flags(app, output);
  Device device = Device::cpu;
  add_device_option(app, device, "cpu | cuda (the GPU engine: fp32 weights, --precision bf16 for bf16 compute)");
  parse_args(app, argc, argv);
  if (device == Device::cuda) check_cuda_device();
  if (output.json && prompt_opt->count() == 0) bad_input("--json: only with --prompt (a one-shot answer)");
  apply_threads(threads);
  check_sampling_params(sp);

  std::string weights;
  ModelConfig cfg = resolve_model_dir(model_dir, &weights);
  Tokenizer tok = Tokenizer::load(tokenizer_path.empty() ? weights : tokenizer_path);
  sft::ChatTemplate tmpl = sft::ChatTemplate::resolve(template_name, weights);
  Model model(cfg);
  load_for_inference(model, weights, allow_non_finite, host_weights(how, device));
  std::unique_ptr<InferenceEngine> engine = make_engine(model, device, how.matmul);
  // The CPU's cache grows as needed; the GPU's pool is sized once: a conversation of up to the
  // model's positions (at most 4096 for rotary models).
  const int64_t positions = device == Device::cuda ? std::min(engine->max_length(), 4096) : 0;
  KvCache cache = engine->make_cache(16, positions, engine->kv_type());
  const std::vector<int32_t> stops = chat_stop_tokens(cfg, tok, tmpl);
  TokenText token_text = [&](int32_t id) {
    return tok.is_special(id) ? std::string() : std::string(tok.token_bytes(id));
  };
  install_interrupt_handler();

  const bool one_shot = prompt_opt->count() > 0, tty = isatty(0) && isatty(1);
  sft::Conversation history;
  auto answer = [&](const std::string& user) -> GenerationResult {
    sft::Conversation msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    msgs.insert(msgs.end(), history.begin(), history.end());
    msgs.push_back({"user", user});
    GenerationRequest req;
    req.prompt = tok.encode(tmpl.render(msgs, true));
    req.max_new_tokens = max_new;
    req.sampling = sp;
    req.seed = seed++;
    req.stop_tokens = stops;
    clear_interrupt();
    auto on_token = [&](int, int32_t, std::string_view text) {
      if (!output.json) std::fwrite(text.data(), 1, text.size(), stdout), std::fflush(stdout);
      return !interrupted();
    };
    GenerationResult r = generate(*engine, cache, std::span(&req, 1), token_text, on_token)[0];
    if (!output.json) std::printf("\n"), std::fflush(stdout);
    if (r.finish == FinishReason::context)
      std::fprintf(stderr, "chat: the conversation fills the model's context; /reset\n");
    if (r.finish == FinishReason::cancelled && interrupt_signal() == SIGTERM) std::exit(128 + SIGTERM);
    clear_interrupt();
    history.push_back({"user", user});
    history.push_back({"assistant", r.text});
    return r;
  };
  if (one_shot) {
    const GenerationResult r = answer(prompt);
    if (output.json)
      print_summary(output, "chat", "",
                    {{"text", r.text}, {"tokens", r.tokens.size()}, {"finish", finish_reason_name(r.finish)}});
    return 0;
  }
  std::string line;
  while (true) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      history.clear();
      std::puts("(history cleared)");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      system = line.size() > 8 ? line.substr(8) : "";
      history.clear();
      std::puts("(system message set; history cleared)");
      continue;
    }
    answer(line);
  }
  return 0;
}

MINDLLM_COMMAND("chat", "chat with a model in the terminal (chat template, streaming)", run_chat);

}  // namespace mindllm::cli
