// Import of a GGUF file (llama.cpp's model format, core/gguf.h) for inference: `--model x.gguf`.
// The reverse of model/gguf_export.h for the architectures it writes (gpt2, llama, qwen2): the
// config from the <arch>.* metadata keys, each llama.cpp tensor name mapped back to its Hugging
// Face name (llama's Q/K rows un-permuted, GPT-2's Conv1D matrices transposed back), tensors in
// F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_0, Q5_K or Q6_K dequantised into the model's fp32
// parameters. The engine then runs the file's own format and blocks (f16 / bf16 / q8_0 / q4_0 /
// q4_k, kept by load_gguf_weights; Q5_0 / Q5_K / Q6_K tensors as q8_0 blocks of their values);
// f32 files run in fp32. The tokenizer in the
// file is not imported (text prompts need --tokenizer).
#pragma once
#include <optional>
#include <string>

#include "kernels/cpu/quant.h"
#include "model/config.h"
#include "model/quant_weights.h"

namespace mindllm {

class Model;

// True for a path naming a GGUF file (ends in .gguf and is not a directory).
bool is_gguf_path(const std::string& path);
// The model config of a GGUF file; bad input naming the file and key when it cannot be run.
ModelConfig gguf_config(const std::string& path);
// Loads the file's weights into `model` (made from gguf_config) and returns the weight type the
// file's matrices are stored in (nullopt: f32); `blocks` (optional) receives the quantised
// matrices' blocks as stored (model/quant_weights.h), for the engine to run them as they are.
std::optional<cpu::QuantType> load_gguf_weights(Model& model, const std::string& path, QuantBlocks* blocks = nullptr);

}  // namespace mindllm
