#include "data/stream.h"

#include <iconv.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace mindllm::data {

struct ByteSource::Impl {
  FILE* f = nullptr;
  std::string path;
  enum Kind { plain, gzip, zstd } kind = plain;
  std::vector<char> in;
  size_t in_pos = 0, in_len = 0;
  bool file_eof = false, stream_done = false;
  z_stream z{};
  bool z_init = false;
  ZSTD_DStream* zd = nullptr;
  size_t zstd_last = 0;       // last ZSTD_decompressStream result: 0 = a frame just ended
  std::string pending_error;  // damage found after some bytes were returned: thrown next time
  // Encoding conversion (iconv): decompressed bytes wait in `raw` until converted.
  iconv_t cd = reinterpret_cast<iconv_t>(-1);
  std::string encoding;
  std::vector<char> raw;
  size_t raw_pos = 0, raw_len = 0;
  bool raw_eof = false;
  uint64_t raw_done = 0;  // decompressed bytes converted so far (error positions)

  ~Impl() {
    if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
    if (z_init) inflateEnd(&z);
    if (zd) ZSTD_freeDStream(zd);
    if (f) std::fclose(f);
  }
  // Refills the compressed-input buffer; returns the bytes read.
  size_t refill(uint64_t& counter) {
    if (file_eof) return 0;
    in_pos = 0;
    in_len = std::fread(in.data(), 1, in.size(), f);
    if (in_len < in.size()) {
      if (std::ferror(f)) throw StreamError(path + ": read error: " + std::strerror(errno));
      file_eof = true;
    }
    counter += in_len;
    return in_len;
  }
};

std::string iconv_encoding(const std::string& name) {
  std::string n;
  for (char c : name) n += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n.empty() || n == "utf-8" || n == "utf8") return "";
  if (n == "latin-1" || n == "iso-8859-1" || n == "l1") n = "latin1";
  iconv_t cd = iconv_open("UTF-8", n.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1))
    bad_input("encoding '" + name + "' is unknown (iconv names: latin1, gbk, gb18030, big5, utf-16, cp1252, ...)");
  iconv_close(cd);
  return n;
}

ByteSource::ByteSource(const std::string& path, const std::string& encoding, uint64_t offset)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.path = path;
  if (!encoding.empty()) {
    s.encoding = encoding;
    s.cd = iconv_open("UTF-8", encoding.c_str());
    if (s.cd == reinterpret_cast<iconv_t>(-1)) throw StreamError(path + ": cannot convert from " + encoding);
    s.raw.resize(1 << 20);
  }
  s.f = std::fopen(path.c_str(), "rb");
  if (!s.f) throw StreamError(path + ": cannot open: " + std::strerror(errno));
  s.in.resize(1 << 20);
  s.refill(raw_read_);
  auto u = [&](size_t i) { return i < s.in_len ? static_cast<uint8_t>(s.in[i]) : 0; };
  if (u(0) == 0x1F && u(1) == 0x8B) {
    s.kind = Impl::gzip;
    if (inflateInit2(&s.z, 15 + 16) != Z_OK) throw StreamError(path + ": zlib init failed");
    s.z_init = true;
  } else if (u(0) == 0x28 && u(1) == 0xB5 && u(2) == 0x2F && u(3) == 0xFD) {
    s.kind = Impl::zstd;
    s.zd = ZSTD_createDStream();
    ZSTD_initDStream(s.zd);
  }
  if (offset > 0) {
    if (s.kind != Impl::plain || s.cd != reinterpret_cast<iconv_t>(-1))
      throw StreamError(path + ": a compressed or converted file cannot be read from byte " + std::to_string(offset));
    if (std::fseek(s.f, static_cast<long>(offset), SEEK_SET) != 0)
      throw StreamError(path + ": cannot seek to byte " + std::to_string(offset) + ": " + std::strerror(errno));
    s.in_pos = s.in_len = 0;
    s.file_eof = false;
    raw_read_ = 0;
    s.refill(raw_read_);
  }
}

ByteSource::~ByteSource() = default;

const char* ByteSource::format() const {
  return impl_->kind == Impl::gzip ? "gzip" : impl_->kind == Impl::zstd ? "zstd" : "plain";
}

