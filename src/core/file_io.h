// Files: whole-file reads, atomic writes (temp name, fsync, rename) and read-only memory maps.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mindllm {

// Reads a whole file; a missing or unreadable file, or a directory, is bad input naming the path.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a crash leaves either the old file or the new one.
// A directory at `path` is bad input.
void write_file_atomic(const std::string& path, std::string_view data);

// Checks, before any work, that an output file can be written at `path`: not a directory, and
// its parent directory exists and is writable. Bad input otherwise, naming `flag` (e.g. "--out")
// and the path. Every command that writes a file calls it when it parses its flags.
void check_output_file(const std::string& path, const std::string& flag);
// The same for an output directory: not an existing file; an existing directory must be
// writable, a new one needs a writable parent (created later by the command).
void check_output_dir(const std::string& path, const std::string& flag);

// fsync a directory so a rename inside it is durable.
void fsync_dir(const std::string& dir);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);

// A read-only memory map of a whole file (empty files map to an empty span).
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  ~MappedFile();
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace mindllm
