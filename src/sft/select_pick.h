// Picking a subset of scored samples (`mindllm select pick`, docs/sft-selection.md).
//
// Each sample gets a preference (lower = taken first; ties by file order) from the strategy:
//   band_percentile lo:hi  eligible when its percentile rank lies in [lo, hi] (rank r of n in
//                          score order, pct = 100 r / (n - 1)); preference |pct - (lo+hi)/2|
//   band_z lo:hi           eligible when z = (score - mean) / sd lies in [lo, hi] (population sd);
//                          preference |z - (lo+hi)/2|
//   target X               preference |score - X|
//   top / bottom           preference -score / score
//   random                 a seeded shuffle
// With stratification (source, language or both) ranks, z-scores and quotas are per stratum.
// The amount is a count (--size, or K for top/bottom) or tokens (--token-budget: the samples'
// whole lengths); without either a band takes every eligible sample. Tag quotas (--tag-share
// math=0.3) are filled first, each from the eligible samples with that tag in preference order;
// the rest of the amount then comes from any eligible sample (per stratum: in proportion to the
// stratum's share of the pool, largest remainders). An `accept` callback (near-duplicate
// removal) may refuse a candidate; the next one is tried.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mindllm::sft {

struct ScoreRecord {
  nlohmann::json id;
  std::string source, lang;
  std::vector<std::string> tags;
  double score = 0;
  int64_t n_tokens = 0;    // response tokens
  int64_t seq_tokens = 0;  // the whole sample's tokens (the token budget counts these)
  std::string line;        // the scores file's line
};

enum class Strategy { band_percentile, band_z, target, top, bottom, random };

struct PickOptions {
  Strategy strategy = Strategy::band_percentile;
  double lo = 25, hi = 75;  // the band
  double target = 0;
  int64_t size = -1;          // samples (top/bottom: K); < 0: not set
  int64_t token_budget = -1;  // < 0: not set
  bool by_source = false, by_lang = false;
  std::vector<std::pair<std::string, double>> tag_shares;
  uint64_t seed = 0;
};

struct Quota {
  std::string name;            // "tag:math", "stratum:<source>|<lang>", "all"
  double wanted = 0, got = 0;  // samples or tokens
};

struct PickResult {
  std::vector<size_t> kept;  // indices into the records, ascending
  std::vector<Quota> quotas;
  int64_t eligible = 0;  // samples the strategy allows
  int64_t refused = 0;   // candidates `accept` refused
};

// The stratum of a record under the options ("" when not stratified).
std::string stratum_of(const ScoreRecord& r, const PickOptions& o);

// records: finite scores only (the caller counts and drops the rest).
PickResult pick(const std::vector<ScoreRecord>& records, const PickOptions& o,
                const std::function<bool(size_t)>& accept = nullptr);

// "25:75" -> {25, 75}; bad input naming `flag` unless two finite numbers lo <= hi (within
// [lo_min, hi_max]).
std::pair<double, double> parse_band(const std::string& s, const std::string& flag, double lo_min, double hi_max);
// "math=0.3,exam=0.2" -> shares; bad input unless each is in (0, 1] and they sum to <= 1.
std::vector<std::pair<std::string, double>> parse_tag_shares(const std::string& s);

}  // namespace mindllm::sft
