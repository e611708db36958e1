#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace mindllm {

using json = nlohmann::json;

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  auto bytes = map_.bytes();
  if (bytes.size() < 8) bad_input(path + ": not a safetensors file (shorter than 8 bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | bytes[i];
  if (n > bytes.size() - 8)
    bad_input(path + ": safetensors header length " + std::to_string(n) + " runs past the end of the file");
  if (n > (100u << 20)) bad_input(path + ": safetensors header larger than 100 MB");
  data_start_ = 8 + n;
  uint64_t data_size = bytes.size() - data_start_;
  json h;
  try {
    h = json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  } catch (const std::exception& e) { bad_input(path + ": safetensors header is not valid JSON"); }
  if (!h.is_object()) bad_input(path + ": safetensors header is not a JSON object");
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) bad_input(path + ": __metadata__ is not an object");
      for (auto& [k, mv] : v.items()) {
        if (!mv.is_string()) bad_input(path + ": __metadata__." + k + " is not a string");
        metadata_[k] = mv.get<std::string>();
      }
      continue;
    }
    std::string where = path + ": tensor '" + name + "'";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      bad_input(where + ": needs dtype, shape and data_offsets");
    TensorInfo t;
    if (!v["dtype"].is_string() || !dtype_from_name(v["dtype"].get<std::string>(), &t.dtype))
      bad_input(where + ": unsupported dtype " + v["dtype"].dump());
    if (!v["shape"].is_array()) bad_input(where + ": shape is not an array");
    uint64_t numel = 1;
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) bad_input(where + ": shape has a non-integer or negative entry");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 40) || (dim && numel > (1ull << 40) / dim)) bad_input(where + ": shape too large");
      numel *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad_input(where + ": data_offsets must be two non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.begin > t.end || t.end > data_size) bad_input(where + ": data_offsets out of range of the file");
    if (t.end - t.begin != numel * dtype_size(t.dtype))
      bad_input(where + ": data size " + std::to_string(t.end - t.begin) + " does not match shape " +
                shape_str(t.shape) + " of " + dtype_name(t.dtype));
    tensors_[name] = std::move(t);
  }
  // Overlapping tensors are a corrupt (or hostile) file.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, t] : tensors_)
    if (t.end > t.begin) ranges.push_back({t.begin, t.end});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); i++)
    if (ranges[i].first < ranges[i - 1].second) bad_input(path + ": tensors overlap in the data section");
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) bad_input(path() + ": missing tensor '" + name + "'");
  return it->second;
}

std::span<const uint8_t> SafetensorsFile::raw(const std::string& name) const {
  const TensorInfo& t = info(name);
  return map_.bytes().subspan(data_start_ + t.begin, t.end - t.begin);
}

void SafetensorsFile::read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect) const {
  const TensorInfo& t = info(name);
  if (expect && *expect != t.shape)
    bad_input(path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(*expect));
  auto r = raw(name);
  int64_t n = t.numel();
  switch (t.dtype) {
    case DType::f32: std::memcpy(out, r.data(), n * 4); break;
    case DType::bf16:
      for (int64_t i = 0; i < n; i++) out[i] = bf16_to_float(static_cast<uint16_t>(r[2 * i] | (r[2 * i + 1] << 8)));
      break;
    case DType::f16:
      for (int64_t i = 0; i < n; i++) out[i] = half_to_float(static_cast<uint16_t>(r[2 * i] | (r[2 * i + 1] << 8)));
      break;
    default: bad_input(path() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) + ", expected a float type");
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    uint64_t bytes = n * dtype_size(t.dtype);
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string header = h.dump();
  while ((8 + header.size()) % 8 != 0) header.push_back(' ');  // align data to 8 bytes
  std::string out;
  out.reserve(8 + header.size() + off);
  uint64_t hn = header.size();
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((hn >> (8 * i)) & 0xff));
  out += header;
  for (auto& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    out.append(static_cast<const char*>(t.data), n * dtype_size(t.dtype));
  }
  write_file_atomic(path, out);
}

}  // namespace mindllm
