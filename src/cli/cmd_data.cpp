// mindllm data prepare | tokenize | dedup: the data pipeline (docs/data.md).
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/dist_job.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "data/prepare.h"
#include "data/tokenize.h"
#include "dist/communicator.h"

namespace {

using namespace mindllm;
using namespace mindllm::data;
using mindllm::cli::OutputFlags, mindllm::cli::add_output_flags, mindllm::cli::print_summary;

int run_data(int argc, char** argv) {
  CLI::App app{"The data pipeline: raw text -> clean JSONL (prepare) -> token shards (tokenize)", "mindllm data"};
  app.require_subcommand(1);

  // prepare
  auto* prep = app.add_subcommand("prepare", "clean, filter and deduplicate raw text into JSONL(.zst) + report.json");
  std::string config_path, output;
  std::vector<std::string> inputs;
  std::string text_field, text_unit, encoding;
  int threads = -1;
  bool pii = false, no_compress = false, t2s = false, fold = false;
  OutputFlags prep_out, tok_out;
  prep->add_option("--config", config_path, "YAML or JSON config (configs/data/default.yaml shows every key)");
  prep->add_option("--input,-i", inputs, "input files, directories or globs (repeatable); adds to the config's");
  prep->add_option("--output,-o", output, "output directory");
  prep->add_option("--text-field", text_field, "JSONL field with the text (default: text)");
  prep->add_option("--text-unit", text_unit, "plain text documents: file | paragraph | line (default: file)");
  prep->add_option("--encoding", encoding,
                   "input text encoding, converted to UTF-8: latin-1, gbk, gb18030, utf-16, ... (default: utf-8)");
  mindllm::cli::add_threads_option(*prep, threads);
  prep->add_flag("--pii", pii, "scrub e-mails, phone numbers, ID numbers and IP addresses");
  prep->add_flag("--t2s", t2s, "convert Traditional to Simplified Chinese (OpenCC)");
  prep->add_flag("--fold-fullwidth", fold, "fold full-width ASCII forms to half-width");
  prep->add_flag("--no-compress", no_compress, "write .jsonl instead of .jsonl.zst");
  add_output_flags(*prep, prep_out);

  // tokenize
  auto* tok = app.add_subcommand("tokenize", "tokenize JSONL/text into train/val token shards with a manifest");
  TokenizeConfig tc;
  std::string mix;
  tok->add_option("--tokenizer", tc.tokenizer, "tokenizer.json")->required();
  tok->add_option("--input,-i", tc.inputs, "inputs (repeatable); name=PATH names a source for --mix")->required();
  tok->add_option("--output,-o", tc.output, "output directory for train-NNN.bin / val-NNN.bin / manifest.json")
      ->required();
  tok->add_option("--val-fraction", tc.val_fraction, "fraction of documents held out for validation (default 0.005)");
  tok->add_option("--mix", mix, "source weights (epochs), e.g. web=1,books=2.5,code=0.5");
  tok->add_option("--seed", tc.seed, "shuffle and split seed (default 1)");
  tok->add_option("--shard-tokens", tc.shard_tokens, "tokens per shard (default 100M)");
  tok->add_option("--text-field", tc.reader.text_field, "JSONL field with the text (default: text)");
  tok->add_option("--text-unit", tc.reader.text_unit, "plain text documents: file | paragraph | line");
  tok->add_option("--encoding", tc.reader.encoding, "input text encoding (default: utf-8)");
  mindllm::cli::add_threads_option(*tok, tc.threads);
  add_output_flags(*tok, tok_out);

  // dedup
  auto* dd = app.add_subcommand("dedup", "exact + MinHash-LSH near-duplicate removal only (JSONL/text in, JSONL out)");
  DedupOnlyOptions ddo;
  DedupConfig& dc = ddo.dedup;
  ReaderConfig& drc = ddo.reader;
  int& dd_threads = ddo.threads;
  bool no_exact = false;
  dd->add_option("--input,-i", ddo.inputs, "inputs")->required();
  dd->add_option("--output,-o", ddo.output, "kept documents (JSONL)");
  dd->add_option("--removed-list", ddo.removed_list, "file for the 1-based numbers of removed documents");
  dd->add_option("--signatures-out", ddo.signatures_out,
                 "file for every document's signature (num-perm uint32 LE each)");
  dd->add_option("--permutations-out", ddo.permutations_out,
                 "JSON file with the MinHash permutations (a, b) for datasketch");
  dd->add_option("--scheme", dc.scheme, "MinHash permutations: affine32 (default) | legacy (datasketch's schemes)");
  dd->add_option("--seed", dc.seed, "permutation seed (default 1)");
  dd->add_option("--num-perm", dc.num_perm, "MinHash permutations (default 128)");
  dd->add_option("--bands", dc.bands, "LSH bands (default 16)");
  dd->add_option("--rows", dc.rows, "LSH rows per band (default 8)");
  dd->add_option("--word-ngram", dc.word_ngram, "English shingle size in words (default 5)");
  dd->add_option("--char-ngram", dc.char_ngram, "Chinese shingle size in characters (default 5)");
  dd->add_option("--text-field", drc.text_field, "JSONL field with the text");
  mindllm::cli::add_threads_option(*dd, dd_threads);
  dd->add_flag("--no-exact", no_exact, "near-duplicate detection only");

  cli::parse_args(app, argc, argv);

  if (prep->parsed()) {
    PrepareConfig cfg;
    if (!config_path.empty()) cfg = load_prepare_config(config_path);
    for (auto& i : inputs) cfg.inputs.push_back(i);
    if (!output.empty()) cfg.output = output;
    if (!text_field.empty()) cfg.reader.text_field = text_field;
    if (!text_unit.empty()) cfg.reader.text_unit = text_unit;
    if (!encoding.empty()) cfg.reader.encoding = encoding;
    if (threads >= 0) cfg.threads = threads;
    if (pii) cfg.pii = true;
    if (t2s) cfg.clean.traditional_to_simplified = true;
    if (fold) cfg.clean.fold_fullwidth = true;
    if (no_compress) cfg.compress = false;
    if (prep_out.quiet) cfg.progress = false;
    // Under `mpirun -np N`: the inputs split across the ranks, dedup global (docs/distributed.md).
    return cli::run_as_job("mindllm data", argc, argv, [&](dist::Communicator& job) {
      dist::all_or_none(job, [&] {
        if (!cfg.output.empty()) check_output_dir(cfg.output, "--output");
      });
      auto rep = run_prepare(cfg, job);
      auto& d = rep["documents"];
      if (job.rank() == 0)
        print_summary(prep_out, "data prepare",
                      "data prepare: " + d["read"].dump() + " documents read, " + d["kept"].dump() + " kept, " +
                          d["removed"].dump() + " removed; report: " + cfg.output + "/report.json",
                      {{"documents", d}, {"kept", rep["kept"]}, {"report", cfg.output + "/report.json"}});
      // Input that could not be decoded is said here, not only in report.json; none readable at all is an error.
      auto& rd = rep["read"];
      uint64_t undecodable = rd["invalid_utf8"].get<uint64_t>(), damaged = rd["damaged_files"].get<uint64_t>();
      if (undecodable + damaged == 0) return;
      std::string first;
      for (auto& m : rd["messages"]) {
        std::string s = m.get<std::string>();
        if (s.find("UTF-8") != std::string::npos || s.find("not valid") != std::string::npos ||
            s.find("truncated") != std::string::npos || s.find("corrupt") != std::string::npos) {
          first = s;
          break;
        }
      }
      std::string what =
          std::to_string(undecodable) + " documents skipped as invalid " +
          (cfg.reader.encoding.empty() ? std::string("UTF-8") : cfg.reader.encoding) + ", " + std::to_string(damaged) +
          " files cut short (first: " + first + ")" +
          (cfg.reader.encoding.empty() ? "; give --encoding (e.g. gb18030, latin-1) for other encodings" : "");
      if (d["read"].get<uint64_t>() == 0) {
        if (job.size() > 1)  // every rank has the report: all stop together, rank 0 says why
          throw dist::CollectiveError(ExitCode::bad_input, "no documents read: " + what, job.rank() == 0);
        bad_input("no documents read: " + what);
      }
      if (job.rank() == 0) std::fprintf(stderr, "data prepare: warning: %s\n", what.c_str());
    });
  }
  if (tok->parsed()) {
    if (!mix.empty()) tc.mix = parse_mix(mix);
    tc.progress = !tok_out.quiet;
    check_output_dir(tc.output, "--output");
    auto man = run_tokenize(tc);
    print_summary(tok_out, "data tokenize",
                  "data tokenize: " + man["train"]["tokens"].dump() + " train tokens, " + man["val"]["tokens"].dump() +
                      " val tokens in " + tc.output,
                  {{"train", man["train"]}, {"val", man["val"]}, {"out", tc.output}});
    return 0;
  }
  if (dd->parsed()) {
    if (no_exact) dc.exact = false;
    for (auto [path, flag] : {std::pair{&ddo.output, "--output"},
                              {&ddo.removed_list, "--removed-list"},
                              {&ddo.signatures_out, "--signatures-out"},
                              {&ddo.permutations_out, "--permutations-out"}})
      if (!path->empty()) check_output_file(*path, flag);
    auto r = run_dedup_only(ddo);
    std::cout << r.dump(2) << "\n";
    return 0;
  }
  return 2;
}

MINDLLM_COMMAND("data", "prepare raw text (clean, filter, dedup) and tokenize it into shards", run_data);

}  // namespace
