// Byte streams for the data pipeline: reading plain, gzip or zstd files (detected by their
// magic bytes, not their names) with truncation detected, and writing plain or zstd output.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace mindllm::data {

// A damaged input file (truncated or corrupt compressed data, read error). The readers catch
// it, count the file and go on with the next one.
struct StreamError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The iconv name of a text encoding a user gave (--encoding, reader.encoding): Python's
// spellings (latin-1, utf_16) work too; "" for UTF-8 (no conversion). An encoding iconv does
// not know is bad input.
std::string iconv_encoding(const std::string& name);

class ByteSource {
 public:
  // Throws StreamError if the file can't be opened. `encoding` (an iconv_encoding() result,
  // "" = UTF-8) converts the decompressed bytes to UTF-8; bytes invalid in it are a StreamError.
  // offset > 0 (a byte range of a plain file, data prepare across ranks) starts reading there;
  // a compressed or converted file cannot start inside (StreamError).
  explicit ByteSource(const std::string& path, const std::string& encoding = "", uint64_t offset = 0);
  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  // Reads up to n decompressed (and converted) bytes; 0 means the end. Throws StreamError on damage.
  size_t read(char* buf, size_t n);
  const char* format() const;  // "plain", "gzip" or "zstd"
  uint64_t compressed_bytes_read() const { return raw_read_; }

 private:
  size_t read_decompressed(char* buf, size_t n);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t raw_read_ = 0;
};

// Lines of a ByteSource ('\n'-separated, a trailing '\r' removed). A line longer than
// max_bytes is skipped without being held in memory: next() returns it empty with *too_long.
// offset: where the source starts in its file (line_start() is in file bytes).
class LineReader {
 public:
  LineReader(ByteSource& src, size_t max_bytes, uint64_t offset = 0) : src_(src), max_(max_bytes), base_(offset) {}
  bool next(std::string& line, bool* too_long);
  uint64_t line_start() const { return line_start_; }   // file offset of the line next() returned
  uint64_t next_start() const { return base_ + pos_; }  // ... and of the line after it

 private:
  bool fill();
  ByteSource& src_;
  size_t max_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t base_ = 0, line_start_ = 0;  // base_: file offset of buf_[0]
  bool eof_ = false;
};

// Writes a file under a temporary name; commit() flushes, fsyncs and renames it into place.
// Destroyed without commit() (an error, Ctrl-C) it removes the temporary file.
// zstd_level > 0 compresses with zstd.
class OutputFile {
 public:
  OutputFile(const std::string& path, int zstd_level);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  void write(std::string_view data);
  void commit();
  uint64_t bytes_in() const { return bytes_in_; }
  const std::string& path() const { return path_; }

 private:
  void flush_buffer(bool end);
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  void* zstd_ = nullptr;
  std::string buf_;
  uint64_t bytes_in_ = 0;
  bool committed_ = false;
};

}  // namespace mindllm::data
