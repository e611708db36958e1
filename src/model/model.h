// The decoder: forward and backward of gpt2, gpt_neo and llama blocks on the CPU, over the flat
// parameter buffer of params.h. Pre-norm residual blocks, or DeepNorm post-norm blocks
// x = norm(alpha x + f(x)) when cfg.deepnorm.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/linear.h"
#include "core/types.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/lora.h"
#include "model/neftune.h"
#include "model/params.h"

namespace mindllm {

struct QuantizedWeights;  // model/quant_weights.h

// The backward stage (Model::set_backward_hook) after which the gradient of the parameter at
// flat offset `offset` (a tensor's start) is final.
int backward_stage(const ParamLayout& layout, int n_layers, size_t offset);

class Model {
 public:
  explicit Model(const ModelConfig& cfg);

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }
  std::vector<float>& grads() { return grads_; }
  const std::vector<float>& grads() const { return grads_; }

  // bf16 is refused (bad_input) when this build or CPU cannot run bf16 GEMMs. Setting bf16 rounds
  // the current weights; forward() rounds them again (training changes them), so after changing
  // params() outside forward(), set the precision again before using params_bf16().
  void set_matmul_precision(Precision p);
  Precision matmul_precision() const { return precision_; }
  // The bf16 copy of the weights that the matrix multiplies read in bf16 precision, else null.
  const uint16_t* params_bf16() const { return precision_ == Precision::bf16 ? params_bf16_.data() : nullptr; }

  // Quantised copies of the matrices the inference engine multiplies by (model/quant_weights.h),
  // or null: the engine then reads the fp32 (or bf16) parameters. Set them again after changing params().
  void set_quantized(std::shared_ptr<const QuantizedWeights> q) { quantized_ = std::move(q); }
  const QuantizedWeights* quantized() const { return quantized_.get(); }

  // Deterministic initialisation from a seed (each tensor from its own stream).
  void init_weights(uint64_t seed);
  // Weights from <dir>/model.safetensors (f32, bf16 or f16), checked against the layout.
  void load_weights(const std::string& dir);
  // Writes config.json, model.safetensors, generation_config.json into dir (which must exist).
  void save(const std::string& dir) const;

  // Forward pass over tokens[B*T]. With targets (same shape; < 0 = ignored) returns the mean
  // loss over counted targets and keeps what backward() needs; without, returns 0 and leaves
  // the logits [B*T, V] in logits(). positions (B*T, or null: 0..T-1 in every row) packs several
  // samples into a row: each sample's positions restart at 0 and it attends only to itself
  // (model/segments.h).
  float forward(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* positions = nullptr);
  // Accumulates dL/dparams into grads() for the last forward with targets, where
  // L = loss_scale * mean loss (loss_scale = 1/grad_accum for accumulation).
  void backward(float loss_scale = 1.0f);
  // Called by backward() as the gradients become final, for a reduction overlapped with it:
  // stage 0 after the head and the final norm, n_layers - l after layer l, n_layers + 1 at the end
  // (embeddings). backward_stage() says which stage finishes a parameter. Empty: none.
  void set_backward_hook(std::function<void(int stage)> hook) { backward_hook_ = std::move(hook); }
  void zero_grads();
  // NEFTune noise on the input embeddings of the following forward passes with targets (off: {}).
  void set_embedding_noise(const EmbeddingNoise& e) { noise_ = e; }
  // LoRA adapters (model/lora.h) on the projections of the following passes, or null. While
  // attached, the base weights are frozen: backward() computes no gradient for them.
  void attach_lora(LoraWeights* l) { lora_ = l; }
  const float* logits() const { return acts_.logits; }
  const float* token_losses() const { return acts_.losses; }

 private:
  // Storage of the activations (model/decoder.h's LayerActs point into it) and backward scratch.
  struct Acts {
    int B = 0, T = 0;
    size_t capacity = 0;                    // rows (B*T) the buffers hold
    std::vector<std::vector<float>> res;    // residual stream: input of each layer, then the output
    std::vector<std::vector<float>> store;  // every other activation buffer
    std::vector<LayerActs<float>> layers;
    BlockGrads<float> grads{};
    float *lnf = nullptr, *lnf_mean = nullptr, *lnf_rstd = nullptr, *logits = nullptr, *losses = nullptr;
    float *d_res = nullptr, *d_lnf = nullptr;
    std::vector<cpu::SoftmaxStats> softmax;  // per row, from the forward's loss for the backward
    std::vector<int32_t> tokens, targets;
    std::vector<int32_t> positions, seg_start;  // packed rows: position ids and segment starts (else empty)
    int n_targets = 0;
  };

  void ensure_acts(int B, int T);
  struct TrainOps;
  TrainOps ops();

  ModelConfig cfg_;
  ParamLayout layout_;
  std::vector<float> params_, grads_;
  Precision precision_ = Precision::fp32;
  std::shared_ptr<const QuantizedWeights> quantized_;
  std::vector<uint16_t> params_bf16_;  // bf16 copy of params_, refreshed by each forward in bf16
  Acts acts_;
  std::function<void(int)> backward_hook_;
  EmbeddingNoise noise_;
  LoraWeights* lora_ = nullptr;
  std::vector<float> noise_buf_;
};

}  // namespace mindllm
