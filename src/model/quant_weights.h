// Quantised weights for inference (kernels/cpu/quant.h formats): the matrices the inference
// engine multiplies by, each repacked to [out, in] rows in f16, bf16, q8_0, q4_0 or q4_k and keyed by its
// offset in the model's flat parameter buffer, so the engine's linear op looks it up by the
// offset the decoder passes (model/engine.cpp). The fp32 parameters stay (embedding rows, norms,
// biases and any matrix whose rows are not whole blocks).
//
// The quantised model directory (`mindllm quantize`, docs/formats.md): config.json (with
// "mindllm_quantization": {"type": ...}), tokenizer files, and model.safetensors whose 2-D
// tensors are stored as U8 [out, row_bytes] block rows, described in the header's __metadata__
// key "mindllm.quant" (JSON: name -> {"type", "shape" (the tensor's own shape), "transposed"});
// 1-D tensors stay F32. Every loader of model directories reads it (weights dequantised).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/huge_pages.h"
#include "core/progress.h"
#include "kernels/cpu/quant.h"
#include "model/config.h"
#include "model/params.h"

namespace mindllm {

class Model;

// One matrix the engine multiplies by: [O, I] starting at `offset`; in_out when it is stored
// [I, O] in the flat buffer (GPT-2's Conv1D). q|k|v and gate|up are one matrix each.
struct LinearWeight {
  size_t offset;
  int O, I;
  cpu::WeightLayout layout;
  bool output;  // the output projection (lm_head, or the tied embedding)
};
std::vector<LinearWeight> linear_weights(const ModelConfig& cfg, const ParamLayout& layout);

// The type a matrix is stored in for a model of type t: q4_0 and q4_k models keep the output
// projection in q8_0 (as llama.cpp's quantiser keeps it above 4 bits), q4_k matrices whose rows
// are not whole 256-weight super-blocks are q4_0 (llama.cpp takes q5_0, which mindllm lacks), and
// matrices whose rows are not whole blocks stay fp32 (nullopt).
std::optional<cpu::QuantType> matrix_type(cpu::QuantType t, bool output, int64_t row_len);

// The matrices live in one arena, each 64-byte aligned, in the order the decoder multiplies by
// them; the arena is 2 MiB aligned and madvise(MADV_HUGEPAGE)d before it is written, so Linux
// backs it with transparent huge pages where it allows ("always" or "madvise" mode): a decode
// step streams every byte of it, and 2 MiB pages spare the TLB misses of 4 KiB ones.
// q8_0 / q4_0 / q4_k matrices are in the int8 kernels' packed layout (kernels/cpu/quant.h).
struct QuantizedWeights {
  cpu::QuantType type;
  struct Matrix {
    cpu::QuantMatrix m;
    size_t bytes = 0;
  };
  std::map<size_t, Matrix> by_offset;
  HugeBuffer arena{nullptr, nullptr};  // core/huge_pages.h
  const cpu::QuantMatrix* find(size_t offset) const {
    auto it = by_offset.find(offset);
    return it == by_offset.end() ? nullptr : &it->second.m;
  }
  size_t bytes() const;  // of all quantised matrices
};

// Blocks as a file holds them (a GGUF, a quantised directory): parameter name -> its block rows
// (the rows of the engine's [out, in] matrix) in `type`. Re-quantising dequantised blocks gives
// the same blocks for q8_0 / q4_0 / bf16 / f16 but not always for q4_k (ggml's search for a scale and
// min can land elsewhere), so a model runs the file's own blocks.
struct FileBlocks {
  cpu::QuantType type;
  std::vector<uint8_t> rows;
};
using QuantBlocks = std::map<std::string, FileBlocks>;
// The block rows of a quantised model directory's matrices (empty if it is not one).
QuantBlocks read_quant_blocks(const std::string& dir);

// The engine's matrices of `model` quantised from its fp32 parameters (in parallel). `given`: a
// file's blocks, for a run in the file's own type; a matrix all of whose parameters it holds in
// one type runs those blocks in that type (e.g. a llama.cpp file's Q4_K output projection).
std::shared_ptr<const QuantizedWeights> quantize_weights(const Model& model, cpu::QuantType type,
                                                         const QuantBlocks* given = nullptr);

// --weights f32 | f16 | bf16 | q8_0 | q4_0 | q4_k: f32 is nullopt; anything else is bad input naming the flag.
std::optional<cpu::QuantType> weights_type_from_name(const std::string& name);

// Writes a quantised model directory (see above) of `model` in `type` to `out`; the tokenizer
// files of `tokenizer_src` come along. `progress` (optional) counts MB of fp32 weights quantised.
// A tensor `given` holds in its type is written with those blocks (a GGUF's, as they are).
void write_quantized_dir(const Model& model, cpu::QuantType type, const std::string& tokenizer_src,
                         const std::string& out, Progress* progress = nullptr, const QuantBlocks* given = nullptr);
// The type of a quantised model directory (config.json's mindllm_quantization), else nullopt.
std::optional<cpu::QuantType> quantized_dir_type(const std::string& dir);

// The safetensors metadata key of a quantised model file, and the layout of one of its tensors.
inline constexpr const char* kQuantMetadataKey = "mindllm.quant";
struct QuantTensorInfo {
  cpu::QuantType type;
  std::vector<int64_t> shape;  // the tensor's own (unquantised) shape
  bool transposed = false;     // rows are the columns of the stored tensor
};
// Parses the metadata of a quantised safetensors file (bad input naming `path`); empty if none.
std::map<std::string, QuantTensorInfo> parse_quant_metadata(const std::map<std::string, std::string>& meta,
                                                            const std::string& path);
// The fp32 values of a stored quantised tensor (U8 [rows, row_bytes]) in its own shape; checks
// the byte count (bad input naming path and tensor).
void dequantize_tensor(const QuantTensorInfo& q, const uint8_t* data, size_t bytes, float* out, const std::string& path,
                       const std::string& name);

}  // namespace mindllm
