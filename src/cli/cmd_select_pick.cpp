// mindllm select pick: a subset of scored samples (docs/sft-selection.md; the logic is
// sft/select_pick.h, the report sft/select_report.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "data/dedup.h"
#include "sft/select_pick.h"
#include "sft/select_pool.h"
#include "sft/select_report.h"

using json = nlohmann::json;

namespace mindllm::cli {

namespace {

struct ReadCounts {
  int64_t lines = 0, invalid_score = 0, duplicate = 0;
};

// The records of a scores file (`field` is the statistic used as the score). A line that is not
// a scores line is bad input naming file and line; a score that is not a finite number is counted.
std::vector<sft::ScoreRecord> read_scores(const std::string& path, const std::string& field, ReadCounts& c) {
  const std::string text = read_file(path);
  std::vector<sft::ScoreRecord> out;
  std::set<std::string> keys;
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string s = text.substr(pos, nl - pos);
    pos = nl + 1;
    line++;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    json j = json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_object()) bad_input(where + ": not a JSON object");
    if (!j.contains("id") || !(j["id"].is_string() || j["id"].is_number_integer()))
      bad_input(where + ": no 'id' (a string or an integer)");
    c.lines++;
    sft::ScoreRecord r;
    r.id = j["id"];
    for (const char* key : {"source", "lang"})
      if (j.contains(key) && !j[key].is_string()) bad_input(where + ": '" + key + "' is not a string");
    r.source = j.value("source", std::string());
    if (!keys.insert(sft::sample_key(r.source, r.id)).second) {
      c.duplicate++;
      continue;
    }
    if (!j.contains(field)) bad_input(where + ": no field '" + field + "' (see --by)");
    const json& v = j[field];
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      c.invalid_score++;
      continue;
    }
    r.score = v.get<double>();
    r.lang = j.value("lang", std::string("other"));
    if (j.contains("tags")) {
      try {
        r.tags = sft::tags_from_field(j, "tags");
      } catch (const std::runtime_error& e) { bad_input(where + ": " + e.what()); }
    }
    for (auto [key, dst] : {std::pair{"n_tokens", &r.n_tokens}, {"seq_tokens", &r.seq_tokens}})
      if (j.contains(key) && j[key].is_number_integer()) *dst = j[key].get<int64_t>();
    r.line = s;
    out.push_back(std::move(r));
  }
  return out;
}

// The --data file a scores line's source names: the same string, else the same file.
std::string match_source(const std::string& source, const std::vector<std::string>& data) {
  for (const std::string& d : data)
    if (d == source) return d;
  std::error_code ec;
  const auto canon = std::filesystem::weakly_canonical(source, ec);
  for (const std::string& d : data)
    if (!ec && std::filesystem::weakly_canonical(d, ec) == canon) return d;
  return "";
}

data::Lang lang_code(const std::string& l) {
  return l == "zh" ? data::Lang::zh : l == "en" ? data::Lang::en : data::Lang::other;
}

}  // namespace

