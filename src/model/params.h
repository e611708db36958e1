// Parameter layout: every weight of the model in one flat float buffer (as llm.c), named with the
// family's Hugging Face tensor names. Tensors that one GEMM reads together are adjacent:
// q|k|v projections (one [q+2kv, C] matrix) and gate|up (one [2H, C] matrix), weights before
// biases, so fused kernels see a single matrix and a single bias vector.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/linear.h"
#include "model/config.h"

namespace mindllm {

enum class InitKind { normal, zeros, ones };

struct ParamSpec {
  std::string name;              // Hugging Face name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;    // as stored in the checkpoint
  size_t offset = 0, numel = 0;  // into the flat buffer
  bool decay = false;            // AdamW weight decay applies (matrices, not norms/biases/embeddings)
  bool embedding = false;        // token/position embedding (decayed only on request)
  InitKind init = InitKind::normal;
  float init_std = 0.0f;
};

// Offsets (into the flat buffer) of one block's tensors; SIZE_MAX where a tensor is absent.
struct LayerOffsets {
  size_t norm1_w, norm1_b, wqkv, bqkv, wo, bo, norm2_w, norm2_b, wfc, bfc, wproj, bproj;
};

struct ParamLayout {
  std::vector<ParamSpec> specs;
  std::vector<LayerOffsets> layers;
  size_t wte, wpe, normf_w, normf_b, lm_head;  // lm_head == wte when tied
  size_t total = 0;
  cpu::WeightLayout linear_layout = cpu::WeightLayout::out_in;  // GPT-2's Conv1D: in_out
  const ParamSpec* find(const std::string& name) const;
};

constexpr size_t kAbsent = SIZE_MAX;

ParamLayout build_layout(const ModelConfig& c);

}  // namespace mindllm
