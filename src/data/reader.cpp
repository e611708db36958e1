#include "data/reader.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/char_class.h"

namespace fs = std::filesystem;

namespace mindllm::data {

void ReadStats::add(const ReadStats& o) {
  files += o.files, bytes += o.bytes, docs += o.docs, invalid_utf8 += o.invalid_utf8, bad_json += o.bad_json;
  missing_field += o.missing_field, too_long += o.too_long, empty += o.empty;
  damaged_files += o.damaged_files, unreadable_files += o.unreadable_files;
  for (auto& m : o.messages) note(m);
}

void ReadStats::count(ReadProblem p, const std::string& message) {
  switch (p) {
    case ReadProblem::none: docs++; return;
    case ReadProblem::bad_json: bad_json++; break;
    case ReadProblem::missing_field: missing_field++; break;
    case ReadProblem::invalid_utf8: invalid_utf8++; break;
    case ReadProblem::empty: empty++; return;
  }
  note(message);
}

ReadProblem parse_raw_json(RawDoc& doc, const ReaderConfig& cfg, const std::string& file, std::string* message) {
  doc.raw_json = false;
  std::string why, text;
  int rc = parse_jsonl_text(doc.text, cfg.text_field, &text, &why);
  std::string where = file + ":" + std::to_string(doc.line) + ": ";
  if (rc == 0) {
    *message = where + why + " (line skipped)";
    return ReadProblem::bad_json;
  }
  if (rc < 0) {
    *message = where + "no string field '" + cfg.text_field + "' (line skipped)";
    return ReadProblem::missing_field;
  }
  doc.text = std::move(text);
  size_t bad = utf8::first_invalid(doc.text);
  if (bad != std::string::npos) {
    *message = where + "invalid UTF-8 at byte " + std::to_string(bad) + " of the document (skipped)";
    return ReadProblem::invalid_utf8;
  }
  if (doc.text.find_first_not_of(" \t\r\n") == std::string::npos) return ReadProblem::empty;
  return ReadProblem::none;
}

static void add_dir(const fs::path& dir, std::vector<std::string>& out) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    // Skip our own bookkeeping files (a prepare output directory is a valid input) and temporaries.
    if (name == "report.json" || name == "manifest.json" || name.find(".tmp-") != std::string::npos) continue;
    if (it->is_regular_file()) out.push_back(it->path().string());
  }
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& specs) {
  std::vector<std::string> out;
  for (auto& spec : specs) {
    size_t before = out.size();
    if (spec.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      if (::glob(spec.c_str(), 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
          std::string p = g.gl_pathv[i];
          if (fs::is_directory(p)) add_dir(p, out);
          else if (fs::is_regular_file(p)) out.push_back(p);
        }
      }
      globfree(&g);
    } else if (fs::is_directory(spec)) {
      add_dir(spec, out);
    } else if (fs::exists(spec)) {
      out.push_back(spec);
    } else {
      bad_input(spec + ": no such file or directory");
    }
    if (out.size() == before) bad_input(spec + ": matches no input files");
    std::sort(out.begin() + static_cast<long>(before), out.end());
  }
  // Keep the first occurrence of each file, in the order the specs gave.
  std::vector<std::string> uniq;
  std::vector<std::string> seen = out;
  std::sort(seen.begin(), seen.end());
  std::vector<bool> used(seen.size(), false);
  for (auto& p : out) {
    size_t k = static_cast<size_t>(std::lower_bound(seen.begin(), seen.end(), p) - seen.begin());
    if (used[k]) continue;
    used[k] = true;
    uniq.push_back(p);
  }
  return uniq;
}

bool is_jsonl_name(const std::string& path) {
  std::string p = path;
  for (const char* ext : {".gz", ".zst", ".zstd"}) {
    size_t n = std::strlen(ext);
    if (p.size() > n && p.compare(p.size() - n, n, ext) == 0) {
      p.resize(p.size() - n);
      break;
    }
  }
  for (const char* ext : {".jsonl", ".ndjson", ".json"}) {
    size_t n = std::strlen(ext);
    if (p.size() > n && p.compare(p.size() - n, n, ext) == 0) return true;
  }
  return false;
}

