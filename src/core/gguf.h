// GGUF (version 3), llama.cpp's model file: "GGUF", version, tensor count, metadata count, the
// metadata (typed key/value pairs), the tensor infos (name, dims innermost first, ggml type,
// offset), padding to the alignment, then the tensor data, each tensor aligned. Format:
// ggml/docs/gguf.md. The writer builds files for export; the reader checks every bound (tests,
// fuzzing, inspection).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace mindllm {

// Read and written: f32, f16, bf16, q8_0, q4_0, q4_k. Read only (kernels/cpu/quant_import.h): q5_0,
// q5_k, q6_k, the rest of llama.cpp's Q4_K_M / Q5_K_M / Q6_K files.
enum class GGMLType : uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q5_0 = 6,
  q8_0 = 8,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  bf16 = 30
};
const char* ggml_type_name(GGMLType t);
// Bytes for n elements of a row (q8_0: blocks of 32 -> 34 bytes, q4_0: -> 18, q5_0: -> 22; q4_k:
// blocks of 256 -> 144 bytes, q5_k: -> 176, q6_k: -> 210); n must be a multiple of the block
// (ggml_block_size).
uint64_t ggml_block_size(GGMLType t);
uint64_t ggml_row_bytes(GGMLType t, uint64_t n);

enum class GGUFValueType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12
};

class GGUFWriter {
 public:
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  // dims innermost first (ggml's ne); data is the tensor's bytes in `type`.
  void add_tensor(const std::string& name, std::vector<uint64_t> dims, GGMLType type, std::vector<uint8_t> data);
  // Writes the file atomically.
  void write(const std::string& path) const;

 private:
  void key(const std::string& k, GGUFValueType t);
  std::string kv_;
  uint64_t n_kv_ = 0;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    GGMLType type;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
};

struct GGUFTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;
  GGMLType type;
  uint64_t offset = 0, size = 0;  // offset from the data section
};

struct GGUFFile {
  uint32_t version = 0;
  nlohmann::json metadata = nlohmann::json::object();  // arrays as JSON arrays
  std::vector<GGUFTensorInfo> tensors;
  uint64_t data_start = 0;
  uint32_t alignment = 32;
};

// Parses and validates a GGUF file held in memory; bad input names `where`.
GGUFFile parse_gguf(std::span<const uint8_t> bytes, const std::string& where);

}  // namespace mindllm
