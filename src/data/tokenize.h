// `mindllm data tokenize`: documents (JSONL from `data prepare`, or text) -> token shards
// (<out>/train-NNN.bin, <out>/val-NNN.bin, format in data/shard.h) + manifest.json.
//   1. every source is read in order and tokenized in parallel batches (Tokenizer::encode_batch);
//      the ids go to a temporary file, so memory stays bounded by the batch
//   2. each document is held out for validation with probability val_fraction, decided by a hash
//      of (seed, source, document number): the split doesn't depend on the mix or thread count
//   3. training documents are repeated per their source's weight (epochs: 2.5 = every document
//      twice plus a hashed half of them once more), then all of them are shuffled together with
//      the seed (Fisher-Yates, core/rng.h): sources are interleaved evenly from the start
//   4. shards are filled in that order, EOS after each document, shard_tokens ids per shard
// Shards and manifest are written under a temporary directory and moved in at the end, the
// manifest last: Ctrl-C leaves no output that looks complete.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/types.h"
#include "data/reader.h"

namespace mindllm::data {

struct TokenizeConfig {
  std::string tokenizer;
  std::vector<std::string> inputs;  // "PATH" or "NAME=PATH"
  std::string output;
  double val_fraction = 0.005;
  std::map<std::string, double> mix;  // source name -> weight (epochs); unnamed sources: 1
  uint64_t seed = 1;
  uint64_t shard_tokens = 100'000'000;
  ReaderConfig reader;
  int threads = 0;
  bool progress = true;
};

// "web=1,books=2.5" -> {web: 1, books: 2.5}; bad input on a malformed entry.
std::map<std::string, double> parse_mix(const std::string& spec);

// A source's name from its spec: the NAME of "NAME=PATH", else the file or directory name
// without extensions ("data/web.jsonl.zst" -> "web").
std::string source_name(const std::string& spec, std::string* path);

// Plans the order of documents: returns (train, val) lists of global document indices.
// doc_source[d] is the source of document d, doc_local[d] its number within the source.
struct MixPlan {
  std::vector<uint32_t> train, val;
};
MixPlan plan_mix(const std::vector<uint16_t>& doc_source, const std::vector<uint32_t>& doc_local,
                 const std::vector<double>& weights, double val_fraction, uint64_t seed);

// Tokenizes with `encode` (texts -> ids per text); the CLI passes the real Tokenizer.
using EncodeBatchFn = std::function<std::vector<std::vector<TokenId>>(const std::vector<std::string>&)>;
struct TokenizerInfo {
  uint32_t vocab_size = 0;
  TokenId eos_id = 0;
  uint64_t hash = 0;
};
nlohmann::json run_tokenize_with(const TokenizeConfig& cfg, const EncodeBatchFn& encode, const TokenizerInfo& info);

// Loads cfg.tokenizer (it must have an EOS token) and runs run_tokenize_with.
nlohmann::json run_tokenize(const TokenizeConfig& cfg);

}  // namespace mindllm::data
