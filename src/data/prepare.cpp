#include "data/prepare.h"

#include <omp.h>

#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "core/file_io.h"
#include "data/pii.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "data/stream.h"

namespace fs = std::filesystem;

namespace mindllm::data {

namespace {

// Reads batches of documents on a background thread (at most two batches ahead).
class BatchReader {
 public:
  BatchReader(std::vector<std::string> files, const ReaderConfig& rc, uint64_t batch_bytes)
      : reader_(std::move(files), rc), batch_bytes_(batch_bytes) {
    thread_ = std::thread([this] { run(); });
  }
  ~BatchReader() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Next batch; empty at the end. Rethrows an error from the reader thread.
  std::vector<RawDoc> next() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !queue_.empty() || done_; });
    if (error_) std::rethrow_exception(error_);
    if (queue_.empty()) return {};
    auto b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  uint64_t bytes_read() const { return bytes_read_.load(); }
  ReadStats stats() {
    std::lock_guard<std::mutex> l(mu_);
    return reader_.stats();
  }

 private:
  void run() {
    try {
      for (;;) {
        std::vector<RawDoc> batch;
        uint64_t bytes = 0;
        RawDoc d;
        bool more = true;
        while (bytes < batch_bytes_ && (more = reader_.next(d))) {
          bytes += d.text.size();
          batch.push_back(std::move(d));
          d = RawDoc{};
          bytes_read_ = reader_.bytes_read();
        }
        bytes_read_ = reader_.bytes_read();
        std::unique_lock<std::mutex> l(mu_);
        if (!batch.empty()) queue_.push_back(std::move(batch));
        cv_.notify_all();
        if (!more) break;
        cv_.wait(l, [&] { return queue_.size() < 2 || stop_; });
        if (stop_) break;
      }
    } catch (...) {
      std::lock_guard<std::mutex> l(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  DocumentReader reader_;
  uint64_t batch_bytes_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<RawDoc>> queue_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::atomic<uint64_t> bytes_read_{0};
};

struct DocResult {
  bool from_json = false;                // a raw JSONL line, parsed by the worker
  ReadProblem read = ReadProblem::none;  // ... that was not a document
  std::string read_message;
  std::string text;
  Lang lang = Lang::other;
  std::string removed_by;
  uint64_t exact = 0;
  std::vector<uint32_t> sig;
  PiiCounts pii;
};

struct LangCount {
  uint64_t docs[3] = {0, 0, 0}, bytes[3] = {0, 0, 0};
};

nlohmann::json lang_json(const LangCount& c) {
  nlohmann::json j;
  uint64_t td = 0, tb = 0;
  for (int l = 0; l < 3; l++) {
    j[lang_name(static_cast<Lang>(l))] = {{"docs", c.docs[l]}, {"bytes", c.bytes[l]}};
    td += c.docs[l], tb += c.bytes[l];
  }
  j["total"] = {{"docs", td}, {"bytes", tb}};
  return j;
}

std::string snippet(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  return s.substr(0, utf8::char_boundary_before(s, max_bytes)) + "…";
}

// Output parts data-NNNNN.jsonl[.zst], rotated at max_file_bytes.
class PartWriter {
 public:
  PartWriter(std::string dir, bool compress, int level, uint64_t max_bytes)
      : dir_(std::move(dir)), compress_(compress), level_(level), max_(max_bytes) {}
  void write(const std::string& line) {
    if (!cur_ || cur_->bytes_in() >= max_) open();
    cur_->write(line);
  }
  // Commits every part; returns their names.
  std::vector<std::string> commit() {
    if (!cur_) open();  // always at least one (maybe empty) part
    for (auto& f : done_) f->commit();
    cur_->commit();
    std::vector<std::string> names;
    for (auto& f : done_) names.push_back(fs::path(f->path()).filename().string());
    names.push_back(fs::path(cur_->path()).filename().string());
    return names;
  }

 private:
  void open() {
    if (cur_) done_.push_back(std::move(cur_));
    char name[64];
    std::snprintf(name, sizeof name, "data-%05zu.jsonl%s", done_.size(), compress_ ? ".zst" : "");
    cur_ = std::make_unique<OutputFile>((fs::path(dir_) / name).string(), compress_ ? level_ : 0);
  }
  std::string dir_;
  bool compress_;
  int level_;
  uint64_t max_;
  std::unique_ptr<OutputFile> cur_;
  std::vector<std::unique_ptr<OutputFile>> done_;
};

uint64_t total_input_bytes(const std::vector<std::string>& files) {
  uint64_t t = 0;
  std::error_code ec;
  for (auto& f : files) {
    auto s = fs::file_size(f, ec);
    if (!ec) t += s;
  }
  return t;
}

void prepare_output_dir(const std::string& out) {
  if (out.empty()) bad_input("--output: an output directory is required");
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out)) bad_input(out + ": cannot create the output directory");
  // An old report would make a half-written new output look complete: remove it first.
  fs::remove(fs::path(out) / "report.json", ec);
}

// Old parts of an earlier run that this run did not write.
void remove_stale_parts(const std::string& out, const std::vector<std::string>& keep) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(out, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("data-", 0) == 0 && (n.ends_with(".jsonl") || n.ends_with(".jsonl.zst")) &&
        std::find(keep.begin(), keep.end(), n) == keep.end())
      fs::remove(e.path(), ec);
  }
}

