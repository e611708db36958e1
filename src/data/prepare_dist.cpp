// `mpirun -np N mindllm data prepare`: the inputs split across the ranks, deduplication global,
// the output and report.json those of one process (docs/distributed.md, "Data preparation").
//
//  1. Plan (rank 0, broadcast): the input bytes, in input order, cut into N contiguous ranges. A
//     plain line-per-document file (JSONL, or --text-unit line) splits at line starts: a line
//     belongs to the range holding its first byte; any other file goes whole to the rank whose
//     range holds its first byte. Every rank checks that it can open its files, with rank 0's sizes.
//  2. Each rank reads, cleans, filters and hashes its share as one process does, counts what the
//     filters removed, and spills the survivors ("candidates") to <output>/.prepare-rank-R.tmp,
//     keeping their exact hash and LSH band keys in memory. Candidates are numbered in global
//     input order (rank r's come after those of ranks < r).
//  3. Deduplication across the ranks, deciding what one process decides (dedup_dist.h).
//  4. Rank 0 writes the parts: its kept documents, then rank 1's (sent in pieces), ... - the bytes
//     one process writes; the ranks' counts are merged in rank order into report.json.
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <tuple>

#include "core/error.h"
#include "core/file_io.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "data/batch_reader.h"
#include "data/dedup_dist.h"
#include "data/prepare.h"
#include "data/prepare_steps.h"
#include "dist/communicator.h"
#include "dist/consistency.h"

namespace fs = std::filesystem;

namespace mindllm::data {

namespace {

using dist::Communicator;

// Step 1: each rank's spans of the inputs, and the file sizes rank 0 saw.
struct SharePlan {
  std::vector<uint64_t> sizes;
  std::vector<std::vector<ReadSpan>> spans;  // per rank, in input order
};

SharePlan plan_shares(const std::vector<std::string>& files, const ReaderConfig& rc, int ranks) {
  SharePlan p;
  p.spans.resize(static_cast<size_t>(ranks));
  uint64_t total = 0;
  for (auto& f : files) {
    std::error_code ec;
    uint64_t size = fs::file_size(f, ec);
    if (ec) bad_input(f + ": cannot read its size: " + ec.message());
    p.sizes.push_back(size);
    total += size;
  }
  auto bound = [&](int r) {  // where rank r's range starts
    return static_cast<uint64_t>(static_cast<unsigned __int128>(total) * static_cast<unsigned>(r) / ranks);
  };
  auto owner = [&](uint64_t at) {
    int r = ranks - 1;
    while (r > 0 && bound(r) > at) r--;
    return r;
  };
  uint64_t start = 0;
  for (uint32_t f = 0; f < files.size(); f++) {
    const uint64_t size = p.sizes[f], end = start + size;
    if (size > 0 && splittable(files[f], rc)) {
      for (int r = 0; r < ranks; r++) {
        uint64_t lo = std::max(bound(r), start), hi = r + 1 < ranks ? std::min(bound(r + 1), end) : end;
        if (lo < hi) p.spans[r].push_back({f, lo - start, hi == end ? UINT64_MAX : hi - start, 0});
      }
    } else {
      p.spans[owner(start)].push_back({f});
    }
    start = end;
  }
  return p;
}

std::string plan_to_text(const SharePlan& p) {
  nlohmann::json spans = nlohmann::json::array();
  for (auto& rank : p.spans) {
    nlohmann::json list = nlohmann::json::array();
    for (auto& s : rank) list.push_back({s.file, s.begin, s.end});
    spans.push_back(list);
  }
  return nlohmann::json({{"sizes", p.sizes}, {"spans", spans}}).dump();
}

SharePlan plan_from_text(const std::string& text) {
  auto j = nlohmann::json::parse(text);
  SharePlan p;
  p.sizes = j["sizes"].get<std::vector<uint64_t>>();
  for (auto& rank : j["spans"]) {
    p.spans.emplace_back();
    for (auto& s : rank)
      p.spans.back().push_back({s[0].get<uint32_t>(), s[1].get<uint64_t>(), s[2].get<uint64_t>(), 0});
  }
  return p;
}

// A rank must see every file of its share as rank 0 does (same size, readable).
void check_my_files(const std::vector<std::string>& files, const SharePlan& p, int rank) {
  for (const ReadSpan& s : p.spans[rank]) {
    const std::string& f = files[s.file];
    std::error_code ec;
    uint64_t size = fs::file_size(f, ec);
    if (ec) bad_input(f + ": cannot read it: " + ec.message() + " (every rank must see every input file)");
    if (size != p.sizes[s.file])
      bad_input(f + ": " + std::to_string(size) + " bytes here but " + std::to_string(p.sizes[s.file]) +
                " on rank 0 (every rank must see the same input files)");
    std::FILE* fp = std::fopen(f.c_str(), "rb");
    if (!fp) bad_input(f + ": cannot open: " + std::strerror(errno) + " (every rank must see every input file)");
    std::fclose(fp);
  }
}

uint64_t count_newlines(const std::string& path, uint64_t begin, uint64_t end) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp || std::fseek(fp, static_cast<long>(begin), SEEK_SET) != 0) {
    if (fp) std::fclose(fp);
    bad_input(path + ": cannot read from byte " + std::to_string(begin));
  }
  std::vector<char> buf(1 << 20);
  uint64_t n = 0, left = end - begin;
  while (left > 0) {
    size_t got = std::fread(buf.data(), 1, std::min<uint64_t>(left, buf.size()), fp);
    if (got == 0) break;
    n += static_cast<uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
    left -= got;
  }
  std::fclose(fp);
  return n;
}