int parse_jsonl_text(std::string_view line, const std::string& field, std::string* text, std::string* why) {
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *why = "not valid JSON";
    return 0;
  }
  if (!j.is_object()) {
    *why = "not a JSON object";
    return 0;
  }
  const nlohmann::json* cur = &j;
  size_t start = 0;
  for (;;) {
    size_t dot = field.find('.', start);
    std::string key = field.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return -1;
    auto it = cur->find(key);
    if (it == cur->end()) return -1;
    cur = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!cur->is_string()) return -1;
  *text = cur->get<std::string>();
  return 1;
}

bool splittable(const std::string& path, const ReaderConfig& cfg) {
  if (!iconv_encoding(cfg.encoding).empty() || (cfg.text_unit != "line" && !is_jsonl_name(path))) return false;
  try {
    return std::string(ByteSource(path).format()) == "plain";
  } catch (const StreamError&) { return false; }
}

DocumentReader::DocumentReader(std::vector<std::string> files, ReaderConfig cfg, std::vector<ReadSpan> spans)
    : files_(std::move(files)), cfg_(std::move(cfg)), spans_(std::move(spans)) {
  if (cfg_.text_unit != "file" && cfg_.text_unit != "paragraph" && cfg_.text_unit != "line")
    bad_input("reader.text_unit: '" + cfg_.text_unit + "' is not one of file, paragraph, line");
  cfg_.encoding = iconv_encoding(cfg_.encoding);
}

DocumentReader::DocumentReader(std::vector<std::string> files, ReaderConfig cfg)
    : DocumentReader(files, std::move(cfg), whole_files(files.size())) {}

std::vector<ReadSpan> whole_files(size_t n) {
  std::vector<ReadSpan> spans;
  for (size_t i = 0; i < n; i++) spans.push_back({static_cast<uint32_t>(i)});
  return spans;
}
DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::bytes_read() const { return done_bytes_ + (src_ ? src_->compressed_bytes_read() : 0); }

bool DocumentReader::open_next_file() {
  if (src_) {
    done_bytes_ += src_->compressed_bytes_read();
    stats_.bytes += partial_ ? span_bytes_ : src_->compressed_bytes_read();
  }
  lines_.reset();
  src_.reset();
  while (file_pos_ < spans_.size()) {
    const ReadSpan& sp = spans_[file_pos_++];
    cur_ = static_cast<int>(sp.file);
    const uint64_t from = sp.begin > 0 ? sp.begin - 1 : 0;  // one byte early: is `begin` a line start?
    try {
      src_ = std::make_unique<ByteSource>(files_[cur_], cfg_.encoding, from);
    } catch (const StreamError& e) {
      stats_.unreadable_files += sp.begin == 0;
      stats_.note(std::string(e.what()) + " (file skipped)");
      continue;
    }
    stats_.files += sp.begin == 0;
    jsonl_ = is_jsonl_name(files_[cur_]);
    lines_ = std::make_unique<LineReader>(*src_, cfg_.max_doc_bytes, from);
    line_no_ = sp.lines_before;
    span_end_ = sp.end;
    span_bytes_ = 0;
    partial_ = !sp.whole();
    if (partial_) {
      MINDLLM_CHECK(jsonl_ || cfg_.text_unit == "line", files_[cur_] + ": only line documents split into byte ranges");
      std::error_code ec;
      span_bytes_ = std::min<uint64_t>(sp.end, fs::file_size(files_[cur_], ec)) - sp.begin;
      bool too_long = false;
      if (sp.begin > 0) {  // the line through byte begin-1 belongs to the span before
        lines_->next(line_, &too_long);
        line_no_ += lines_->next_start() > sp.begin;
      }
    }
    return true;
  }
  return false;
}