// Converts to UTF-8 what read_decompressed gives. n must hold one converted character (LineReader
// asks for 1 MiB at a time).
size_t ByteSource::read(char* buf, size_t n) {
  auto& s = *impl_;
  // Without conversion, and with an error waiting (read_decompressed throws it).
  if (s.cd == reinterpret_cast<iconv_t>(-1) || !s.pending_error.empty()) return read_decompressed(buf, n);
  size_t got = 0;
  while (got < n) {
    if (s.raw_pos == s.raw_len || (s.raw_len - s.raw_pos < 8 && !s.raw_eof)) {  // refill, keeping a partial char
      std::memmove(s.raw.data(), s.raw.data() + s.raw_pos, s.raw_len - s.raw_pos);
      s.raw_len -= s.raw_pos;
      s.raw_pos = 0;
      if (!s.raw_eof) {
        size_t k = read_decompressed(s.raw.data() + s.raw_len, s.raw.size() - s.raw_len);
        if (k == 0) s.raw_eof = true;
        s.raw_len += k;
      }
      if (s.raw_len == 0) break;
    }
    char* in = s.raw.data() + s.raw_pos;
    char* out = buf + got;
    size_t in_left = s.raw_len - s.raw_pos, out_left = n - got;
    size_t rc = iconv(s.cd, &in, &in_left, &out, &out_left);
    int err = errno;
    s.raw_done += (s.raw_len - s.raw_pos) - in_left;
    s.raw_pos = s.raw_len - in_left;
    got = n - out_left;
    if (rc != static_cast<size_t>(-1)) continue;
    if (err == E2BIG) break;
    if (err == EINVAL && !s.raw_eof) continue;  // an incomplete character: read more
    std::string msg = s.path + ": not valid " + s.encoding + " at byte " + std::to_string(s.raw_done) +
                      (err == EINVAL ? " (ends inside a character)" : "");
    s.raw_pos = s.raw_len;
    s.raw_eof = true;
    s.stream_done = true;
    if (got == 0) throw StreamError(msg);
    s.pending_error = msg;
    break;
  }
  return got;
}

size_t ByteSource::read_decompressed(char* buf, size_t n) {
  auto& s = *impl_;
  if (!s.pending_error.empty()) {
    s.stream_done = true;
    std::string e = std::move(s.pending_error);
    s.pending_error.clear();
    throw StreamError(e);
  }
  if (n == 0 || s.stream_done) return 0;
  // Returns what was decoded before damage; the error comes with the next call.
  auto fail = [&](size_t got, const std::string& msg) -> size_t {
    if (got == 0) throw StreamError(msg);
    s.pending_error = msg;
    return got;
  };
  if (s.kind == Impl::plain) {
    size_t got = 0;
    while (got < n) {
      if (s.in_pos == s.in_len && s.refill(raw_read_) == 0) break;
      size_t k = std::min(n - got, s.in_len - s.in_pos);
      std::memcpy(buf + got, s.in.data() + s.in_pos, k);
      s.in_pos += k;
      got += k;
    }
    if (got == 0) s.stream_done = true;
    return got;
  }
  if (s.kind == Impl::gzip) {
    size_t got = 0;
    while (got < n) {
      if (s.in_pos == s.in_len && s.refill(raw_read_) == 0) {
        // Input is over: fine only between two gzip members.
        if (s.z.total_in != 0 || s.z.avail_in != 0)
          return fail(got, s.path + ": truncated gzip data (ends inside a compressed stream)");
        s.stream_done = true;
        break;
      }
      s.z.next_in = reinterpret_cast<Bytef*>(s.in.data() + s.in_pos);
      s.z.avail_in = static_cast<uInt>(s.in_len - s.in_pos);
      s.z.next_out = reinterpret_cast<Bytef*>(buf + got);
      s.z.avail_out = static_cast<uInt>(n - got);
      int rc = inflate(&s.z, Z_NO_FLUSH);
      size_t used = (s.in_len - s.in_pos) - s.z.avail_in;
      s.in_pos += used;
      got = n - s.z.avail_out;
      if (rc == Z_STREAM_END) {
        inflateReset(&s.z);  // another member may follow (concatenated .gz files)
        s.z.total_in = 0;
      } else if (rc == Z_BUF_ERROR) {
        if (s.z.avail_out == 0) break;
        // needs more input: loop refills
      } else if (rc != Z_OK) {
        return fail(got, s.path + ": corrupt gzip data (" + (s.z.msg ? s.z.msg : "inflate error") + ")");
      }
    }
    return got;
  }
  // zstd
  ZSTD_outBuffer out{buf, n, 0};
  while (out.pos < out.size) {
    if (s.in_pos == s.in_len && s.refill(raw_read_) == 0) {
      if (s.zstd_last != 0) return fail(out.pos, s.path + ": truncated zstd data (ends inside a frame)");
      s.stream_done = out.pos == 0;
      break;
    }
    ZSTD_inBuffer in{s.in.data(), s.in_len, s.in_pos};
    size_t rc = ZSTD_decompressStream(s.zd, &out, &in);
    s.in_pos = in.pos;
    if (ZSTD_isError(rc)) return fail(out.pos, s.path + ": corrupt zstd data (" + ZSTD_getErrorName(rc) + ")");
    s.zstd_last = rc;
  }
  return out.pos;
}

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    base_ += pos_;
    pos_ = 0;
  }
  size_t old = buf_.size();
  buf_.resize(old + (1 << 20));
  size_t got = src_.read(buf_.data() + old, 1 << 20);
  buf_.resize(old + got);
  if (got == 0) eof_ = true;
  return got > 0;
}