// The newlines in this rank's partial spans, in order (for number_lines).
std::string my_newline_counts(const std::vector<std::string>& files, const SharePlan& p, int rank) {
  std::string mine;
  for (const ReadSpan& s : p.spans[rank])
    if (!s.whole()) dist::append_bytes(mine, count_newlines(files[s.file], s.begin, std::min(s.end, p.sizes[s.file])));
  return mine;
}

// The line numbers of split files: a span's first line comes after the newlines of the spans
// before it (lower ranks). Collective.
void number_lines(Communicator& c, const std::string& my_counts, SharePlan& p) {
  const std::vector<std::string> all = dist::all_gather(c, my_counts);
  std::vector<uint64_t> seen(p.sizes.size(), 0);
  for (int r = 0; r < c.size(); r++) {
    std::vector<uint64_t> counts = dist::bytes_as<uint64_t>(all[r]);
    size_t k = 0;
    for (ReadSpan& s : p.spans[r]) {
      if (s.whole()) continue;
      s.lines_before = seen[s.file];
      seen[s.file] += counts.at(k++);
    }
  }
}

// A candidate's record in the spill file.
struct Spilled {
  uint32_t file;
  uint8_t lang;
  uint64_t line, raw_bytes;
  PiiCounts pii;
  std::string text;
};

class SpillFile {
 public:
  explicit SpillFile(std::string path) : path_(std::move(path)) {
    f_ = std::fopen(path_.c_str(), "w+b");
    if (!f_) bad_input(path_ + ": cannot write: " + std::strerror(errno));
  }
  ~SpillFile() {
    std::fclose(f_);
    std::remove(path_.c_str());
  }
  void write(const Spilled& s) {
    buf_.clear();
    dist::append_bytes(buf_, s.file), dist::append_bytes(buf_, s.lang), dist::append_bytes(buf_, s.line),
        dist::append_bytes(buf_, s.raw_bytes), dist::append_bytes(buf_, s.pii);
    dist::append_bytes(buf_, static_cast<uint64_t>(s.text.size()));
    buf_ += s.text;
    if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
      bad_input(path_ + ": write failed: " + std::strerror(errno));
  }
  void rewind() {
    if (std::fflush(f_) != 0) bad_input(path_ + ": write failed: " + std::strerror(errno));
    std::rewind(f_);
  }
  void read(Spilled& s) {
    uint64_t n = 0;
    bool ok = get(s.file) && get(s.lang) && get(s.line) && get(s.raw_bytes) && get(s.pii) && get(n);
    s.text.resize(ok ? n : 0);
    if (!ok || std::fread(s.text.data(), 1, n, f_) != n) internal_error(path_ + ": spilled record cut short");
  }

 private:
  template <class T>
  bool get(T& v) {
    return std::fread(&v, sizeof v, 1, f_) == 1;
  }
  std::string path_, buf_;
  std::FILE* f_ = nullptr;
};

// Step 2's result on one rank.
struct Share {
  PrepareTally tally;
  std::vector<uint64_t> exact;      // per candidate (dedup.exact)
  std::vector<uint64_t> band_keys;  // bands per candidate (dedup.near)
  uint64_t candidates = 0;
};

void read_share(const PrepareConfig& cfg, const std::vector<std::string>& files, const std::vector<ReadSpan>& spans,
                SpillFile& spill, Share& share, int threads, bool show_progress, uint64_t share_bytes) {
  const LshIndex lsh(cfg.dedup.bands, cfg.dedup.rows);  // for its band keys
  Progress progress("data prepare (rank 0's share)", share_bytes / 1e6, "MB", show_progress);
  process_inputs(cfg, files, spans, threads, progress, share.tally, [&](const RawDoc& d, DocResult& r) {
    const std::string& file = files[d.file_index];
    if (!r.removed_by.empty()) {
      share.tally.remove(r.removed_by, r.lang, d.text.size(), file + ":" + std::to_string(d.line),
                         r.text.empty() ? d.text : r.text);
      return;
    }
    if (cfg.dedup.exact) share.exact.push_back(r.exact);
    if (cfg.dedup.near)
      for (int b = 0; b < lsh.bands(); b++) share.band_keys.push_back(lsh.band_key(r.sig.data(), b));
    spill.write({d.file_index, static_cast<uint8_t>(r.lang), d.line, d.text.size(), r.pii, std::move(r.text)});
    share.candidates++;
  });
}

