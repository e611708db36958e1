#include "core/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace mindllm {

std::string read_file(const std::string& path) {
  if (is_directory(path)) bad_input(path + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) bad_input(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) bad_input(path + ": read error");
  return ss.str();
}

static void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      internal_error(path + ": write failed: " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path, std::string_view data) {
  if (is_directory(path)) bad_input(path + ": is a directory, not a file");
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) bad_input(path + ": cannot create: " + std::strerror(errno));
  write_all(fd, data.data(), data.size(), tmp);
  if (::fsync(fd) != 0) internal_error(tmp + ": fsync failed: " + std::strerror(errno));
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) internal_error(path + ": rename failed: " + std::strerror(errno));
  fsync_dir(std::filesystem::path(path).parent_path().string());
}

// The directory a new entry at `path` goes into ("." for a bare name).
static std::string parent_dir(const std::string& path) {
  std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

static void check_writable_dir(const std::string& dir, const std::string& flag, const std::string& path) {
  if (!is_directory(dir)) bad_input(flag + " " + path + ": directory " + dir + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    bad_input(flag + " " + path + ": cannot write in " + dir + ": " + std::strerror(errno));
}

void check_output_file(const std::string& path, const std::string& flag) {
  if (path.empty()) bad_input(flag + ": empty path");
  if (is_directory(path)) bad_input(flag + " " + path + ": is a directory; give a file name");
  check_writable_dir(parent_dir(path), flag, path);
  if (path_exists(path) && ::access(path.c_str(), W_OK) != 0)
    bad_input(flag + " " + path + ": cannot write: " + std::strerror(errno));
}

void check_output_dir(const std::string& path, const std::string& flag) {
  if (path.empty()) bad_input(flag + ": empty path");
  if (is_directory(path)) return check_writable_dir(path, flag, path);
  if (path_exists(path)) bad_input(flag + " " + path + ": is a file; give a directory");
  std::string parent = std::filesystem::path(path).lexically_normal().parent_path().string();
  // A missing parent is created with the directory (create_directories); only an existing
  // ancestor that is a file is an error here.
  for (std::filesystem::path a = parent; !a.empty(); a = a.parent_path()) {
    if (is_directory(a.string())) break;
    if (path_exists(a.string())) bad_input(flag + " " + path + ": " + a.string() + " is a file, not a directory");
    if (a == a.parent_path()) break;
  }
}

bool path_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bad_input(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    bad_input(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    bad_input(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      bad_input(path + ": mmap failed: " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_), path_(std::move(o.path_)) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace mindllm