// Validates a document; counts and skips bad ones.
bool DocumentReader::accept(RawDoc& doc, uint64_t line) {
  doc.file_index = static_cast<uint32_t>(cur_);
  doc.line = line;
  size_t bad = utf8::first_invalid(doc.text);
  if (bad != std::string::npos) {
    stats_.invalid_utf8++;
    stats_.note(files_[cur_] + ":" + std::to_string(line) + ": invalid UTF-8 at byte " + std::to_string(bad) +
                " of the document (skipped)");
    return false;
  }
  if (doc.text.find_first_not_of(" \t\r\n") == std::string::npos) {
    stats_.empty++;
    return false;
  }
  stats_.docs++;
  return true;
}

bool DocumentReader::next_in_file(RawDoc& doc) {
  bool too_long = false;
  if (jsonl_ || cfg_.text_unit == "line") {
    while (lines_->next(line_, &too_long)) {
      if (lines_->line_start() >= span_end_) return false;  // the next span's line
      line_no_++;
      if (too_long) {
        stats_.too_long++;
        stats_.note(files_[cur_] + ":" + std::to_string(line_no_) + ": line longer than " +
                    std::to_string(cfg_.max_doc_bytes) + " bytes (skipped)");
        continue;
      }
      if (!jsonl_) {
        doc.text = line_;
        if (accept(doc, line_no_)) return true;
        continue;
      }
      if (line_.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
      if (cfg_.defer_json) {
        doc.text.swap(line_);
        doc.file_index = static_cast<uint32_t>(cur_);
        doc.line = line_no_;
        doc.raw_json = true;
        return true;
      }
      std::string why;
      int rc = parse_jsonl_text(line_, cfg_.text_field, &doc.text, &why);
      if (rc == 0) {
        stats_.bad_json++;
        stats_.note(files_[cur_] + ":" + std::to_string(line_no_) + ": " + why + " (line skipped)");
        continue;
      }
      if (rc < 0) {
        stats_.missing_field++;
        stats_.note(files_[cur_] + ":" + std::to_string(line_no_) + ": no string field '" + cfg_.text_field +
                    "' (line skipped)");
        continue;
      }
      if (accept(doc, line_no_)) return true;
    }
    return false;
  }
  // Plain text: a whole file or blank-line blocks.
  bool per_file = cfg_.text_unit == "file";
  doc.text.clear();
  uint64_t start = 0;
  bool oversize = false, any = false;
  while (lines_->next(line_, &too_long)) {
    line_no_++;
    bool blank = line_.find_first_not_of(" \t\u3000") == std::string::npos && !too_long;
    if (!per_file && blank) {
      if (any) {
        if (oversize) {
          stats_.too_long++;
          doc.text.clear(), any = false, oversize = false;
          continue;
        }
        if (accept(doc, start)) return true;
        doc.text.clear(), any = false;
      }
      continue;
    }
    if (!any) start = line_no_, any = true;
    if (too_long || doc.text.size() + line_.size() + 1 > cfg_.max_doc_bytes) {
      if (!oversize)
        stats_.note(files_[cur_] + ":" + std::to_string(line_no_) + ": document longer than " +
                    std::to_string(cfg_.max_doc_bytes) + " bytes (skipped)");
      oversize = true;
      doc.text.clear();
      continue;
    }
    if (!oversize) {
      doc.text += line_;
      doc.text += '\n';
    }
  }
  if (any) {
    if (oversize) {
      stats_.too_long++;
      doc.text.clear();
    } else if (accept(doc, start)) {
      return true;
    }
  }
  return false;
}

bool DocumentReader::next(RawDoc& doc) {
  for (;;) {
    if (!lines_ && !open_next_file()) return false;
    try {
      if (next_in_file(doc)) return true;
    } catch (const StreamError& e) {
      stats_.damaged_files++;
      stats_.note(std::string(e.what()) + " (rest of the file skipped)");
    }
    lines_.reset();
    if (!open_next_file()) return false;
  }
}

}  // namespace mindllm::data
