// mindllm sft: instruction tuning of a model directory on chat data, with the train command's
// loop, flags and run-directory layout (docs/sft.md).
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/train_flags.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "model/config.h"
#include "sft/chat_template.h"
#include "sft/sft_batches.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace mindllm::cli {

namespace {

// tokenizer_config.json for the checkpoints: the chat template the model was tuned with, so
// chat, serve and transformers' apply_chat_template render conversations the same way.
std::string tokenizer_config(const sft::ChatTemplate& t) {
  nlohmann::json j = {{"chat_template", t.source()}, {"tokenizer_class", "PreTrainedTokenizerFast"}};
  if (!t.bos_token().empty()) j["bos_token"] = t.bos_token();
  if (!t.eos_token().empty()) j["eos_token"] = t.eos_token();
  return j.dump(2) + "\n";
}

void dry_run(const sft::SftData& d, const Tokenizer& tok, int n) {
  bool color = isatty(1);
  for (int i = 0; i < n && i < (int)d.train.size(); i++) {
    const sft::TokenizedSample& s = d.train[i];
    std::printf("=== sample %d: %zu tokens, %lld trained%s\n", i + 1, s.ids.size(), (long long)s.count_trained(),
                color ? " (trained in green)" : " (trained between [[ ]])");
    std::printf("%s\n", sft::show_trained(tok, s, color).c_str());
  }
}

// --dry-run --packing: the first windows of the first epoch, a line per sample in each.
void dry_run_packed(const sft::SftData& d, const Tokenizer& tok, int seq, uint64_t seed, int n) {
  const std::vector<sft::Window> windows = sft::pack_first_fit(d.train, sft::epoch_order(d.train.size(), seed, 0), seq);
  int64_t used = 0;
  for (const sft::Window& w : windows) used += sft::window_length(d.train, w);
  std::printf("packing: %zu samples into %zu windows of %d positions (%.1f%% used)\n", d.train.size(), windows.size(),
              seq, windows.empty() ? 0.0 : 100.0 * (double)used / ((double)windows.size() * seq));
  for (int i = 0; i < n && i < (int)windows.size(); i++) {
    std::printf("=== window %d: %zu samples, %d of %d positions\n", i + 1, windows[i].size(),
                sft::window_length(d.train, windows[i]), seq);
    int pos = 0;
    for (uint32_t k : windows[i]) {
      const sft::TokenizedSample& s = d.train[k];
      const int len = static_cast<int>(s.ids.size()) - 1;
      std::string text = sft::show_trained(tok, s, false);
      for (char& c : text)
        if (c == '\n') c = ' ';
      if (text.size() > 100) {  // cut at a UTF-8 character boundary
        size_t cut = 100;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) cut--;
        text = text.substr(0, cut) + "...";
      }
      std::printf("  positions %d-%d: sample %u (%d tokens, %lld trained): %s\n", pos, pos + len - 1, k, len + 1,
                  (long long)s.count_trained(), text.c_str());
      pos += len;
    }
  }
}

