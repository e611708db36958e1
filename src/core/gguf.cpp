#include "core/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file_io.h"

namespace mindllm {

const char* ggml_type_name(GGMLType t) {
  switch (t) {
    case GGMLType::f32: return "F32";
    case GGMLType::f16: return "F16";
    case GGMLType::q4_0: return "Q4_0";
    case GGMLType::q8_0: return "Q8_0";
    case GGMLType::q4_k: return "Q4_K";
    case GGMLType::q5_0: return "Q5_0";
    case GGMLType::q5_k: return "Q5_K";
    case GGMLType::q6_k: return "Q6_K";
    case GGMLType::bf16: return "BF16";
  }
  return "?";
}

uint64_t ggml_block_size(GGMLType t) {
  switch (t) {
    case GGMLType::q4_0:
    case GGMLType::q5_0:
    case GGMLType::q8_0: return 32;
    case GGMLType::q4_k:
    case GGMLType::q5_k:
    case GGMLType::q6_k: return 256;
    default: return 1;
  }
}

uint64_t ggml_row_bytes(GGMLType t, uint64_t n) {
  switch (t) {
    case GGMLType::f32: return 4 * n;
    case GGMLType::f16:
    case GGMLType::bf16: return 2 * n;
    case GGMLType::q4_0: return n / 32 * 18;
    case GGMLType::q8_0: return n / 32 * 34;
    case GGMLType::q4_k: return n / 256 * 144;
    case GGMLType::q5_0: return n / 32 * 22;
    case GGMLType::q5_k: return n / 256 * 176;
    case GGMLType::q6_k: return n / 256 * 210;
  }
  return 0;
}

// ---- writer ----

namespace {

void put_u32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  put_u64(s, v.size());
  s += v;
}

constexpr uint64_t kAlign = 32;
uint64_t pad(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

void GGUFWriter::key(const std::string& k, GGUFValueType t) {
  put_str(kv_, k);
  put_u32(kv_, static_cast<uint32_t>(t));
  n_kv_++;
}
void GGUFWriter::add_u32(const std::string& k, uint32_t v) { key(k, GGUFValueType::u32), put_u32(kv_, v); }
void GGUFWriter::add_i32(const std::string& k, int32_t v) {
  key(k, GGUFValueType::i32), put_u32(kv_, static_cast<uint32_t>(v));
}
void GGUFWriter::add_f32(const std::string& k, float v) {
  key(k, GGUFValueType::f32);
  kv_.append(reinterpret_cast<const char*>(&v), 4);
}
void GGUFWriter::add_bool(const std::string& k, bool v) { key(k, GGUFValueType::boolean), kv_.push_back(v ? 1 : 0); }
void GGUFWriter::add_string(const std::string& k, const std::string& v) {
  key(k, GGUFValueType::string), put_str(kv_, v);
}
void GGUFWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, GGUFValueType::array);
  put_u32(kv_, static_cast<uint32_t>(GGUFValueType::string));
  put_u64(kv_, v.size());
  for (auto& s : v) put_str(kv_, s);
}
void GGUFWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, GGUFValueType::array);
  put_u32(kv_, static_cast<uint32_t>(GGUFValueType::i32));
  put_u64(kv_, v.size());
  for (int32_t x : v) put_u32(kv_, static_cast<uint32_t>(x));
}

void GGUFWriter::add_tensor(const std::string& name, std::vector<uint64_t> dims, GGMLType type,
                            std::vector<uint8_t> data) {
  uint64_t n = 1;
  for (auto d : dims) n *= d;
  if (dims.empty() || dims.size() > 4 || ggml_row_bytes(type, dims[0]) * (n / dims[0]) != data.size())
    internal_error("gguf tensor " + name + ": data size does not match its dims and type");
  tensors_.push_back({name, std::move(dims), type, std::move(data)});
}

