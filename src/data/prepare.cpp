#include "data/prepare.h"

#include <omp.h>

#include <bit>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "data/batch_reader.h"
#include "data/prepare_steps.h"
#include "data/stream.h"

namespace fs = std::filesystem;

namespace mindllm::data {

nlohmann::json run_prepare(const PrepareConfig& cfg) {
  auto t0 = std::chrono::steady_clock::now();
  check_prepare_config(cfg);
  std::vector<std::string> files = expand_inputs(cfg.inputs);
  prepare_output_dir(cfg.output);
  install_interrupt_handler();
  int threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();

  LshIndex lsh(cfg.dedup.bands, cfg.dedup.rows);
  FlatSet64 exact(1 << 16);
  PartWriter writer(cfg.output, cfg.compress, cfg.zstd_level, cfg.max_file_bytes);
  Progress progress("data prepare", total_input_bytes(files) / 1e6, "MB", cfg.progress);
  PrepareTally tally;
  tally.examples_per_reason = cfg.examples_per_filter;

  // Decide in input order: deterministic whatever the thread count.
  process_inputs(cfg, files, whole_files(files.size()), threads, progress, tally, [&](const RawDoc& d, DocResult& r) {
    if (r.removed_by.empty() && cfg.dedup.exact && !exact.insert(r.exact)) r.removed_by = "exact_duplicate";
    if (r.removed_by.empty() && cfg.dedup.near) {
      if (lsh.query(r.sig.data())) r.removed_by = "near_duplicate";
      else lsh.insert(r.sig.data());
    }
    const std::string source = files[d.file_index] + ":" + std::to_string(d.line);
    if (!r.removed_by.empty()) {
      tally.remove(r.removed_by, r.lang, d.text.size(), source, r.text.empty() ? d.text : r.text);
      return;
    }
    tally.keep(r.lang, r.text.size(), r.pii);
    writer.write(output_record(r.text, r.lang, source));
  });
  PrepareRun run;
  run.parts = writer.commit();
  remove_stale_parts(cfg.output, run.parts);
  run.dedup = {{"exact_index_entries", exact.size()}, {"lsh_index_bytes", lsh.memory_bytes()}};
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.threads = threads;
  nlohmann::json rep = prepare_report(cfg, files, tally, run);
  write_file_atomic((fs::path(cfg.output) / "report.json").string(), rep.dump(2) + "\n");
  return rep;
}

nlohmann::json run_dedup_only(const DedupOnlyOptions& o) {
  const DedupConfig& dc = o.dedup;
  check_dedup_config(dc);
  auto files = expand_inputs(o.inputs);
  int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  install_interrupt_handler();
  auto t0 = std::chrono::steady_clock::now();
  MinHasher hasher(dc);
  LshIndex lsh(dc.bands, dc.rows);
  FlatSet64 exact(1 << 16);
  if (!o.permutations_out.empty())
    write_file_atomic(o.permutations_out, nlohmann::json({{"scheme", dc.scheme},
                                                          {"seed", dc.seed},
                                                          {"num_perm", dc.num_perm},
                                                          {"a", hasher.perm_a()},
                                                          {"b", hasher.perm_b()}})
                                                  .dump() +
                                              "\n");
  std::unique_ptr<OutputFile> out, rem, sig_out;
  if (!o.output.empty()) out = std::make_unique<OutputFile>(o.output, 0);
  if (!o.removed_list.empty()) rem = std::make_unique<OutputFile>(o.removed_list, 0);
  if (!o.signatures_out.empty()) sig_out = std::make_unique<OutputFile>(o.signatures_out, 0);
  ReaderConfig rc = o.reader;
  rc.defer_json = true;  // JSON parsed in the workers
  ReadStats worker_reads;
  std::vector<ReadProblem> problems;
  std::vector<std::string> messages;
  BatchReader batches(files, rc, 16u << 20, whole_files(files.size()));
  uint64_t n = 0, n_exact = 0, n_near = 0, bytes = 0;
  std::vector<uint32_t> sigs;
  std::vector<uint64_t> hashes;
  int np = dc.num_perm;
  for (;;) {
    auto batch = batches.next();
    if (batch.empty()) break;
    check_interrupted("data dedup");
    sigs.assign(batch.size() * static_cast<size_t>(np), 0);
    hashes.assign(batch.size(), 0);
    problems.assign(batch.size(), ReadProblem::none);
    messages.assign(batch.size(), std::string());
    std::vector<char> from_json(batch.size(), 0);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (size_t i = 0; i < batch.size(); i++) {
      if (batch[i].raw_json) {
        from_json[i] = 1;
        problems[i] = parse_raw_json(batch[i], rc, files[batch[i].file_index], &messages[i]);
        if (problems[i] != ReadProblem::none) continue;
      }
      Lang lang = identify_language(batch[i].text).lang;
      if (dc.exact) hashes[i] = exact_text_hash(batch[i].text);
      hasher.signature(batch[i].text, lang, sigs.data() + i * np);
    }
    for (size_t i = 0; i < batch.size(); i++) {
      if (from_json[i]) worker_reads.count(problems[i], messages[i]);
      if (problems[i] != ReadProblem::none) continue;
      n++;
      bytes += batch[i].text.size();
      bool dup = false;
      if (dc.exact && !exact.insert(hashes[i])) dup = true, n_exact++;
      if (!dup && dc.near) {
        const uint32_t* s = sigs.data() + i * np;
        if (lsh.query(s)) dup = true, n_near++;
        else lsh.insert(s);
      }
      if (sig_out) {  // little-endian uint32 (x86/ARM hosts are little-endian)
        static_assert(std::endian::native == std::endian::little);
        sig_out->write(std::string_view(reinterpret_cast<const char*>(sigs.data() + i * np), np * 4u));
      }
      if (dup) {
        if (rem) rem->write(std::to_string(n) + "\n");
      } else if (out) {
        out->write(nlohmann::json({{"text", batch[i].text}}).dump() + "\n");
      }
    }
  }
  check_interrupted("data dedup");
  if (out) out->commit();
  if (rem) rem->commit();
  if (sig_out) sig_out->commit();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ReadStats rs = batches.stats();
  rs.add(worker_reads);
  return {{"documents", n},
          {"exact_duplicates", n_exact},
          {"near_duplicates", n_near},
          {"bytes", bytes},
          {"seconds", secs},
          {"docs_per_s", secs > 0 ? n / secs : 0},
          {"threads", threads},
          {"read", read_stats_json(rs)}};
}

}  // namespace mindllm::data
