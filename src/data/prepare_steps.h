// The parts of `data prepare` that one process (prepare.cpp) and a job of ranks
// (prepare_dist.cpp) share: the work on one document, the counts of report.json, the output parts.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/progress.h"
#include "data/dedup.h"
#include "data/pii.h"
#include "data/prepare.h"
#include "data/reader.h"
#include "data/stream.h"

namespace mindllm::data {

struct PrepareTally;

// What the workers find for one document.
struct DocResult {
  bool from_json = false;                // a raw JSONL line, parsed by the worker
  ReadProblem read = ReadProblem::none;  // ... that was not a document
  std::string read_message;
  std::string text;  // cleaned (and scrubbed)
  Lang lang = Lang::other;
  std::string removed_by;  // a filter's name, or empty
  uint64_t exact = 0;      // exact_text_hash, when dedup.exact
  std::vector<uint32_t> sig;
  PiiCounts pii;
};

// In a worker thread: parse a deferred JSONL line, clean, identify the language, filter, scrub
// PII, and hash for dedup (exact hash and MinHash signature) what the filters kept.
void process_document(RawDoc& doc, DocResult& r, const PrepareConfig& cfg, const ReaderConfig& rc,
                      const MinHasher& hasher, const std::string& file);

// Reads `spans` of `files` (whole_files() for all) in batches, runs process_document over
// each batch on `threads` threads, and hands each document that tally.read() counted to `decide`,
// in input order (so the result does not depend on the thread count). Shows progress; ends with
// the reader's counts in tally.reads. Ctrl-C: check_interrupted between batches.
void process_inputs(const PrepareConfig& cfg, const std::vector<std::string>& files, std::vector<ReadSpan> spans,
                    int threads, Progress& progress, PrepareTally& tally,
                    const std::function<void(const RawDoc&, DocResult&)>& decide);

// One JSONL record of the output, with its '\n'.
std::string output_record(const std::string& text, Lang lang, const std::string& source);

struct LangCount {
  uint64_t docs[3] = {0, 0, 0}, bytes[3] = {0, 0, 0};
  void add(Lang l, uint64_t b) { docs[static_cast<int>(l)]++, bytes[static_cast<int>(l)] += b; }
};

// The counts of report.json, added in input order. Each rank of a job counts its share; merged in
// rank order they are the counts of one process.
struct PrepareTally {
  ReadStats reads, worker_reads;  // the reader's; the workers' (deferred JSON): report = reads + worker_reads
  LangCount seen, kept;
  std::map<std::string, LangCount> removed;
  std::map<std::string, nlohmann::json> examples;  // the first few removed documents per reason
  PiiCounts pii;
  uint64_t docs_in = 0, bytes_in = 0, changed_by_cleaning = 0;
  int examples_per_reason = 3;

  // A document the workers processed: false when it was not one (a bad JSONL line, counted).
  bool read(const RawDoc& d, const DocResult& r);
  void remove(const std::string& why, Lang lang, uint64_t raw_bytes, const std::string& source,
              const std::string& text);
  void keep(Lang lang, uint64_t bytes, const PiiCounts& p) { kept.add(lang, bytes), pii.add(p); }
  void merge(const PrepareTally& later);  // later's documents come after this one's
  nlohmann::json to_json() const;
  static PrepareTally from_json(const nlohmann::json& j);
};

// Output parts data-NNNNN.jsonl[.zst], rotated at max_file_bytes.
class PartWriter {
 public:
  PartWriter(std::string dir, bool compress, int level, uint64_t max_bytes)
      : dir_(std::move(dir)), compress_(compress), level_(level), max_(max_bytes) {}
  void write(const std::string& line);
  std::vector<std::string> commit();  // commits every part (at least one); returns their names

 private:
  void open();
  std::string dir_;
  bool compress_;
  int level_;
  uint64_t max_;
  std::unique_ptr<OutputFile> cur_;
  std::vector<std::unique_ptr<OutputFile>> done_;
};

// Checks the configuration before any output (bad input).
void check_prepare_config(const PrepareConfig& cfg);
void prepare_output_dir(const std::string& out);  // creates it; removes an old report.json
// Removes old parts of an earlier run that this run did not write.
void remove_stale_parts(const std::string& out, const std::vector<std::string>& keep);
uint64_t total_input_bytes(const std::vector<std::string>& files);
nlohmann::json read_stats_json(const ReadStats& s);

struct PrepareRun {
  std::vector<std::string> parts;
  nlohmann::json dedup;  // index sizes
  double seconds = 0;
  int threads = 1, ranks = 1;
};
// report.json of a finished run.
nlohmann::json prepare_report(const PrepareConfig& cfg, const std::vector<std::string>& files, const PrepareTally& t,
                              const PrepareRun& run);

}  // namespace mindllm::data
