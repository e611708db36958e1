// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data. Format: huggingface/safetensors docs. The reader checks every bound.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/file_io.h"

namespace mindllm {

struct TensorInfo {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets into the data section
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Opens and validates the file (header, dtypes, shapes, offsets); bad files are bad input.
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  std::span<const uint8_t> raw(const std::string& name) const;
  // Reads a tensor converted to float32 (F32, BF16, F16); checks the expected shape if given.
  void read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect_shape = nullptr) const;
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  size_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: raw little-endian bytes of the given dtype.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// Writes a safetensors file atomically. Tensors are laid out in the order given.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace mindllm
