// Export of a model (and its tokenizer) to GGUF v3 as llama.cpp reads it: the architecture's
// standard metadata keys and tensor names (as llama.cpp's convert_hf_to_gguf.py writes them),
// the tokenizer as tokenizer.ggml.* (BPE "gpt2" model), and the chat template.
//   llama  -> "llama" (Q/K rows permuted to llama.cpp's interleaved RoPE), SwiGLU only
//   qwen2  -> "qwen2"
//   gpt2   -> "gpt2" (Conv1D weights transposed)
//   gpt_neo with global attention only -> "gpt2" (q scaled by sqrt(head_dim), since GPT-Neo does
//            not scale scores; zero q/k/v bias). Local-attention layers have no llama.cpp
//            equivalent and are refused.
#pragma once
#include <optional>
#include <string>

#include "core/gguf.h"
#include "core/progress.h"

namespace mindllm {

class Model;
class Tokenizer;

struct GGUFExportOptions {
  GGMLType type = GGMLType::f16;  // for matrices; 1-D tensors (norms, biases) stay F32
  std::string name;               // general.name
  std::optional<std::string> chat_template;
  Progress* progress = nullptr;  // optional: MB of fp32 weights converted, then the write
};

// Throws bad_input naming what llama.cpp cannot represent (DeepNorm, GeGLU in the llama family,
// partial rotary, local attention, a tokenizer smaller than the model's vocabulary, ...).
void export_gguf(const Model& model, const Tokenizer& tok, const GGUFExportOptions& opt, const std::string& path);

}  // namespace mindllm