int run_select_pick(int argc, char** argv) {
  CLI::App app{
      "Pick a subset of scored samples (from `mindllm select score`): a band of the score distribution, "
      "nearest to a target, top/bottom k or a random control; stratified, deduplicated, with tag quotas. "
      "Writes the subset and report.json + report.html.",
      "mindllm select pick"};
  std::string scores, out, report_dir, stratify, tag_rules, tag_field, tag_share, band, band_z, by = "score",
                                                                                                format = "auto";
  std::vector<std::string> data_files;
  double target = NAN;
  int64_t top = -1, bottom = -1, size = -1, budget = -1;
  bool random = false, dedup = false;
  uint64_t seed = 0;
  app.add_option("--scores", scores, "scores file (JSONL from select score)")->required();
  app.add_option("--data", data_files,
                 "the scored data files: write the chosen samples themselves (else the score "
                 "lines); needed for --dedup, --tag-rules, --tag-field")
      ->expected(1, -1);
  app.add_option("--out", out, "the subset (JSONL)")->required();
  app.add_option("--report-dir", report_dir, "where report.json and report.html go (default: --out's directory)");
  app.add_option("--by", by, "the scores field used as the score (score, ce_mean, entropy_mean, ifd, ...)")
      ->capture_default_str();
  app.add_option("--band", band, "keep percentiles LO:HI of the scores (e.g. 25:75, the middle half)");
  app.add_option("--band-z", band_z, "keep z-scores LO:HI (e.g. -1:1)");
  app.add_option("--target", target, "keep the samples nearest to this score")->check(finite());
  app.add_option("--top", top, "keep the K highest scores")->check(number_in(1, 1e15));
  app.add_option("--bottom", bottom, "keep the K lowest scores")->check(number_in(1, 1e15));
  app.add_flag("--random", random, "a seeded random control (with --size or --token-budget)");
  app.add_option("--stratify", stratify, "source | lang | source,lang: bands and quotas per stratum")
      ->check(CLI::IsMember({"source", "lang", "source,lang", "lang,source"}));
  app.add_option("--size", size, "samples to keep")->check(number_in(1, 1e15));
  app.add_option("--token-budget", budget, "tokens to keep (the samples' whole lengths)")->check(number_in(1, 1e18));
  app.add_flag("--dedup", dedup, "drop near duplicates among the kept samples (MinHash LSH of the data pipeline)");
  app.add_option("--tag-rules", tag_rules, "recompute tags with these rules (JSON; needs --data)");
  app.add_option("--tag-field", tag_field, "recompute tags from this field of the samples (needs --data)");
  app.add_option("--tag-share", tag_share, "quotas per tag, e.g. math=0.3,exam=0.2 (shares of the amount)");
  app.add_option("--format", format, "--data format: auto | alpaca | sharegpt | messages")->capture_default_str();
  app.add_option("--seed", seed, "seed of --random")->capture_default_str();
  OutputFlags output;
  add_output_flags(app, output);
  parse_args(app, argc, argv);

  sft::PickOptions o;
  int strategies = 0;
  if (!band.empty()) {
    std::tie(o.lo, o.hi) = sft::parse_band(band, "--band", 0, 100);
    o.strategy = sft::Strategy::band_percentile, strategies++;
  }
  if (!band_z.empty()) {
    std::tie(o.lo, o.hi) = sft::parse_band(band_z, "--band-z", -1e300, 1e300);
    o.strategy = sft::Strategy::band_z, strategies++;
  }
  if (!std::isnan(target)) o.strategy = sft::Strategy::target, o.target = target, strategies++;
  if (top > 0) o.strategy = sft::Strategy::top, o.size = top, strategies++;
  if (bottom > 0) o.strategy = sft::Strategy::bottom, o.size = bottom, strategies++;
  if (random) o.strategy = sft::Strategy::random, strategies++;
  if (strategies != 1) bad_input("choose one strategy: --band, --band-z, --target, --top, --bottom or --random");
  if (size > 0 && budget > 0) bad_input("--size and --token-budget exclude each other");
  if ((top > 0 || bottom > 0) && (size > 0 || budget > 0))
    bad_input("--top/--bottom K set the size: drop --size/--token-budget");
  if (size > 0) o.size = size;
  if (budget > 0) o.token_budget = budget;
  if ((o.strategy == sft::Strategy::target || o.strategy == sft::Strategy::random) && o.size < 0 && o.token_budget < 0)
    bad_input(std::string(random ? "--random" : "--target") + " needs --size or --token-budget");
  o.by_source = stratify.find("source") != std::string::npos;
  o.by_lang = stratify.find("lang") != std::string::npos;
  o.seed = seed;
  if (!tag_share.empty()) o.tag_shares = sft::parse_tag_shares(tag_share);
  if (!tag_rules.empty() && !tag_field.empty()) bad_input("--tag-rules and --tag-field exclude each other");
  if (data_files.empty())
    for (auto [flag, given] :
         {std::pair{"--dedup", dedup}, {"--tag-rules", !tag_rules.empty()}, {"--tag-field", !tag_field.empty()}})
      if (given) bad_input(std::string(flag) + " needs --data (the samples' text)");
  for (const std::string& p : data_files)
    if (!path_exists(p) || is_directory(p)) bad_input("--data " + p + ": no such file");
  check_output_file(out, "--out");
  if (report_dir.empty()) report_dir = std::filesystem::path(out).parent_path().string();
  if (report_dir.empty()) report_dir = ".";
  check_output_dir(report_dir, "--report-dir");

  ReadCounts rc;
  std::vector<sft::ScoreRecord> recs = read_scores(scores, by, rc);
  json counts = {{"score_lines", rc.lines}, {"invalid_scores", rc.invalid_score}, {"duplicate_ids", rc.duplicate}};

  // With --data: each record's sample (text, original line), and tags recomputed when asked.
  std::vector<const sft::PoolSample*> sample_of;
  sft::Pool pool;
  sft::TagRules rules;
  std::set<std::string> known_tags;
  if (!data_files.empty()) {
    if (!tag_rules.empty()) rules = sft::parse_tag_rules(read_file(tag_rules), tag_rules);
    for (const std::string& t : rules.tags()) known_tags.insert(t);
    sft::PoolOptions po{sft::sft_format_from_name(format), tag_field, tag_rules.empty() ? nullptr : &rules};
    pool = sft::load_pool(data_files, po);
    std::map<std::string, const sft::PoolSample*> by_key;
    for (const sft::PoolSample& s : pool.samples) by_key[sft::sample_key(s.source, s.id)] = &s;
    std::vector<sft::ScoreRecord> matched;
    int64_t missing = 0;
    for (sft::ScoreRecord& r : recs) {
      auto it = by_key.find(sft::sample_key(match_source(r.source, data_files), r.id));
      if (it == by_key.end()) {
        missing++;
        continue;
      }
      if (!tag_rules.empty() || !tag_field.empty()) r.tags = it->second->tags;
      sample_of.push_back(it->second);
      matched.push_back(std::move(r));
    }
    recs = std::move(matched);
    counts["not_in_data"] = missing;
    counts["data"] = {{"samples", pool.report.samples}, {"usable", pool.report.kept}, {"skipped", pool.report.skipped}};
  }
  if (recs.empty()) bad_input(scores + ": no usable scores (" + counts.dump() + ")");
  for (const auto& r : recs) known_tags.insert(r.tags.begin(), r.tags.end());
  for (const auto& [t, share] : o.tag_shares)
    if (!known_tags.count(t)) {
      std::string names;
      for (const std::string& k : known_tags) names += (names.empty() ? "" : ", ") + k;
      bad_input("--tag-share: unknown tag '" + t + "' (tags present: " + (names.empty() ? "none" : names) + ")");
    }

  std::function<bool(size_t)> accept;
  data::DedupConfig dc;
  data::MinHasher hasher(dc);
  data::LshIndex lsh(dc.bands, dc.rows);
  std::vector<uint32_t> sig(dc.num_perm);
  if (dedup)
    accept = [&](size_t i) {
      const sft::PoolSample& s = *sample_of[i];
      hasher.signature(sft::conversation_text(s.conv), lang_code(s.lang), sig.data());
      if (lsh.query(sig.data())) return false;
      lsh.insert(sig.data());
      return true;
    };
  const sft::PickResult res = sft::pick(recs, o, accept);
  counts["near_duplicates_refused"] = res.refused;
  if (res.kept.empty())
    bad_input("nothing was picked (" + std::to_string(res.eligible) + " of " + std::to_string(recs.size()) +
              " samples eligible)");
  // What was left out, now that the inputs are known to be usable.
  if (!data_files.empty()) log_info("data: %s", pool.report.summary().c_str());
  if (rc.invalid_score)
    log_warn("%s: %lld lines without a finite '%s': left out", scores.c_str(), (long long)rc.invalid_score, by.c_str());
  if (rc.duplicate) log_warn("%s: %lld lines repeat an id: left out", scores.c_str(), (long long)rc.duplicate);
  if (counts.value("not_in_data", 0) > 0)
    log_warn("%lld scored samples are not in --data: left out", (long long)counts["not_in_data"].get<int64_t>());
  std::string text;
  int64_t tokens = 0;
  for (size_t i : res.kept) {
    tokens += recs[i].seq_tokens;
    if (sample_of.empty()) {
      text += recs[i].line + "\n";
    } else {
      const std::string& raw = sample_of[i]->raw;
      text += (raw.find('\n') == std::string::npos ? raw : json::parse(raw).dump()) + "\n";
    }
  }
  write_file_atomic(out, text);
  json settings = {{"scores", scores},
                   {"by", by},
                   {"data", data_files},
                   {"band", band},
                   {"band_z", band_z},
                   {"target", std::isnan(target) ? json(nullptr) : json(target)},
                   {"top", top},
                   {"bottom", bottom},
                   {"random", random},
                   {"stratify", stratify},
                   {"size", size},
                   {"token_budget", budget},
                   {"dedup", dedup},
                   {"tag_rules", tag_rules},
                   {"tag_field", tag_field},
                   {"tag_share", tag_share},
                   {"seed", seed}};
  const json report = sft::pick_report(recs, res, settings, counts);
  std::filesystem::create_directories(report_dir);
  write_file_atomic(report_dir + "/report.json", report.dump(2) + "\n");
  write_file_atomic(report_dir + "/report.html", sft::pick_report_html(report));
  print_summary(output, "select pick",
                "picked " + std::to_string(res.kept.size()) + " of " + std::to_string(recs.size()) + " samples (" +
                    std::to_string(tokens) + " tokens) into " + out + "; report in " + report_dir +
                    "/report.{json,html}",
                {{"picked", res.kept.size()},
                 {"pool", recs.size()},
                 {"tokens", tokens},
                 {"out", out},
                 {"report", report_dir + "/report.json"}});
  return 0;
}

}  // namespace mindllm::cli