// Step 4 on one rank: the decisions into the counts; kept records to `emit`, in order.
void write_share(const std::vector<std::string>& files, SpillFile& spill, Share& s, const std::vector<Verdict>& verdict,
                 const std::function<void(const std::string&)>& emit) {
  spill.rewind();
  Spilled d;
  for (uint64_t i = 0; i < s.candidates; i++) {
    spill.read(d);
    const Lang lang = static_cast<Lang>(d.lang);
    const std::string source = files[d.file] + ":" + std::to_string(d.line);
    if (verdict[i] != Verdict::kept) {
      s.tally.remove(verdict[i] == Verdict::exact_duplicate ? "exact_duplicate" : "near_duplicate", lang, d.raw_bytes,
                     source, d.text);
      continue;
    }
    s.tally.keep(lang, d.text.size(), d.pii);
    emit(output_record(d.text, lang, source));
  }
}

}  // namespace

nlohmann::json run_prepare(const PrepareConfig& cfg, dist::Communicator& c) {
  if (c.size() == 1) return run_prepare(cfg);
  auto t0 = std::chrono::steady_clock::now();
  const int rank = c.rank(), N = c.size();
  const bool lead = rank == 0;
  std::vector<std::string> files;
  dist::all_or_none(c, [&] {
    check_prepare_config(cfg);
    files = expand_inputs(cfg.inputs);
  });
  nlohmann::json fields = prepare_config_to_json(cfg);
  fields["the input files"] = files;
  dist::check_same_on_all_ranks(c, fields);
  install_interrupt_handler();
  const int threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();

  SharePlan plan;
  dist::all_or_none(c, [&] {
    if (lead) prepare_output_dir(cfg.output);
    else fs::create_directories(cfg.output);  // for this rank's spill file (a host of its own)
  });
  std::string text;
  dist::all_or_none(c, [&] {
    if (lead) text = plan_to_text(plan_shares(files, cfg.reader, N));
  });
  dist::broadcast(c, text, 0);
  plan = plan_from_text(text);
  std::string counts;
  dist::all_or_none(c, [&] {
    check_my_files(files, plan, rank);
    counts = my_newline_counts(files, plan, rank);
  });
  number_lines(c, counts, plan);

  char name[64];
  std::snprintf(name, sizeof name, ".prepare-rank-%05d.tmp", rank);
  std::unique_ptr<SpillFile> spill;
  Share share;
  share.tally.examples_per_reason = cfg.examples_per_filter;
  dist::all_or_none(c, [&] {
    spill = std::make_unique<SpillFile>((fs::path(cfg.output) / name).string());
    uint64_t bytes = 0;
    for (auto& s : plan.spans[rank]) bytes += std::min(s.end, plan.sizes[s.file]) - s.begin;
    read_share(cfg, files, plan.spans[rank], *spill, share, threads, cfg.progress && lead, bytes);
  });

  const DedupAcrossRanks dd = dedup_across_ranks(
      c, {share.candidates, cfg.dedup.exact, cfg.dedup.near, share.exact, share.band_keys, cfg.dedup.bands});
  const std::vector<Verdict>& verdict = dd.verdict;
  PrepareRun run;
  run.threads = threads, run.ranks = N;
  run.dedup = {{"exact_index_entries", dd.distinct_hashes}, {"lsh_keys_exchanged", dd.keys_exchanged}};
  constexpr size_t kPiece = 8u << 20;
  if (!lead) {
    std::string piece;
    write_share(files, *spill, share, verdict, [&](const std::string& line) {
      piece += line;
      if (piece.size() >= kPiece) c.send(piece, 0), piece.clear();
    });
    if (!piece.empty()) c.send(piece, 0);
    c.send("", 0);  // the end of this rank's records
    dist::all_gather(c, share.tally.to_json().dump());
    std::string rep;
    dist::broadcast(c, rep, 0);
    return nlohmann::json::parse(rep);
  }
  PartWriter writer(cfg.output, cfg.compress, cfg.zstd_level, cfg.max_file_bytes);
  write_share(files, *spill, share, verdict, [&](const std::string& line) { writer.write(line); });
  for (int r = 1; r < N; r++)
    for (std::string piece = c.recv(r); !piece.empty(); piece = c.recv(r))
      for (size_t at = 0; at < piece.size();) {  // whole records, as one process writes them (part rotation)
        size_t nl = piece.find('\n', at);
        writer.write(piece.substr(at, nl + 1 - at));
        at = nl + 1;
      }
  PrepareTally tally;
  tally.examples_per_reason = cfg.examples_per_filter;
  for (auto& t : dist::all_gather(c, share.tally.to_json().dump()))
    tally.merge(PrepareTally::from_json(nlohmann::json::parse(t)));
  run.parts = writer.commit();
  remove_stale_parts(cfg.output, run.parts);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json rep = prepare_report(cfg, files, tally, run);
  write_file_atomic((fs::path(cfg.output) / "report.json").string(), rep.dump(2) + "\n");
  std::string text_rep = rep.dump();
  dist::broadcast(c, text_rep, 0);
  return rep;
}

}  // namespace mindllm::data
