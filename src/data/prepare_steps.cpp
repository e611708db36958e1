#include "data/prepare_steps.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/utf8.h"
#include "data/batch_reader.h"
#include "data/filters.h"

namespace fs = std::filesystem;

namespace mindllm::data {

namespace {

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

LangCount lang_count(const nlohmann::json& j) {
  LangCount c;
  for (int l = 0; l < 3; l++) {
    const auto& e = j.at(lang_name(static_cast<Lang>(l)));
    c.docs[l] = e.at("docs").get<uint64_t>(), c.bytes[l] = e.at("bytes").get<uint64_t>();
  }
  return c;
}

void add(LangCount& a, const LangCount& b) {
  for (int l = 0; l < 3; l++) a.docs[l] += b.docs[l], a.bytes[l] += b.bytes[l];
}

ReadStats read_stats(const nlohmann::json& j) {
  ReadStats s;
  s.files = j.at("files"), s.bytes = j.at("bytes"), s.docs = j.at("documents");
  s.invalid_utf8 = j.at("invalid_utf8"), s.bad_json = j.at("bad_json"), s.missing_field = j.at("missing_field");
  s.too_long = j.at("too_long"), s.empty = j.at("empty");
  s.damaged_files = j.at("damaged_files"), s.unreadable_files = j.at("unreadable_files");
  s.messages = j.at("messages").get<std::vector<std::string>>();
  return s;
}

std::string snippet(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  return s.substr(0, utf8::char_boundary_before(s, max_bytes)) + "…";
}

}  // namespace

void process_document(RawDoc& doc, DocResult& r, const PrepareConfig& cfg, const ReaderConfig& rc,
                      const MinHasher& hasher, const std::string& file) {
  if (doc.raw_json) {  // JSON is parsed here, in parallel; the reader only splits lines
    r.from_json = true;
    r.read = parse_raw_json(doc, rc, file, &r.read_message);
    if (r.read != ReadProblem::none) return;
  }
  r.text = clean_text(doc.text, cfg.clean);
  r.lang = identify_language(r.text, cfg.langid).lang;
  if (r.text.empty()) {
    r.removed_by = "empty_after_cleaning";
    return;
  }
  r.removed_by = apply_filters(r.text, r.lang, cfg.filters);
  if (!r.removed_by.empty()) return;
  if (cfg.pii) r.text = scrub_pii(r.text, &r.pii);
  if (cfg.dedup.exact) r.exact = exact_text_hash(r.text);
  if (cfg.dedup.near) {
    r.sig.resize(static_cast<size_t>(cfg.dedup.num_perm));
    hasher.signature(r.text, r.lang, r.sig.data());
  }
}

void process_inputs(const PrepareConfig& cfg, const std::vector<std::string>& files, std::vector<ReadSpan> spans,
                    int threads, Progress& progress, PrepareTally& tally,
                    const std::function<void(const RawDoc&, DocResult&)>& decide) {
  const MinHasher hasher(cfg.dedup);
  ReaderConfig reader_cfg = cfg.reader;
  reader_cfg.defer_json = true;  // JSON parsed in the workers
  BatchReader batches(files, reader_cfg, cfg.batch_bytes, std::move(spans));
  std::vector<DocResult> res;
  for (;;) {
    std::vector<RawDoc> batch = batches.next();
    if (batch.empty()) break;
    check_interrupted("data prepare");
    res.assign(batch.size(), DocResult{});
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
    for (size_t i = 0; i < batch.size(); i++)
      process_document(batch[i], res[i], cfg, reader_cfg, hasher, files[batch[i].file_index]);
    for (size_t i = 0; i < batch.size(); i++)
      if (tally.read(batch[i], res[i])) decide(batch[i], res[i]);
    progress.update(batches.bytes_read() / 1e6, std::to_string(tally.docs_in) + " docs");
  }
  check_interrupted("data prepare");
  tally.reads = batches.stats();
  progress.finish(tally.reads.bytes / 1e6, std::to_string(tally.docs_in) + " docs");
}

std::string output_record(const std::string& text, Lang lang, const std::string& source) {
  nlohmann::json rec = {{"text", text}, {"lang", lang_name(lang)}, {"source", source}};
  std::string line = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

bool PrepareTally::read(const RawDoc& d, const DocResult& r) {
  if (r.from_json) worker_reads.count(r.read, r.read_message);  // a document, or the problem
  if (r.read != ReadProblem::none) return false;
  docs_in++;
  bytes_in += d.text.size();
  seen.add(r.lang, d.text.size());
  if (r.text != d.text) changed_by_cleaning++;
  return true;
}

void PrepareTally::remove(const std::string& why, Lang lang, uint64_t raw_bytes, const std::string& source,
                          const std::string& text) {
  removed[why].add(lang, raw_bytes);
  auto& ex = examples[why];
  if (ex.is_null()) ex = nlohmann::json::array();
  if (static_cast<int>(ex.size()) < examples_per_reason)
    ex.push_back({{"source", source}, {"lang", lang_name(lang)}, {"text", snippet(text, 300)}});
}

void PrepareTally::merge(const PrepareTally& o) {
  reads.add(o.reads);
  worker_reads.add(o.worker_reads);
  add(seen, o.seen);
  add(kept, o.kept);
  for (auto& [why, c] : o.removed) add(removed[why], c);
  for (auto& [why, list] : o.examples) {
    auto& ex = examples[why];
    if (ex.is_null()) ex = nlohmann::json::array();
    for (auto& e : list)
      if (static_cast<int>(ex.size()) < examples_per_reason) ex.push_back(e);
  }
  pii.add(o.pii);
  docs_in += o.docs_in, bytes_in += o.bytes_in, changed_by_cleaning += o.changed_by_cleaning;
}

nlohmann::json PrepareTally::to_json() const {
  nlohmann::json rem = nlohmann::json::object();
  for (auto& [why, c] : removed) rem[why] = lang_json(c);
  return {{"reads", read_stats_json(reads)},
          {"worker_reads", read_stats_json(worker_reads)},
          {"seen", lang_json(seen)},
          {"kept", lang_json(kept)},
          {"removed", rem},
          {"examples", examples.empty() ? nlohmann::json::object() : nlohmann::json(examples)},
          {"pii", {pii.email, pii.phone, pii.id_number, pii.ip}},
          {"counts", {docs_in, bytes_in, changed_by_cleaning}},
          {"examples_per_reason", examples_per_reason}};
}

PrepareTally PrepareTally::from_json(const nlohmann::json& j) {
  PrepareTally t;
  t.reads = read_stats(j.at("reads"));
  t.worker_reads = read_stats(j.at("worker_reads"));
  t.seen = lang_count(j.at("seen"));
  t.kept = lang_count(j.at("kept"));
  for (auto& [why, c] : j.at("removed").items()) t.removed[why] = lang_count(c);
  for (auto& [why, list] : j.at("examples").items()) t.examples[why] = list;
  const auto& p = j.at("pii");
  t.pii = {p[0], p[1], p[2], p[3]};
  const auto& n = j.at("counts");
  t.docs_in = n[0], t.bytes_in = n[1], t.changed_by_cleaning = n[2];
  t.examples_per_reason = j.at("examples_per_reason");
  return t;
}

void PartWriter::write(const std::string& line) {
  if (!cur_ || cur_->bytes_in() >= max_) open();
  cur_->write(line);
}

std::vector<std::string> PartWriter::commit() {
  if (!cur_) open();  // always at least one (maybe empty) part
  for (auto& f : done_) f->commit();
  cur_->commit();
  std::vector<std::string> names;
  for (auto& f : done_) names.push_back(fs::path(f->path()).filename().string());
  names.push_back(fs::path(cur_->path()).filename().string());
  return names;
}

void PartWriter::open() {
  if (cur_) done_.push_back(std::move(cur_));
  char name[64];
  std::snprintf(name, sizeof name, "data-%05zu.jsonl%s", done_.size(), compress_ ? ".zst" : "");
  cur_ = std::make_unique<OutputFile>((fs::path(dir_) / name).string(), compress_ ? level_ : 0);
}

void check_prepare_config(const PrepareConfig& cfg) {
  check_dedup_config(cfg.dedup);
  check_clean_config(cfg.clean);
  iconv_encoding(cfg.reader.encoding);  // an unknown encoding fails before any output
  if (cfg.inputs.empty()) bad_input("--input: no input files given");
}

void prepare_output_dir(const std::string& out) {
  if (out.empty()) bad_input("--output: an output directory is required");
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out)) bad_input(out + ": cannot create the output directory");
  // An old report would make a half-written new output look complete: remove it first.
  fs::remove(fs::path(out) / "report.json", ec);
}

