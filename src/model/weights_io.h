// Weight sources of a Hugging Face model directory, in the order transformers prefers them:
// model.safetensors, model.safetensors.index.json (shards), pytorch_model.bin,
// pytorch_model.bin.index.json. One interface over all of them: tensor names, shapes, dtypes, and
// reads converted to float32. And the writer of Hugging Face model directories (export, convert).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/safetensors.h"
#include "core/torch_bin.h"
#include "model/config.h"
#include "model/quant_weights.h"

namespace mindllm {

class Model;
class Tokenizer;

class WeightSource {
 public:
  // Opens the weights of a model directory; bad or missing files are bad input naming the file.
  static WeightSource open_dir(const std::string& dir);

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  std::vector<int64_t> shape(const std::string& name) const;
  std::string dtype_name(const std::string& name) const;
  // float32 copy of a tensor (f32, f16, bf16, or bf16/q8_0/q4_0 blocks of a quantised model
  // directory, dequantised), shape checked against `expect` when given.
  void read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect = nullptr) const;
  std::string file_of(const std::string& name) const;              // the file that holds it (for errors)
  const std::string& description() const { return description_; }  // e.g. "dir/pytorch_model.bin"

 private:
  struct Loc {
    bool bin;
    size_t file;
  };
  std::vector<std::unique_ptr<SafetensorsFile>> st_;
  std::vector<std::unique_ptr<TorchBinFile>> bin_;
  std::map<std::string, Loc> where_;
  std::map<std::string, QuantTensorInfo> quant_;  // tensors of a quantised model file (model/quant_weights.h)
  std::string description_;
};

// Tensors a checkpoint may hold that are not weights (causal-mask and rotary buffers of older
// transformers versions); loading ignores them.
bool is_ignored_buffer(const std::string& name);

// Where the tokenizer of a model directory is, if it has one (tokenizer.json or vocab.json +
// merges.txt); empty if none.
std::string find_tokenizer(const std::string& dir);
// The chat template of a model directory (tokenizer_config.json "chat_template", or
// chat_template.jinja / chat_template.json), if any.
std::optional<std::string> find_chat_template(const std::string& dir);

// The first weight tensor of `model` that holds a NaN or an infinity; empty when all are finite.
std::string first_non_finite_tensor(const Model& model);
// A loaded model must have finite weights: refuses (bad input naming `source`, the tensor and
// `override_flag` when not empty), or when `allow` only warns. One pass over the weights (parallel).
void check_weights_finite(const Model& model, const std::string& source, bool allow, const std::string& override_flag);

// --model DIR for the commands that run a model: its config, and in *weights the directory its
// weights are in; bad input when DIR (or the preset) has no weights. A .gguf file is accepted as
// well (model/gguf_import.h): *weights is then the file.
ModelConfig resolve_model_dir(const std::string& dir, std::string* weights);
// How a model loaded for inference computes (the --precision and --weights flags): fp32 or bf16
// matrix multiplies over the fp32 weights, or inference weights of another type
// (model/quant_weights.h). A quantised directory or GGUF file runs in its own type unless
// `override_weights` names one (`weights`: nullopt = f32).
struct InferenceWeights {
  Precision matmul = Precision::fp32;
  bool override_weights = false;
  std::optional<cpu::QuantType> weights;
};
// The weights of `weights_dir` into `model` for inference: loaded, checked finite (refused unless
// allow_non_finite; the override is --allow-non-finite) and set up as `how` says.
void load_for_inference(Model& model, const std::string& weights_dir, bool allow_non_finite,
                        const InferenceWeights& how);

// Writes a Hugging Face model directory: config.json, model.safetensors in `dtype` (F32, F16 or
// BF16), generation_config.json, and when `tokenizer_src` is a model directory with a tokenizer
// its tokenizer.json (+ tokenizer_config.json, special_tokens_map.json, chat template files).
void write_hf_dir(const Model& model, DType dtype, const std::string& tokenizer_src, const std::string& out_dir);

}  // namespace mindllm
