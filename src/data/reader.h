// Readers: turn a user's input files into documents, streaming with bounded memory.
//   plain text: one document per file, per blank-line block or per line (ReaderConfig::text_unit)
//   JSONL (.jsonl/.ndjson/.json lines): one document per line, the text in a chosen field
//   gzip and zstd compressed files (detected by magic bytes), globs and directories
// Damaged input never stops a run: invalid UTF-8, broken JSON lines, missing fields, oversize
// lines/documents and truncated compressed files are counted (ReadStats) and skipped.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/stream.h"

namespace mindllm::data {

struct ReaderConfig {
  std::string text_unit = "file";    // "file" | "paragraph" (blank-line blocks) | "line"
  std::string text_field = "text";   // JSONL field holding the text; "a.b" for nested objects
  size_t max_doc_bytes = 64u << 20;  // longer documents (and lines) are skipped and counted
  // The input files' text encoding, converted to UTF-8 with iconv (latin-1, gbk, gb18030,
  // utf-16, ...); "" or "utf-8": none. Bytes invalid in it end the file (counted as damaged).
  std::string encoding;
  // JSONL lines are handed out raw (RawDoc::raw_json) for the caller to parse in its worker
  // threads with parse_raw_json(); the reading thread then only splits lines.
  bool defer_json = false;
};

// What parse_raw_json found wrong with a line (each is a ReadStats counter).
enum class ReadProblem { none, bad_json, missing_field, invalid_utf8, empty };

struct ReadStats {
  uint64_t files = 0, bytes = 0, docs = 0;
  uint64_t invalid_utf8 = 0, bad_json = 0, missing_field = 0, too_long = 0, empty = 0;
  uint64_t damaged_files = 0, unreadable_files = 0;
  std::vector<std::string> messages;  // the first few problems, one line each
  void note(const std::string& msg) {
    if (messages.size() < 50) messages.push_back(msg);
  }
  void add(const ReadStats& o);
  void count(ReadProblem p, const std::string& message);  // a document parse_raw_json handled
};

struct RawDoc {
  std::string text;
  uint32_t file_index = 0;  // index into the expanded input list
  uint64_t line = 0;        // 1-based line where the document starts
  bool raw_json = false;    // text is still the JSONL line (ReaderConfig::defer_json)
};

// Turns a raw JSONL line into its document (doc.text becomes the text field), with the checks
// DocumentReader makes itself otherwise. On a problem, *message is "file:line: what" (empty
// for `empty`); count it with ReadStats::count, in input order for a deterministic report.
ReadProblem parse_raw_json(RawDoc& doc, const ReaderConfig& cfg, const std::string& file, std::string* message);

// Expands files, directories (recursively, hidden entries skipped) and globs into a sorted,
// de-duplicated file list. A spec that matches nothing is bad input.
std::vector<std::string> expand_inputs(const std::vector<std::string>& specs);

// True for names ending in .jsonl/.ndjson/.json (before an optional .gz/.zst/.zstd).
bool is_jsonl_name(const std::string& path);

// Extracts the text field from one JSONL line: returns 1 on success, 0 for a broken line
// (*why says what), -1 when the field is missing or not a string.
int parse_jsonl_text(std::string_view line, const std::string& field, std::string* text, std::string* why);

// A part of one input file (data prepare across ranks): the whole file, or the lines that start
// in bytes [begin, end) of a plain line-per-document file (JSONL, or text_unit line), numbered
// after the lines_before newlines that precede `begin`.
struct ReadSpan {
  uint32_t file = 0;  // index into the file list
  uint64_t begin = 0, end = UINT64_MAX;
  uint64_t lines_before = 0;
  bool whole() const { return begin == 0 && end == UINT64_MAX; }
};

// Every one of n files, whole.
std::vector<ReadSpan> whole_files(size_t n);

// True when a file can be split into byte ranges: plain bytes (no compression, no --encoding)
// with one document per line.
bool splittable(const std::string& path, const ReaderConfig& cfg);

// Reads the documents of a list of files in order (or of `spans` of them, in order). A partial
// span counts its bytes, and the file only where it begins at byte 0.
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> files, ReaderConfig cfg);
  DocumentReader(std::vector<std::string> files, ReaderConfig cfg, std::vector<ReadSpan> spans);
  ~DocumentReader();
  // Next valid document; false at the end of the last file.
  bool next(RawDoc& doc);
  const ReadStats& stats() const { return stats_; }
  const std::vector<std::string>& files() const { return files_; }
  uint64_t bytes_read() const;  // raw (compressed) bytes read so far, for progress

 private:
  bool open_next_file();
  bool next_in_file(RawDoc& doc);
  bool accept(RawDoc& doc, uint64_t line);
  std::vector<std::string> files_;
  ReaderConfig cfg_;
  std::vector<ReadSpan> spans_;
  ReadStats stats_;
  size_t file_pos_ = 0;                              // next span
  uint64_t span_end_ = UINT64_MAX, span_bytes_ = 0;  // span_bytes_: the size of a partial span
  bool partial_ = false;
  int cur_ = -1;
  bool jsonl_ = false;
  std::unique_ptr<ByteSource> src_;
  std::unique_ptr<LineReader> lines_;
  uint64_t line_no_ = 0, done_bytes_ = 0;
  std::string line_;
};

}  // namespace mindllm::data