bool LineReader::next(std::string& line, bool* too_long) {
  *too_long = false;
  line_start_ = base_ + pos_;
  size_t scanned = pos_;
  for (;;) {
    size_t nl = buf_.find('\n', scanned);
    if (nl != std::string::npos) {
      size_t len = nl - pos_;
      if (*too_long || len > max_) {
        *too_long = true;
        line.clear();
      } else {
        line.assign(buf_, pos_, len);
        if (!line.empty() && line.back() == '\r') line.pop_back();
      }
      pos_ = nl + 1;
      return true;
    }
    if (buf_.size() - pos_ > max_) {
      // Too long: drop what we have and keep skipping to the next newline (bounded memory).
      *too_long = true;
      base_ += buf_.size();
      buf_.clear();
      pos_ = 0;
    }
    scanned = buf_.size();
    size_t before_pos = pos_;
    if (!fill()) {
      if (buf_.size() > pos_ || *too_long) {  // last line without '\n'
        if (*too_long || buf_.size() - pos_ > max_) {
          *too_long = true;
          line.clear();
        } else {
          line.assign(buf_, pos_, std::string::npos);
          if (!line.empty() && line.back() == '\r') line.pop_back();
        }
        pos_ = buf_.size();
        return true;
      }
      return false;
    }
    scanned -= before_pos - pos_;  // fill() moved the data to the front
  }
}

OutputFile::OutputFile(const std::string& path, int zstd_level) : path_(path) {
  tmp_ = path + ".tmp-" + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) bad_input(path + ": cannot write: " + std::strerror(errno));
  if (zstd_level > 0) {
    auto* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, zstd_level);
    zstd_ = c;
  }
}

OutputFile::~OutputFile() {
  if (zstd_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(zstd_));
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void OutputFile::flush_buffer(bool end) {
  if (!zstd_) {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
      bad_input(path_ + ": write failed: " + std::strerror(errno));
    buf_.clear();
    return;
  }
  auto* c = static_cast<ZSTD_CCtx*>(zstd_);
  std::vector<char> out(ZSTD_CStreamOutSize());
  ZSTD_inBuffer in{buf_.data(), buf_.size(), 0};
  for (;;) {
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    size_t rc = ZSTD_compressStream2(c, &ob, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(rc)) internal_error(path_ + ": zstd: " + ZSTD_getErrorName(rc));
    if (ob.pos && std::fwrite(out.data(), 1, ob.pos, f_) != ob.pos)
      bad_input(path_ + ": write failed: " + std::strerror(errno));
    if (end ? rc == 0 : in.pos == in.size) break;
  }
  buf_.clear();
}

void OutputFile::write(std::string_view data) {
  bytes_in_ += data.size();
  buf_.append(data);
  if (buf_.size() >= (4u << 20)) flush_buffer(false);
}

void OutputFile::commit() {
  flush_buffer(true);
  if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) bad_input(path_ + ": write failed: " + std::strerror(errno));
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) bad_input(path_ + ": rename failed: " + std::strerror(errno));
  committed_ = true;
}

}  // namespace mindllm::data