void remove_stale_parts(const std::string& out, const std::vector<std::string>& keep) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(out, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("data-", 0) == 0 && (n.ends_with(".jsonl") || n.ends_with(".jsonl.zst")) &&
        std::find(keep.begin(), keep.end(), n) == keep.end())
      fs::remove(e.path(), ec);
  }
}

uint64_t total_input_bytes(const std::vector<std::string>& files) {
  uint64_t t = 0;
  std::error_code ec;
  for (auto& f : files) {
    auto s = fs::file_size(f, ec);
    if (!ec) t += s;
  }
  return t;
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

nlohmann::json prepare_report(const PrepareConfig& cfg, const std::vector<std::string>& files, const PrepareTally& t,
                              const PrepareRun& run) {
  ReadStats rs = t.reads;
  rs.add(t.worker_reads);
  nlohmann::json rep;
  rep["inputs"] = files;
  rep["read"] = read_stats_json(rs);
  uint64_t removed_docs = 0;
  nlohmann::json rem = nlohmann::json::object();
  for (auto& [name, c] : t.removed) {
    rem[name] = lang_json(c);
    removed_docs += rem[name]["total"]["docs"].get<uint64_t>();
  }
  rep["documents"] = {{"read", t.docs_in},
                      {"kept", t.docs_in - removed_docs},
                      {"removed", removed_docs},
                      {"changed_by_cleaning", t.changed_by_cleaning}};
  rep["languages_read"] = lang_json(t.seen);
  rep["kept"] = lang_json(t.kept);
  rep["removed"] = rem;
  rep["examples"] = t.examples.empty() ? nlohmann::json::object() : nlohmann::json(t.examples);
  rep["pii"] = {{"enabled", cfg.pii},
                {"email", t.pii.email},
                {"phone", t.pii.phone},
                {"id_number", t.pii.id_number},
                {"ip_address", t.pii.ip}};
  rep["dedup"] = run.dedup;
  rep["output"] = {{"files", run.parts}, {"bytes_uncompressed", t.kept.bytes[0] + t.kept.bytes[1] + t.kept.bytes[2]}};
  rep["config"] = prepare_config_to_json(cfg);
  rep["timing"] = {{"seconds", run.seconds},
                   {"threads", run.threads},
                   {"input_mb_per_s", run.seconds > 0 ? t.bytes_in / 1e6 / run.seconds : 0}};
  if (run.ranks > 1) rep["timing"]["ranks"] = run.ranks;
  return rep;
}

}  // namespace mindllm::data