int run_sft(int argc, char** argv) {
  CLI::App app{
      "Instruction-tune a model directory on chat data (Alpaca, ShareGPT or OpenAI messages; JSON or JSONL).\n"
      "The loss is on the assistant turns of the rendered chat template. Checkpoints go to "
      "<out>/ckpt/step-NNNNNNN, metrics to <out>/metrics.jsonl, as with `mindllm train`.",
      "mindllm sft"};
  TrainFlags f;
  TrainOptions& o = f.options;
  o.schedule.lr = 2e-5f;
  o.schedule.warmup = 0;
  o.adamw.weight_decay = 0.0f;
  o.seq = 1024;
  sft::SftDataOptions d;
  std::string format = "auto", chat_template, loss_on;
  bool train_on_prompt = false, last_turn_only = false, dry = false, packing = false;
  int dry_samples = 3;
  std::string dump;
  app.add_option("--model", o.model, "model directory to fine-tune (a mindllm checkpoint or a Hugging Face dir)")
      ->required();
  app.add_option("--data", d.data, "instruction data: FILE[:WEIGHT][,FILE[:WEIGHT]...] (JSON or JSONL, .gz/.zst)")
      ->required();
  app.add_option("--out", o.out, "run directory");
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.json (default: the model directory's)");
  app.add_option("--format", format, "auto | alpaca | sharegpt | messages")->capture_default_str();
  app.add_option("--chat-template", chat_template,
                 "builtin name (mindllm, chatml, llama2, llama3) or a .jinja / tokenizer_config.json file "
                 "(default: the model directory's template)");
  app.add_flag("--train-on-prompt", train_on_prompt, "loss on every token, not only the assistant turns");
  app.add_flag("--last-turn-only", last_turn_only, "loss only on the last assistant turn of each conversation");
  app.add_flag("--drop-long", d.drop_long, "drop samples longer than --seq + 1 tokens instead of truncating them");
  app.add_flag("--packing", packing,
               "pack samples into --seq windows (first fit in data order); each sample keeps its own positions "
               "and attends only to itself");
  app.add_flag("--strict", d.strict, "a sample that cannot be used is an error (default: skipped and counted)");
  app.add_option("--val-data", d.val_data, "validation files (default: --val-fraction of each training file)");
  app.add_option("--val-fraction", d.val_fraction, "fraction of each file held out for validation")
      ->check(number_in(0, 1, false, true))
      ->capture_default_str();
  app.add_flag("--dry-run", dry,
               "print the first samples with their trained tokens marked, and the data counts; no training");
  app.add_option("--dry-run-samples", dry_samples, "samples --dry-run prints")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--dump-samples", dump,
                 "write the training samples as JSONL ({\"ids\", \"trained\"} per sample, weights applied)");
  app.add_option("--neftune-alpha", o.neftune_alpha,
                 "NEFTune: uniform noise of size alpha/sqrt(seq*hidden) on the input embeddings while training "
                 "(0: off; the paper uses 5)")
      ->check(non_negative())
      ->capture_default_str();
  add_train_flags(app, f);
  add_lora_flags(app, f);
  parse_args(app, argc, argv);
  f.finish();
  if (!dry && o.out.empty()) bad_input("--out is required (unless --dry-run)");
  if (train_on_prompt && last_turn_only) bad_input("--train-on-prompt and --last-turn-only exclude each other");
  d.format = sft::sft_format_from_name(format);
  d.loss_on = train_on_prompt  ? sft::LossOn::all
              : last_turn_only ? sft::LossOn::last_assistant
                               : sft::LossOn::assistant;
  d.seq = o.seq;
  d.seed = o.seed;
  if (o.seq < 1) bad_input("--seq must be at least 1");
  if (packing && o.attention == "cudnn")
    bad_input("--packing needs --attention flash (cuDNN's kernels take no segments)");

  if (!o.out.empty()) check_output_dir(o.out, "--out");
  if (!dump.empty()) check_output_file(dump, "--dump-samples");
  for (const std::string* spec : {&d.data, &d.val_data})
    if (!spec->empty())
      for (const sft::SftSource& src : sft::parse_sft_sources(*spec)) {
        if (!path_exists(src.path)) bad_input(src.path + ": no such file");
        if (is_directory(src.path)) bad_input(src.path + ": is a directory, expected a file");
      }
  TrainModel tm;
  tm.config = resolve_model_config(o.model, &tm.weights_dir);
  if (tm.weights_dir.empty()) bad_input("--model " + o.model + ": sft needs a model directory with weights");
  check_lora(o, tm.config);  // before the data is read: a bad --lora-* flag is named first
  std::string tok_path = !o.tokenizer.empty() ? o.tokenizer : tm.weights_dir + "/tokenizer.json";
  if (!path_exists(tok_path)) bad_input(tok_path + ": no tokenizer (pass --tokenizer FILE)");
  Tokenizer tok = Tokenizer::load(tok_path);
  if (tok.vocab_size() > (size_t)tm.config.vocab_size)
    bad_input(tok_path + ": the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, more than the model's " +
              std::to_string(tm.config.vocab_size));
  sft::ChatTemplate tmpl = sft::ChatTemplate::resolve(chat_template, tm.weights_dir);
  sft::SftData data = sft::prepare_sft_data(d, tmpl, tok);
  log_info("data: %s; chat template %s", data.summary().c_str(), tmpl.name().c_str());
  for (const std::string& e : data.report.examples) log_info("  skipped %s", e.c_str());
  if (!dump.empty()) {
    std::string text;
    for (const sft::TokenizedSample& s : data.train)
      text += nlohmann::json{{"ids", s.ids}, {"trained", s.trained}}.dump() + "\n";
    write_file_atomic(dump, text);
  }
  if (dry) {
    if (packing) dry_run_packed(data, tok, o.seq, o.seed, dry_samples);
    else dry_run(data, tok, dry_samples);
    return 0;
  }
  tm.tokenizer_json = tok.to_json();
  tm.files.push_back({"tokenizer_config.json", tokenizer_config(tmpl)});
  sft::SftBatches batches(std::move(data.train), std::move(data.val), o.seed, o.batch, o.grad_accum, o.eval_batches,
                          packing, o.seq);
  print_train_summary(f, "sft", train(o, tm, batches));
  return 0;
}

}  // namespace

MINDLLM_COMMAND("sft", "instruction-tune a model on chat data (assistant-only loss, chat templates)", run_sft);

}  // namespace mindllm::cli
