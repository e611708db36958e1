#include "data/tokenize.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "core/rng.h"
#include "data/hashing.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "data/shard.h"
#include "data/stream.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace mindllm::data {

std::map<std::string, double> parse_mix(const std::string& spec) {
  std::map<std::string, double> m;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t e = spec.find(',', pos);
    if (e == std::string::npos) e = spec.size();
    std::string item = spec.substr(pos, e - pos);
    pos = e + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) bad_input("--mix: '" + item + "' is not NAME=WEIGHT");
    std::string name = item.substr(0, eq), w = item.substr(eq + 1);
    char* end = nullptr;
    double v = std::strtod(w.c_str(), &end);
    if (w.empty() || *end != '\0' || !(v >= 0) || v > 1e6)
      bad_input("--mix: weight '" + w + "' of " + name + " is not a number >= 0");
    if (m.count(name)) bad_input("--mix: source '" + name + "' given twice");
    m[name] = v;
  }
  if (m.empty()) bad_input("--mix: no NAME=WEIGHT entries");
  return m;
}

std::string source_name(const std::string& spec, std::string* path) {
  size_t eq = spec.find('=');
  if (eq != std::string::npos && eq > 0 && spec.find('/') > eq) {
    *path = spec.substr(eq + 1);
    return spec.substr(0, eq);
  }
  *path = spec;
  std::string p = spec;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::string name = fs::path(p).filename().string();
  for (bool again = true; again;) {
    again = false;
    for (const char* ext : {".gz", ".zst", ".zstd", ".jsonl", ".ndjson", ".json", ".txt", ".md"}) {
      if (name.size() > std::strlen(ext) && name.ends_with(ext)) {
        name.resize(name.size() - std::strlen(ext));
        again = true;
      }
    }
  }
  return name;
}

