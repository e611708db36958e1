// LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") on the decoder's
// projections, laid out as Hugging Face PEFT lays it out, so adapters move between the two:
//
//   y[N, out] = x W^T + b + scale * (dropout(x) A^T) B^T,   A [r, in], B [out, r]
//   scale = alpha / r   (alpha / sqrt(r) with PEFT's use_rslora)
//
// A starts kaiming-uniform with a = sqrt(5) (torch's nn.Linear init, PEFT's default), i.e.
// U(-1/sqrt(in), 1/sqrt(in)); B starts at zero, so training starts from the base model. The base
// stays frozen: the decoder computes no gradient for it and the optimizer holds state for the
// adapters only. Dropout (training only) masks the adapter's input, one mask per adapter, drawn
// from a seed per micro-batch, so runs repeat and resume exactly.
//
// Modules: one adapter per Hugging Face module (the PEFT names of adapter_model.safetensors:
// base_model.model.<module path>.lora_A.weight / lora_B.weight). Where mindllm fuses projections
// into one GEMM (q|k|v, gate|up), each module's adapter adds onto its column slice of the fused
// output; GPT-2's c_attn is one module (q, k and v together), as PEFT adapts it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/params.h"

namespace mindllm {

struct LoraConfig {
  int rank = 0;                      // 0: no LoRA
  float alpha = 0.0f;                // 0: = rank (scale 1)
  std::vector<std::string> targets;  // q k v o gate up down (see lora_targets_help)
  float dropout = 0.0f;
  bool rslora = false;  // scale alpha / sqrt(rank) (PEFT's use_rslora; read from adapters)
  bool on() const { return rank > 0; }
  float scale() const;
};

// One adapted module and where its projection sits in the decoder.
struct LoraModule {
  std::string path;    // Hugging Face module path, e.g. model.layers.0.self_attn.q_proj
  std::string target;  // the --lora-targets name that selects it (gpt2's c_attn: q, k and v)
  int layer = 0;
  size_t linear_w = 0;  // weight offset the decoder passes to Ops::linear (a fused matrix's first)
  size_t weight = 0;    // offset of this module's own weight tensor (for merging)
  int col0 = 0;         // first output column of this module in that linear's output
  int in = 0, out = 0;  // the module's widths
  size_t a = 0, b = 0;  // offsets of A [rank, in] and B [out, rank] in the adapter buffer
};

struct LoraLayout {
  LoraConfig cfg;
  std::vector<LoraModule> modules;
  ParamLayout params;           // the A and B tensors under their PEFT names (for AdamW and I/O)
  bool fan_in_fan_out = false;  // base weights stored [in, out] (GPT-2's Conv1D)
  // PEFT's target_modules: suffixes of the module paths that select exactly these modules.
  std::vector<std::string> peft_target_modules() const;
};

// "q,k,v" -> {"q", "k", "v"} (spaces trimmed, empty items refused as bad input naming the flag).
std::vector<std::string> parse_lora_targets(const std::string& list);
// Every module LoRA can adapt in this model (a, b unset), in layer order.
std::vector<LoraModule> lora_candidates(const ModelConfig& c, const ParamLayout& layout);
// The layout of cfg.targets over the model; an unknown target or one the family lacks is bad input.
LoraLayout build_lora_layout(const ModelConfig& c, const ParamLayout& layout, const LoraConfig& cfg);
// The layout of the given modules (a subset of lora_candidates), in their order.
LoraLayout lora_layout_of(const LoraConfig& cfg, std::vector<LoraModule> modules, bool fan_in_fan_out);

// The adapters' weights and gradients, and the dropout of the passes that follow.
struct LoraWeights {
  const LoraLayout* layout;
  std::vector<float> params, grads;
  bool dropout_on = false;  // training passes: dropout with dropout_seed (set per micro-batch)
  uint64_t dropout_seed = 0;
  std::vector<float> u, du, xd, mask;  // scratch of lora_forward / lora_backward

  explicit LoraWeights(const LoraLayout& l);
  void init(uint64_t seed);  // A kaiming-uniform (a = sqrt(5)), B zero
  void zero_grads();
  double grad_norm() const;
};

// out[N, O] (the output of the decoder's linear with weight offset w, input in[N, I]) += the
// adapters of that linear's modules. No-op for a linear without adapters.
void lora_forward(LoraWeights& l, float* out, const float* in, size_t w, int N, int I, int O);
// Adapter gradients += for that linear (dout [N, O], in [N, I]); din[N, I] += their input gradient.
void lora_backward(LoraWeights& l, float* din, const float* dout, const float* in, size_t w, int N, int I, int O);

// Base weights += scale * B A for every module (the merged model computes what base + adapter do).
void lora_merge(float* params, const LoraWeights& l, cpu::WeightLayout wl);

}  // namespace mindllm
