// PyTorch checkpoints (`pytorch_model.bin`, torch.save of a state dict, PyTorch >= 1.6): a zip
// archive holding `<name>/data.pkl` (the pickled state dict) and `<name>/data/<key>` (one entry per
// storage, raw little-endian elements). This reader parses the zip itself (stored entries as
// torch.save writes them, deflated ones through zlib) and interprets the pickle with a small
// stack machine that executes nothing: it accepts only the opcodes and GLOBALs that torch.save
// emits for a state dict (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter, torch.<Type>Storage) and refuses anything else by name.
// Every size, offset, stride and count is checked against the archive.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/file_io.h"

namespace mindllm {

enum class TorchDType { f32, f64, f16, bf16, i64, i32, i16, i8, u8, boolean };
size_t torch_dtype_size(TorchDType t);
const char* torch_dtype_name(TorchDType t);  // "float32", "bfloat16", ...

struct TorchTensor {
  TorchDType dtype = TorchDType::f32;
  std::vector<int64_t> shape, stride;  // stride in elements
  int64_t offset = 0;                  // storage offset in elements
  std::string storage;                 // storage key (the zip entry data/<key>)
  int64_t numel() const;
};

// A minimal zip reader: entry name -> bytes. Stored entries point into the mapping; deflated
// entries are inflated when first asked for, into a buffer that grows with the output zlib
// actually produces (never to a size the header merely declares). Checks every header against
// the archive's size; a caller checks declared_size() against what it expects before get().
class ZipArchive {
 public:
  ZipArchive(std::span<const uint8_t> bytes, const std::string& where);
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  uint64_t declared_size(const std::string& name) const { return entry(name).usize; }
  std::span<const uint8_t> get(const std::string& name) const;

 private:
  struct Entry {
    std::span<const uint8_t> data;  // stored: the bytes; deflated: the compressed bytes
    uint64_t usize = 0;
    bool deflated = false;
  };
  const Entry& entry(const std::string& name) const;
  std::string where_;
  std::map<std::string, Entry> entries_;
  mutable std::map<std::string, std::vector<uint8_t>> inflated_;
};

class TorchBinFile {
 public:
  explicit TorchBinFile(const std::string& path);
  // Parses bytes that outlive this object (tests, fuzzing); `where` names them in errors.
  TorchBinFile(std::span<const uint8_t> bytes, const std::string& where);

  const std::map<std::string, TorchTensor>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TorchTensor& info(const std::string& name) const;
  // Converted to float32 (f32, f16, bf16 storages; any strides); checks the shape if given.
  void read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect_shape = nullptr) const;
  const std::string& path() const { return where_; }

 private:
  void parse(std::span<const uint8_t> bytes);
  MappedFile map_;
  std::string where_;
  std::unique_ptr<ZipArchive> zip_;
  std::map<std::string, std::span<const uint8_t>> storages_;  // key -> bytes
  std::map<std::string, TorchTensor> tensors_;
};

}  // namespace mindllm