void GGUFWriter::write(const std::string& path) const {
  std::string head;
  put_u32(head, 0x46554747);  // "GGUF"
  put_u32(head, 3);
  put_u64(head, tensors_.size());
  put_u64(head, n_kv_);
  head += kv_;
  uint64_t off = 0;
  for (auto& t : tensors_) {
    put_str(head, t.name);
    put_u32(head, static_cast<uint32_t>(t.dims.size()));
    for (auto d : t.dims) put_u64(head, d);
    put_u32(head, static_cast<uint32_t>(t.type));
    put_u64(head, off);
    off = pad(off + t.data.size());
  }
  head.resize(pad(head.size()), '\0');
  // Streamed to a temporary name, fsynced, renamed: a crash never leaves a half file.
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) bad_input(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  static const char zeros[kAlign] = {};
  for (auto& t : tensors_) {
    ok = ok && std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
    uint64_t p = pad(t.data.size()) - t.data.size();
    ok = ok && std::fwrite(zeros, 1, p, f) == p;
  }
  ok = ok && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    bad_input(path + ": write failed (" + std::strerror(errno) + ")");
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_dir(dir.empty() ? "." : dir);
}

// ---- reader ----

namespace {

// The name of a ggml type mindllm does not read, for the refusal (" (Q6_K)"), else "".
std::string unread_type_name(uint32_t type) {
  static const char* names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",   "Q8_0",
                                "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS"};
  return type < sizeof(names) / sizeof(names[0]) ? std::string(" (") + names[type] + ")" : "";
}

struct Cursor {
  std::span<const uint8_t> b;
  const std::string& where;
  uint64_t pos = 0;

  [[noreturn]] void fail(const std::string& what) const {
    bad_input(where + ": " + what + " (at byte " + std::to_string(pos) + ")");
  }
  const uint8_t* take(uint64_t n) {
    if (n > b.size() - pos) fail("GGUF field runs past the end of the file (truncated?)");
    const uint8_t* p = b.data() + pos;
    pos += n;
    return p;
  }
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string str() {
    uint64_t n = get<uint64_t>();
    if (n > b.size() - pos) fail("GGUF string length " + std::to_string(n) + " runs past the end");
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  nlohmann::json value(uint32_t type, int depth) {
    switch (static_cast<GGUFValueType>(type)) {
      case GGUFValueType::u8: return get<uint8_t>();
      case GGUFValueType::i8: return get<int8_t>();
      case GGUFValueType::u16: return get<uint16_t>();
      case GGUFValueType::i16: return get<int16_t>();
      case GGUFValueType::u32: return get<uint32_t>();
      case GGUFValueType::i32: return get<int32_t>();
      case GGUFValueType::u64: return get<uint64_t>();
      case GGUFValueType::i64: return get<int64_t>();
      case GGUFValueType::f32: {
        float f = get<float>();
        return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr);
      }
      case GGUFValueType::f64: {
        double f = get<double>();
        return std::isfinite(f) ? nlohmann::json(f) : nlohmann::json(nullptr);
      }
      case GGUFValueType::boolean: {
        uint8_t v = get<uint8_t>();
        if (v > 1) fail("GGUF bool is not 0 or 1");
        return v == 1;
      }
      case GGUFValueType::string: {
        return str();  // any bytes (not dumped as JSON: only read by key)
      }
      case GGUFValueType::array: {
        if (depth > 0) fail("GGUF nested arrays are not read");
        uint32_t et = get<uint32_t>();
        uint64_t n = get<uint64_t>();
        if (et > 12) fail("GGUF array of unknown type " + std::to_string(et));
        // Every element takes at least one byte: a count past the remaining bytes is a lie.
        if (n > b.size() - pos) fail("GGUF array count " + std::to_string(n) + " runs past the end");
        nlohmann::json a = nlohmann::json::array();
        for (uint64_t i = 0; i < n; i++) a.push_back(value(et, depth + 1));
        return a;
      }
    }
    fail("GGUF value of unknown type " + std::to_string(type));
  }
};

}  // namespace

