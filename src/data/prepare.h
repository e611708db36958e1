// `mindllm data prepare`: read -> clean -> language id -> filters -> PII -> exact and near
// dedup -> JSONL(.zst) parts plus report.json (counts removed per filter and language, examples
// of removed documents, reader problems). Streaming in batches with bounded memory; documents
// are processed in parallel within a batch and decided in input order, so the output is the
// same bytes for any thread count. report.json is written last: a directory without it is not
// a finished output (Ctrl-C leaves only removed temporaries).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/clean.h"
#include "data/dedup.h"
#include "data/filters.h"
#include "data/langid.h"
#include "data/reader.h"

namespace mindllm::dist {
class Communicator;
}

namespace mindllm::data {

struct PrepareConfig {
  std::vector<std::string> inputs;
  std::string output;
  ReaderConfig reader;
  CleanConfig clean;
  LangIdConfig langid;
  FilterConfig filters = default_filter_config();
  bool pii = false;
  DedupConfig dedup;
  bool compress = true;  // zstd output (data-NNNNN.jsonl.zst), else .jsonl
  int zstd_level = 3;
  uint64_t max_file_bytes = 1ull << 30;  // uncompressed bytes per output part
  int threads = 0;                       // 0: all cores
  uint64_t batch_bytes = 32ull << 20;
  int examples_per_filter = 3;
  bool progress = true;
};

// Reads a YAML or JSON config (by extension; .yaml/.yml are YAML) on top of the defaults.
// Unknown keys and wrong types are bad input naming the file and the key.
PrepareConfig load_prepare_config(const std::string& path);
void apply_prepare_json(PrepareConfig& cfg, const nlohmann::json& j, const std::string& where);
nlohmann::json prepare_config_to_json(const PrepareConfig& cfg);
// YAML text -> JSON (maps, lists, scalars; quoted scalars stay strings).
nlohmann::json yaml_to_json(const std::string& text, const std::string& where);

// Runs the whole step; returns the report (also written to <output>/report.json).
nlohmann::json run_prepare(const PrepareConfig& cfg);
// The same across the ranks of a job (`mpirun -np N mindllm data prepare`, prepare_dist.cpp):
// each rank reads and cleans its share of the inputs, deduplication is global, rank 0 writes
// the output and the report that one process writes for the same inputs (same bytes, but for the
// timing and the dedup index sizes). Every rank returns the report. An input file that a rank
// cannot open, or sees with another size than rank 0, stops every rank before any output.
nlohmann::json run_prepare(const PrepareConfig& cfg, dist::Communicator& job);

// `mindllm data dedup`: near/exact dedup only, for benchmarks and quick use. Writes the kept
// lines to `output` (JSONL) and, if set, the 1-based numbers of removed documents
// (`removed_list`), every document's MinHash signature (`signatures_out`: num_perm
// little-endian uint32 per document, in input order) and the permutations
// (`permutations_out`: JSON {"scheme", "seed", "num_perm", "a", "b"}, for datasketch).
// Returns counts and timings.
struct DedupOnlyOptions {
  std::vector<std::string> inputs;
  std::string output, removed_list, signatures_out, permutations_out;
  ReaderConfig reader;
  DedupConfig dedup;
  int threads = 0;
};
nlohmann::json run_dedup_only(const DedupOnlyOptions& o);

}  // namespace mindllm::data