nlohmann::json read_stats_json(const ReadStats& s) {
  return {{"files", s.files},
          {"bytes", s.bytes},
          {"documents", s.docs},
          {"invalid_utf8", s.invalid_utf8},
          {"bad_json", s.bad_json},
          {"missing_field", s.missing_field},
          {"too_long", s.too_long},
          {"empty", s.empty},
          {"damaged_files", s.damaged_files},
          {"unreadable_files", s.unreadable_files},
          {"messages", s.messages}};
}

}  // namespace

nlohmann::json run_prepare(const PrepareConfig& cfg) {
  auto t0 = std::chrono::steady_clock::now();
  check_dedup_config(cfg.dedup);
  check_clean_config(cfg.clean);
  iconv_encoding(cfg.reader.encoding);  // an unknown encoding fails before any output
  if (cfg.inputs.empty()) bad_input("--input: no input files given");
  std::vector<std::string> files = expand_inputs(cfg.inputs);
  prepare_output_dir(cfg.output);
  install_interrupt_handler();
  int threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();

  MinHasher hasher(cfg.dedup);
  LshIndex lsh(cfg.dedup.bands, cfg.dedup.rows);
  FlatSet64 exact(1 << 16);
  PartWriter writer(cfg.output, cfg.compress, cfg.zstd_level, cfg.max_file_bytes);
  Progress progress("data prepare", total_input_bytes(files) / 1e6, "MB", cfg.progress);

  LangCount kept, seen;
  std::map<std::string, LangCount> removed;
  std::map<std::string, nlohmann::json> examples;
  PiiCounts pii_total;
  uint64_t docs_in = 0, bytes_in = 0, changed_by_cleaning = 0;
  int np = cfg.dedup.num_perm;

  ReaderConfig reader_cfg = cfg.reader;
  reader_cfg.defer_json = true;
  ReadStats worker_reads;  // documents checked in the workers (deferred JSON), in input order
  BatchReader batches(files, reader_cfg, cfg.batch_bytes);
  std::vector<DocResult> res;
  for (;;) {
    std::vector<RawDoc> batch = batches.next();
    if (batch.empty()) break;
    check_interrupted("data prepare");
    res.assign(batch.size(), DocResult{});
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
    for (size_t i = 0; i < batch.size(); i++) {
      DocResult& r = res[i];
      if (batch[i].raw_json) {  // JSON is parsed here, in parallel; the reader only splits lines
        r.from_json = true;
        r.read = parse_raw_json(batch[i], reader_cfg, files[batch[i].file_index], &r.read_message);
        if (r.read != ReadProblem::none) continue;
      }
      r.text = clean_text(batch[i].text, cfg.clean);
      r.lang = identify_language(r.text, cfg.langid).lang;
      if (r.text.empty()) {
        r.removed_by = "empty_after_cleaning";
        continue;
      }
      r.removed_by = apply_filters(r.text, r.lang, cfg.filters);
      if (!r.removed_by.empty()) continue;
      if (cfg.pii) r.text = scrub_pii(r.text, &r.pii);
      if (cfg.dedup.exact) r.exact = exact_text_hash(r.text);
      if (cfg.dedup.near) {
        r.sig.resize(static_cast<size_t>(np));
        hasher.signature(r.text, r.lang, r.sig.data());
      }
    }
    // Decide in input order: deterministic whatever the thread count.
    std::string line;
    for (size_t i = 0; i < batch.size(); i++) {
      DocResult& r = res[i];
      if (r.from_json) worker_reads.count(r.read, r.read_message);  // a document, or the problem
      if (r.read != ReadProblem::none) continue;
      int l = static_cast<int>(r.lang);
      docs_in++;
      bytes_in += batch[i].text.size();
      seen.docs[l]++, seen.bytes[l] += batch[i].text.size();
      if (r.text != batch[i].text) changed_by_cleaning++;
      if (r.removed_by.empty() && cfg.dedup.exact && !exact.insert(r.exact)) r.removed_by = "exact_duplicate";
      if (r.removed_by.empty() && cfg.dedup.near) {
        if (lsh.query(r.sig.data())) r.removed_by = "near_duplicate";
        else lsh.insert(r.sig.data());
      }
      const std::string& src = files[batch[i].file_index];
      if (!r.removed_by.empty()) {
        auto& c = removed[r.removed_by];
        c.docs[l]++, c.bytes[l] += batch[i].text.size();
        auto& ex = examples[r.removed_by];
        if (ex.is_null()) ex = nlohmann::json::array();
        if (static_cast<int>(ex.size()) < cfg.examples_per_filter)
          ex.push_back({{"source", src + ":" + std::to_string(batch[i].line)},
                        {"lang", lang_name(r.lang)},
                        {"text", snippet(r.text.empty() ? batch[i].text : r.text, 300)}});
        continue;
      }
      pii_total.add(r.pii);
      kept.docs[l]++, kept.bytes[l] += r.text.size();
      nlohmann::json rec = {
          {"text", r.text}, {"lang", lang_name(r.lang)}, {"source", src + ":" + std::to_string(batch[i].line)}};
      line = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      line.push_back('\n');
      writer.write(line);
    }
    progress.update(batches.bytes_read() / 1e6, std::to_string(docs_in) + " docs");
  }
  check_interrupted("data prepare");
  ReadStats rs = batches.stats();
  rs.add(worker_reads);
  progress.finish(rs.bytes / 1e6, std::to_string(docs_in) + " docs");
  std::vector<std::string> parts = writer.commit();
  remove_stale_parts(cfg.output, parts);

  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json rep;
  rep["inputs"] = files;
  rep["read"] = read_stats_json(rs);
  uint64_t removed_docs = 0;
  nlohmann::json rem = nlohmann::json::object();
  for (auto& [name, c] : removed) {
    rem[name] = lang_json(c);
    removed_docs += rem[name]["total"]["docs"].get<uint64_t>();
  }
  rep["documents"] = {{"read", docs_in},
                      {"kept", docs_in - removed_docs},
                      {"removed", removed_docs},
                      {"changed_by_cleaning", changed_by_cleaning}};
  rep["languages_read"] = lang_json(seen);
  rep["kept"] = lang_json(kept);
  rep["removed"] = rem;
  rep["examples"] = examples.empty() ? nlohmann::json::object() : nlohmann::json(examples);
  rep["pii"] = {{"enabled", cfg.pii},
                {"email", pii_total.email},
                {"phone", pii_total.phone},
                {"id_number", pii_total.id_number},
                {"ip_address", pii_total.ip}};
  rep["dedup"] = {{"exact_index_entries", exact.size()}, {"lsh_index_bytes", lsh.memory_bytes()}};
  rep["output"] = {{"files", parts}, {"bytes_uncompressed", kept.bytes[0] + kept.bytes[1] + kept.bytes[2]}};
  rep["config"] = prepare_config_to_json(cfg);
  rep["timing"] = {{"seconds", secs}, {"threads", threads}, {"input_mb_per_s", secs > 0 ? bytes_in / 1e6 / secs : 0}};
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
  BatchReader batches(files, rc, 16u << 20);
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
