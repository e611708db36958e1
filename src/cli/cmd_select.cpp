// mindllm select: entropy-based selection of instruction data (docs/sft-selection.md).
//   select score  the base model's statistics over each sample's response tokens -> scores.jsonl
//   select pick   a subset by score band / target / top-k / random, stratified, deduplicated,
//                 with tag quotas (cmd_select_pick.cpp)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <unistd.h>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "kernels/cpu/linear_bf16.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "sft/chat_template.h"
#include "sft/select_pool.h"
#include "sft/select_score.h"
#include "tokenizer/tokenizer.h"

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace mindllm::cli {

int run_select_pick(int argc, char** argv);  // cmd_select_pick.cpp

namespace {

struct ScoreFlags {
  std::string model, out, tokenizer, format = "auto", chat_template, statistic = "ce", tag_rules, tag_field;
  std::vector<std::string> data;
  Device device = Device::cpu;
  int batch = 8, threads = 0, max_length = 0;
  int64_t max_batches = -1;
  bool bf16 = false, resume = false, no_ifd = false, allow_non_finite = false, forward_only = false;
  OutputFlags output;
};

// What a resumed run must share with the run it continues (else its lines would mix two setups).
json run_settings(const ScoreFlags& f, int max_length) {
  return {{"model", std::filesystem::weakly_canonical(f.model).string()},
          {"data", f.data},
          {"format", f.format},
          {"chat_template", f.chat_template},
          {"tokenizer", f.tokenizer},
          {"score", f.statistic},
          {"ifd", !f.no_ifd},
          {"max_length", max_length},
          {"batch", f.batch},
          {"bf16", f.bf16},
          {"tag_rules", f.tag_rules},
          {"tag_field", f.tag_field}};
}

// The complete lines of a partial scores file (a torn last line, from a crash mid-write, is cut
// off the file) and the keys they hold.
std::set<std::string> read_partial(const std::string& path) {
  std::string text = read_file(path);
  const size_t end = text.rfind('\n');
  const size_t keep = end == std::string::npos ? 0 : end + 1;
  if (keep < text.size()) {
    if (truncate(path.c_str(), (off_t)keep) != 0) bad_input(path + ": cannot cut the torn last line");
    text.resize(keep);
  }
  std::set<std::string> keys;
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    line++;
    json j;
    try {
      j = json::parse(text.substr(pos, nl - pos));
    } catch (const json::parse_error&) {
      bad_input(path + ":" + std::to_string(line) + ": not a JSON line (delete the file to start over)");
    }
    if (!j.is_object() || !j.contains("source") || !j["source"].is_string() || !j.contains("id"))
      bad_input(path + ":" + std::to_string(line) + ": not a scores line (delete the file to start over)");
    keys.insert(sft::sample_key(j["source"].get<std::string>(), j["id"]));
    pos = nl + 1;
  }
  return keys;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

ojson score_line(const sft::PoolSample& s, const sft::TokenStats& with, const sft::TokenStats* without,
                 int64_t seq_tokens, bool truncated, const std::string& statistic) {
  const double n = (double)with.n_tokens;
  const double ce = with.ce_sum / n, ent = with.entropy_sum / n;
  double ifd = NAN, ce_without = NAN;
  if (without && without->n_tokens > 0) {
    ce_without = without->ce_sum / (double)without->n_tokens;
    if (ce_without > 0) ifd = ce / ce_without;
  }
  const double score = statistic == "entropy" ? ent : statistic == "ifd" ? ifd : ce;
  ojson j;
  j["id"] = s.id;
  j["score"] = number_or_null(score);
  j["ce_mean"] = number_or_null(ce);
  j["entropy_mean"] = number_or_null(ent);
  j["ce_sum"] = with.ce_sum;
  j["entropy_sum"] = with.entropy_sum;
  j["n_tokens"] = with.n_tokens;
  j["ifd"] = number_or_null(ifd);
  j["source"] = s.source;
  j["lang"] = s.lang;
  j["tags"] = s.tags;
  j["seq_tokens"] = seq_tokens;
  j["truncated"] = truncated;
  j["ce_mean_without_instruction"] = number_or_null(ce_without);
  return j;
}

int run_score(int argc, char** argv) {
  CLI::App app{
      "Score instruction samples with a base model: per sample, over its response tokens (the tokens `sft` "
      "trains on), the mean cross-entropy (the default score), the mean predictive entropy, their sums, "
      "the token count and the IFD ratio. One JSON line per sample.",
      "mindllm select score"};
  ScoreFlags f;
  app.add_option("--model", f.model, "base model directory")->required();
  app.add_option("--data", f.data,
                 "instruction data files (Alpaca, ShareGPT or OpenAI messages; JSON or JSONL, .gz/.zst)")
      ->required()
      ->expected(1, -1);
  app.add_option("--out", f.out, "scores file (JSONL)")->required();
  app.add_option("--tokenizer", f.tokenizer, "tokenizer.json (default: the model directory's)");
  app.add_option("--format", f.format, "auto | alpaca | sharegpt | messages")->capture_default_str();
  app.add_option("--chat-template", f.chat_template,
                 "builtin name (mindllm, chatml, llama2, llama3) or a .jinja / tokenizer_config.json file "
                 "(default: the model directory's template)");
  app.add_option("--score", f.statistic,
                 "the statistic written as \"score\": ce (mean response cross-entropy) | "
                 "entropy (mean predictive entropy) | ifd")
      ->check(CLI::IsMember({"ce", "entropy", "ifd"}))
      ->capture_default_str();
  app.add_flag("--no-ifd", f.no_ifd, "skip the no-instruction pass (ifd: null; halves the work)");
  app.add_option("--batch", f.batch, "samples per forward batch (sorted by length)")
      ->check(number_in(1, 65536))
      ->capture_default_str();
  app.add_option("--max-length", f.max_length,
                 "longest sequence scored; longer samples are cut (default: the model's "
                 "max_position_embeddings)")
      ->check(number_in(2, 1 << 24));
  add_threads_option(app, f.threads);
  add_device_option(app, f.device);
  app.add_flag("--bf16", f.bf16, "bf16 matrix multiplies with fp32 accumulation (cuda; on the CPU where it has them)");
  app.add_flag("--resume", f.resume, "continue an interrupted run: keep the scored samples of OUT.partial");
  app.add_option("--tag-rules", f.tag_rules, "tag rules file (JSON; default: the built-in rules)");
  app.add_option("--tag-field", f.tag_field, "take each sample's tags from this field instead of rules");
  app.add_flag("--allow-non-finite", f.allow_non_finite, "score with a model whose weights hold NaN or infinities");
  add_output_flags(app, f.output);
  app.add_option("--max-batches", f.max_batches,
                 "stop after scoring this many batches, as if interrupted (a run in slices; continue with --resume)")
      ->check(number_in(1, 1e15));
  app.add_flag("--forward-only", f.forward_only, "benchmark helper: run the forward passes only, write nothing");
  parse_args(app, argc, argv);
  if (f.device == Device::cuda) sft::check_cuda_scoring();
  std::string why;
  if (f.device == Device::cpu && f.bf16 && !cpu::bf16_gemm_available(&why))
    bad_input("--bf16: bf16 matrix multiplies are not available on this CPU: " + why);
  if (f.statistic == "ifd" && f.no_ifd) bad_input("--score ifd needs the no-instruction pass (drop --no-ifd)");
  if (!f.tag_rules.empty() && !f.tag_field.empty()) bad_input("--tag-rules and --tag-field exclude each other");
  for (const std::string& p : f.data) {
    if (!path_exists(p)) bad_input("--data " + p + ": no such file");
    if (is_directory(p)) bad_input("--data " + p + ": is a directory, expected a file");
  }
  if (std::set<std::string>(f.data.begin(), f.data.end()).size() != f.data.size())
    bad_input("--data: a file is given twice");
  check_output_file(f.out, "--out");
  const std::string partial = f.out + ".partial", partial_settings = f.out + ".partial.json";
  if (!f.resume && path_exists(partial) && !f.forward_only)
    bad_input(partial + " holds an interrupted run: pass --resume to continue it, or delete it");
  apply_threads(f.threads);

  std::string weights;
  ModelConfig cfg = resolve_model_dir(f.model, &weights);
  const std::string tok_path = !f.tokenizer.empty() ? f.tokenizer : weights;
  Tokenizer tok = Tokenizer::load(tok_path);
  if (tok.vocab_size() > (size_t)cfg.vocab_size)
    bad_input(tok_path + ": the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens, more than the model's " +
              std::to_string(cfg.vocab_size));
  sft::ChatTemplate tmpl = sft::ChatTemplate::resolve(f.chat_template, weights);
  const int max_length = f.max_length > 0 ? f.max_length : cfg.max_positions;
  if (cfg.learned_positions && max_length > cfg.max_positions)
    bad_input("--max-length " + std::to_string(max_length) + ": the model has " + std::to_string(cfg.max_positions) +
              " positions");
  const json settings = run_settings(f, max_length);
  if (f.resume && path_exists(partial_settings) && json::parse(read_file(partial_settings), nullptr, false) != settings)
    bad_input("--resume: " + partial + " was written with other settings (" + partial_settings +
              "); rerun with those or delete it");

  sft::TagRules rules =
      f.tag_rules.empty() ? sft::builtin_tag_rules() : sft::parse_tag_rules(read_file(f.tag_rules), f.tag_rules);
  sft::PoolOptions po{sft::sft_format_from_name(f.format), f.tag_field, f.tag_field.empty() ? &rules : nullptr};
  sft::Pool pool = sft::load_pool(f.data, po);
  log_info("data: %s", pool.report.summary().c_str());
  for (const std::string& e : pool.report.examples) log_info("  skipped %s", e.c_str());

  // Tokens of every sample, with and without its instruction.
  struct Job {
    size_t sample;
    sft::TokenizedSample with, without;
    bool truncated = false;
  };
  std::vector<Job> jobs;
  int64_t no_response = 0;
  for (size_t i = 0; i < pool.samples.size(); i++) {
    Job j{i, {}, {}};
    j.with = sft::tokenize_for_scoring(tmpl, tok, pool.samples[i].conv, max_length, &j.truncated);
    if (j.with.count_trained() == 0) {
      no_response++;  // the response lies past --max-length
      continue;
    }
    if (!f.no_ifd) {
      bool cut = false;
      j.without =
          sft::tokenize_for_scoring(tmpl, tok, sft::without_instruction(pool.samples[i].conv), max_length, &cut);
    }
    jobs.push_back(std::move(j));
  }
  if (no_response)
    log_warn("%lld samples have no response token within %d tokens: not scored", (long long)no_response, max_length);
  if (jobs.empty()) bad_input("--data: no sample to score (" + pool.report.summary() + ")");
  // Longest first, ties in pool order: the batches depend only on the pool, so a resumed run
  // computes each batch exactly as an uninterrupted one does.
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return jobs[a].with.ids.size() > jobs[b].with.ids.size(); });

  std::set<std::string> done;
  if (f.resume && path_exists(partial)) done = read_partial(partial);
  else if (f.resume && path_exists(f.out)) {
    write_file_atomic(partial, read_file(f.out));  // a finished file: continue from it as from a partial one
    done = read_partial(partial);
  }
  FILE* out = nullptr;
  if (!f.forward_only) {
    write_file_atomic(partial_settings, settings.dump(2) + "\n");
    out = std::fopen(partial.c_str(), done.empty() ? "w" : "a");
    if (!out) bad_input(partial + ": cannot write");
  }

  Model model(cfg);
  const bool cuda = f.device == Device::cuda;
  load_for_inference(model, weights, f.allow_non_finite,
                     InferenceWeights{f.bf16 && !cuda ? Precision::bf16 : Precision::fp32, false, std::nullopt});
  const int per_batch = f.batch * (f.no_ifd ? 1 : 2);
  int longest = 1;
  for (const Job& j : jobs) longest = std::max({longest, (int)j.with.ids.size() - 1, (int)j.without.ids.size() - 1});
  sft::SampleScorer scorer(model, sft::ScorerDevice{cuda, f.bf16, per_batch, longest});
  install_interrupt_handler();
  auto key = [&](const Job& j) { return sft::sample_key(pool.samples[j.sample].source, pool.samples[j.sample].id); };
  int64_t scored = 0, skipped_done = 0;
  for (const Job& j : jobs) skipped_done += done.count(key(j));
  Progress progress("scoring", (double)(jobs.size() - skipped_done), "samples", !f.output.quiet);
  double last_sync = progress.elapsed();
  int64_t batches_run = 0;
  for (size_t b0 = 0; b0 < order.size(); b0 += f.batch) {
    const size_t b1 = std::min(order.size(), b0 + (size_t)f.batch);
    bool all_done = true;
    for (size_t k = b0; k < b1; k++) all_done = all_done && done.count(key(jobs[order[k]]));
    if (all_done) continue;
    std::vector<const sft::TokenizedSample*> batch;
    for (size_t k = b0; k < b1; k++) batch.push_back(&jobs[order[k]].with);
    if (!f.no_ifd)
      for (size_t k = b0; k < b1; k++) batch.push_back(&jobs[order[k]].without);
    const std::vector<sft::TokenStats> stats = scorer.score(batch, f.forward_only);
    std::string text;
    for (size_t k = b0; k < b1; k++) {
      const Job& j = jobs[order[k]];
      if (done.count(key(j))) continue;
      const sft::TokenStats* without = f.no_ifd ? nullptr : &stats[(k - b0) + (b1 - b0)];
      text += score_line(pool.samples[j.sample], stats[k - b0], without, (int64_t)j.with.ids.size(), j.truncated,
                         f.statistic)
                  .dump() +
              "\n";
      scored++;
    }
    if (out) {
      // Whole lines per batch, flushed: a crash loses at most the batch being written, and a torn
      // line is cut off on --resume.
      if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::fflush(out) != 0)
        internal_error(partial + ": write failed (disk full?)");
      if (progress.elapsed() - last_sync > 30) fsync(fileno(out)), last_sync = progress.elapsed();
    }
    const double secs = std::max(1e-9, progress.elapsed());
    progress.update((double)scored, std::to_string((int64_t)(scorer.tokens_computed() / secs)) + " tok/s");
    const bool stop = ++batches_run == f.max_batches && b1 < order.size();
    if (interrupted() || stop) {
      if (out) fsync(fileno(out)), std::fclose(out);
      progress.end();
      log_info("%s: %lld samples scored in %s; continue with --resume",
               stop ? "stopped (--max-batches)" : "interrupted", (long long)(skipped_done + scored), partial.c_str());
      if (stop) return 0;
      check_interrupted("select score");
    }
  }
  const double secs = std::max(1e-9, progress.elapsed());
  progress.finish((double)scored, std::to_string((int64_t)(scorer.tokens_computed() / secs)) + " tok/s");
  char line[160];
  std::snprintf(line, sizeof line, "forward: %lld tokens in %.2f s (%.1f tokens/s), %lld samples scored",
                (long long)scorer.tokens_computed(), secs, scorer.tokens_computed() / secs, (long long)scored);
  json summary = {{"scored", scored},
                  {"already_scored", skipped_done},
                  {"tokens", scorer.tokens_computed()},
                  {"seconds", secs},
                  {"tokens_per_s", scorer.tokens_computed() / secs}};
  const std::string done_text =
      line + (skipped_done ? ", " + std::to_string(skipped_done) + " already in " + partial : "");
  if (!out) {
    print_summary(f.output, "select score", done_text, summary);
    return 0;
  }
  fsync(fileno(out));
  std::fclose(out);
  // The finished file: the lines in pool order (sample index), written atomically.
  std::map<std::string, int64_t> index_of;
  for (const sft::PoolSample& s : pool.samples) index_of[sft::sample_key(s.source, s.id)] = s.index;
  std::vector<std::pair<int64_t, std::string>> lines;
  const std::string text = read_file(partial);
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    json j = json::parse(line);
    auto it = index_of.find(sft::sample_key(j["source"].get<std::string>(), j["id"]));
    if (it == index_of.end()) bad_input(partial + ": a line names a sample not in --data (" + line.substr(0, 80) + ")");
    lines.push_back({it->second, std::move(line)});
  }
  std::sort(lines.begin(), lines.end());
  std::string final_text;
  for (auto& [i, line] : lines) final_text += line + "\n";
  write_file_atomic(f.out, final_text);
  std::filesystem::remove(partial);
  std::filesystem::remove(partial_settings);
  summary["out"] = f.out;
  summary["samples"] = lines.size();
  print_summary(f.output, "select score",
                done_text + "; scores of " + std::to_string(lines.size()) + " samples in " + f.out, summary);
  return 0;
}

int run_select(int argc, char** argv) {
  return run_subcommand(
      argc, argv,
      {{"score", run_score, "score instruction samples with a base model (response cross-entropy, entropy, IFD)"},
       {"pick", run_select_pick, "pick a subset by score band / target / top-k / random, with quotas and dedup"}});
}

}  // namespace

MINDLLM_COMMAND("select", "entropy-based selection of instruction data: score samples, pick subsets", run_select);

}  // namespace mindllm::cli