// A uniform number in [0, 1) from (seed, source, doc, purpose): the same on every machine.
static double unit_hash(uint64_t seed, uint64_t source, uint64_t doc, uint64_t purpose) {
  uint64_t h = mix64(seed ^ mix64(source * 0x9E3779B97F4A7C15ull ^ mix64(doc + (purpose << 56))));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

MixPlan plan_mix(const std::vector<uint16_t>& doc_source, const std::vector<uint32_t>& doc_local,
                 const std::vector<double>& weights, double val_fraction, uint64_t seed) {
  MixPlan plan;
  size_t n = doc_source.size();
  double best_u = 2;
  uint32_t best_d = 0;
  for (size_t d = 0; d < n; d++) {
    double u = unit_hash(seed, doc_source[d], doc_local[d], 1);
    if (u < best_u) best_u = u, best_d = static_cast<uint32_t>(d);
    if (u < val_fraction) {
      plan.val.push_back(static_cast<uint32_t>(d));
      continue;
    }
    double w = weights[doc_source[d]];
    double whole = std::floor(w);
    int reps = static_cast<int>(whole) + (unit_hash(seed, doc_source[d], doc_local[d], 2) < w - whole ? 1 : 0);
    for (int r = 0; r < reps; r++) plan.train.push_back(static_cast<uint32_t>(d));
  }
  // A requested validation split gets at least one document (when there are two or more).
  if (val_fraction > 0 && plan.val.empty() && n >= 2) {
    plan.val.push_back(best_d);
    plan.train.erase(std::remove(plan.train.begin(), plan.train.end(), best_d), plan.train.end());
  }
  Rng rng(seed);
  for (size_t i = plan.train.size(); i > 1; i--) std::swap(plan.train[i - 1], plan.train[rng.below(i)]);
  for (size_t i = plan.val.size(); i > 1; i--) std::swap(plan.val[i - 1], plan.val[rng.below(i)]);
  return plan;
}

namespace {

struct Source {
  std::string name;
  std::vector<std::string> files;
  double weight = 1;
  uint64_t docs = 0, tokens = 0, train_docs = 0, train_tokens = 0, val_docs = 0, val_tokens = 0;
  ReadStats read;
};

// Writes the shards of one split from the planned order.
std::vector<nlohmann::json> write_split(const std::string& tmp_dir, const std::string& split,
                                        const std::vector<uint32_t>& order, const uint32_t* ids,
                                        const std::vector<uint64_t>& offsets, const TokenizerInfo& info,
                                        uint64_t shard_tokens, std::vector<Source>& sources,
                                        const std::vector<uint16_t>& doc_source, bool is_val) {
  std::vector<nlohmann::json> shards;
  std::vector<uint32_t> buf;
  buf.reserve(std::min<uint64_t>(shard_tokens, 1u << 24));
  auto flush = [&] {
    char name[64];
    std::snprintf(name, sizeof name, "%s-%03zu.bin", split.c_str(), shards.size());
    write_shard((fs::path(tmp_dir) / name).string(), buf, info.vocab_size, info.hash);
    shards.push_back({{"file", name}, {"tokens", buf.size()}});
    buf.clear();
  };
  for (uint32_t d : order) {
    check_interrupted("data tokenize");
    const uint32_t* p = ids + offsets[d];
    uint64_t len = offsets[d + 1] - offsets[d];
    auto& s = sources[doc_source[d]];
    (is_val ? s.val_docs : s.train_docs)++;
    (is_val ? s.val_tokens : s.train_tokens) += len + 1;
    for (uint64_t k = 0; k <= len; k++) {
      buf.push_back(k < len ? p[k] : info.eos_id);
      if (buf.size() == shard_tokens) flush();
    }
  }
  if (!buf.empty()) flush();
  return shards;
}

}  // namespace

nlohmann::json run_tokenize_with(const TokenizeConfig& cfg, const EncodeBatchFn& encode, const TokenizerInfo& info) {
  auto t0 = std::chrono::steady_clock::now();
  if (cfg.output.empty()) bad_input("--output: an output directory is required");
  if (!(cfg.val_fraction >= 0 && cfg.val_fraction < 1)) bad_input("--val-fraction: must be in [0, 1)");
  if (cfg.shard_tokens < 1024) bad_input("--shard-tokens: must be at least 1024");
  if (cfg.inputs.empty()) bad_input("--input: no inputs given");
  std::vector<Source> sources;
  for (auto& spec : cfg.inputs) {
    Source s;
    std::string path;
    s.name = source_name(spec, &path);
    for (auto& o : sources)
      if (o.name == s.name) bad_input("--input: two sources are named '" + s.name + "'; name them with NAME=PATH");
    s.files = expand_inputs({path});
    sources.push_back(std::move(s));
  }
  if (sources.size() > 65535) bad_input("--input: more than 65535 sources");
  for (auto& [name, w] : cfg.mix) {
    bool found = false;
    for (auto& s : sources)
      if (s.name == name) s.weight = w, found = true;
    if (!found) bad_input("--mix: no input source is named '" + name + "'");
  }
  std::error_code ec;
  fs::create_directories(cfg.output, ec);
  if (!fs::is_directory(cfg.output)) bad_input(cfg.output + ": cannot create the output directory");
  fs::remove(fs::path(cfg.output) / "manifest.json", ec);
  std::string tmp_dir = (fs::path(cfg.output) / ".tmp-tokenize").string();
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  install_interrupt_handler();
  struct TmpCleanup {
    std::string dir;
    ~TmpCleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{tmp_dir};

  // 1. Tokenize every source in order into a temporary id file.
  std::string ids_path = (fs::path(tmp_dir) / "ids.u32").string();
  std::vector<uint64_t> offsets = {0};
  std::vector<uint16_t> doc_source;
  std::vector<uint32_t> doc_local;
  uint64_t total_bytes = 0, text_bytes = 0;
  for (auto& s : sources)
    for (auto& f : s.files) total_bytes += fs::file_size(f, ec);
  Progress progress("data tokenize", total_bytes / 1e6, "MB", cfg.progress);
  {
    FILE* f = std::fopen(ids_path.c_str(), "wb");
    if (!f) bad_input(ids_path + ": cannot write");
    uint64_t done_bytes = 0;
    for (size_t si = 0; si < sources.size(); si++) {
      auto& s = sources[si];
      DocumentReader reader(s.files, cfg.reader);
      std::vector<std::string> texts;
      uint64_t batch_bytes = 0;
      auto flush = [&] {
        if (texts.empty()) return;
        auto out = encode(texts);
        for (auto& ids : out) {
          if (!ids.empty() && std::fwrite(ids.data(), 4, ids.size(), f) != ids.size()) {
            std::fclose(f);
            bad_input(ids_path + ": write failed (disk full?)");
          }
          for (TokenId id : ids)
            if (id < 0 || static_cast<uint32_t>(id) >= info.vocab_size)
              internal_error("tokenizer produced id " + std::to_string(id) + " >= vocab size");
          offsets.push_back(offsets.back() + ids.size());
          doc_source.push_back(static_cast<uint16_t>(si));
          doc_local.push_back(static_cast<uint32_t>(s.docs++));
          s.tokens += ids.size();
        }
        texts.clear();
        batch_bytes = 0;
        check_interrupted("data tokenize");
        progress.update((done_bytes + reader.bytes_read()) / 1e6, std::to_string(doc_source.size()) + " docs");
      };
      RawDoc d;
      while (reader.next(d)) {
        batch_bytes += d.text.size();
        text_bytes += d.text.size();
        texts.push_back(std::move(d.text));
        if (batch_bytes >= (8u << 20) || texts.size() >= 4096) flush();
        if (doc_source.size() + texts.size() >= 0xFFFFFFF0ull) bad_input("data tokenize: more than 4e9 documents");
      }
      flush();
      s.read = reader.stats();
      done_bytes += reader.bytes_read();
    }
    if (std::fflush(f) != 0) {
      std::fclose(f);
      bad_input(ids_path + ": write failed (disk full?)");
    }
    std::fclose(f);
    progress.finish(done_bytes / 1e6, std::to_string(doc_source.size()) + " docs");
  }
  if (doc_source.empty()) bad_input("data tokenize: the inputs hold no documents");

  // 2-4. Plan the mix and write the shards.
  std::vector<double> weights;
  for (auto& s : sources) weights.push_back(s.weight);
  MixPlan plan = plan_mix(doc_source, doc_local, weights, cfg.val_fraction, cfg.seed);
  if (plan.train.empty()) bad_input("data tokenize: no training documents (all weights 0, or too few documents)");
  MappedFile ids_map(ids_path);
  const uint32_t* ids = reinterpret_cast<const uint32_t*>(ids_map.bytes().data());
  auto train =
      write_split(tmp_dir, "train", plan.train, ids, offsets, info, cfg.shard_tokens, sources, doc_source, false);
  auto val = write_split(tmp_dir, "val", plan.val, ids, offsets, info, cfg.shard_tokens, sources, doc_source, true);
  check_interrupted("data tokenize");

  // Move into place: old shards go first, the manifest comes last.
  for (auto& e : fs::directory_iterator(cfg.output)) {
    std::string n = e.path().filename().string();
    if ((n.rfind("train-", 0) == 0 || n.rfind("val-", 0) == 0) && n.ends_with(".bin")) fs::remove(e.path());
  }
  uint64_t train_tokens = 0, val_tokens = 0;
  for (auto* list : {&train, &val})
    for (auto& sh : *list) {
      std::string name = sh["file"];
      fs::rename(fs::path(tmp_dir) / name, fs::path(cfg.output) / name);
      (list == &train ? train_tokens : val_tokens) += sh["tokens"].get<uint64_t>();
    }
  fsync_dir(cfg.output);

  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json man;
  man["format"] = "mindllm token shards (llm.c header), documents separated by EOS";
  man["tokenizer"] = {
      {"path", cfg.tokenizer}, {"vocab_size", info.vocab_size}, {"eos_id", info.eos_id}, {"hash", info.hash}};
  man["seed"] = cfg.seed;
  man["val_fraction"] = cfg.val_fraction;
  man["shard_tokens"] = cfg.shard_tokens;
  nlohmann::json srcs = nlohmann::json::array();
  for (auto& s : sources)
    srcs.push_back({{"name", s.name},
                    {"files", s.files},
                    {"weight", s.weight},
                    {"documents", s.docs},
                    {"tokens", s.tokens},
                    {"train_documents", s.train_docs},
                    {"train_tokens", s.train_tokens},
                    {"val_documents", s.val_docs},
                    {"val_tokens", s.val_tokens},
                    {"read_problems", s.read.invalid_utf8 + s.read.bad_json + s.read.missing_field + s.read.too_long +
                                          s.read.damaged_files + s.read.unreadable_files},
                    {"read_messages", s.read.messages}});
  man["sources"] = srcs;
  man["train"] = {{"documents", plan.train.size()}, {"tokens", train_tokens}, {"shards", train}};
  man["val"] = {{"documents", plan.val.size()}, {"tokens", val_tokens}, {"shards", val}};
  man["timing"] = {{"seconds", secs}, {"input_mb_per_s", secs > 0 ? text_bytes / 1e6 / secs : 0}};
  write_file_atomic((fs::path(cfg.output) / "manifest.json").string(), man.dump(2) + "\n");
  return man;
}

nlohmann::json run_tokenize(const TokenizeConfig& cfg) {
  if (cfg.tokenizer.empty()) bad_input("--tokenizer: a tokenizer.json is required");
  Tokenizer tok = Tokenizer::load(cfg.tokenizer);
  auto eos = tok.eos_id();
  if (!eos) bad_input(cfg.tokenizer + ": the tokenizer has no EOS token; documents need one to be separated");
  TokenizerInfo info{static_cast<uint32_t>(tok.vocab_size()), *eos, tok.hash()};
  int threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();
  nlohmann::json man = run_tokenize_with(
      cfg, [&](const std::vector<std::string>& texts) { return tok.encode_batch(texts, threads); }, info);
  // The tokenizer travels with its shards: train finds it there and stores it in checkpoints.
  std::string dest = (fs::path(cfg.output) / "tokenizer.json").string();
  if (is_directory(cfg.tokenizer)) tok.save(dest);
  else write_file_atomic(dest, read_file(cfg.tokenizer));
  return man;
}

}  // namespace mindllm::data