GGUFFile parse_gguf(std::span<const uint8_t> bytes, const std::string& where) {
  Cursor c{bytes, where};
  GGUFFile g;
  if (bytes.size() < 4 || c.get<uint32_t>() != 0x46554747) bad_input(where + ": not a GGUF file (bad magic)");
  g.version = c.get<uint32_t>();
  if (g.version != 2 && g.version != 3)
    c.fail("GGUF version " + std::to_string(g.version) + " is not supported (2 or 3)");
  uint64_t n_tensors = c.get<uint64_t>(), n_kv = c.get<uint64_t>();
  // Each key/value takes at least 13 bytes and each tensor info at least 24.
  if (n_kv > bytes.size() / 13 || n_tensors > bytes.size() / 24) c.fail("GGUF counts larger than the file");
  for (uint64_t i = 0; i < n_kv; i++) {
    std::string k = c.str();
    uint32_t t = c.get<uint32_t>();
    if (g.metadata.contains(k)) c.fail("GGUF key '" + k + "' appears twice");
    g.metadata[k] = c.value(t, 0);
  }
  if (g.metadata.contains("general.alignment")) {
    const auto& a = g.metadata["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 || a.get<uint64_t>() > 65536 ||
        (a.get<uint64_t>() & (a.get<uint64_t>() - 1)))
      c.fail("general.alignment must be a power of two up to 65536");
    g.alignment = a.get<uint32_t>();
  }
  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; i++) {
    GGUFTensorInfo t;
    t.name = c.str();
    if (!names.insert(t.name).second) c.fail("GGUF tensor '" + t.name + "' appears twice");
    uint32_t nd = c.get<uint32_t>();
    if (nd == 0 || nd > 4) c.fail("GGUF tensor '" + t.name + "' has " + std::to_string(nd) + " dimensions (1 to 4)");
    uint64_t n = 1;
    for (uint32_t d = 0; d < nd; d++) {
      uint64_t x = c.get<uint64_t>();
      if (x == 0 || x > (1ull << 40) || n > (1ull << 42) / x)
        c.fail("GGUF tensor '" + t.name + "' has a bad dimension");
      n *= x;
      t.dims.push_back(x);
    }
    uint32_t type = c.get<uint32_t>();
    if (type != 0 && type != 1 && type != 2 && type != 6 && type != 8 && type != 12 && type != 13 && type != 14 &&
        type != 30)
      c.fail("GGUF tensor '" + t.name + "' has ggml type " + std::to_string(type) + unread_type_name(type) +
             " (read: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K)");
    t.type = static_cast<GGMLType>(type);
    if (t.dims[0] % ggml_block_size(t.type))
      c.fail("GGUF " + std::string(ggml_type_name(t.type)) + " tensor '" + t.name + "' rows are not whole blocks");
    t.size = ggml_row_bytes(t.type, t.dims[0]) * (n / t.dims[0]);
    t.offset = c.get<uint64_t>();
    if (t.offset % g.alignment) c.fail("GGUF tensor '" + t.name + "' offset is not aligned");
    g.tensors.push_back(std::move(t));
  }
  g.data_start = (c.pos + g.alignment - 1) / g.alignment * g.alignment;
  if (g.data_start > bytes.size()) c.fail("GGUF data section starts past the end of the file");
  uint64_t data_size = bytes.size() - g.data_start;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& t : g.tensors) {
    if (t.offset > data_size || t.size > data_size - t.offset)
      bad_input(where + ": GGUF tensor '" + t.name + "' data runs past the end of the file");
    ranges.push_back({t.offset, t.offset + t.size});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); i++)
    if (ranges[i].first < ranges[i - 1].second) bad_input(where + ": GGUF tensors overlap");
  return g;
}

}  // namespace mindllm
