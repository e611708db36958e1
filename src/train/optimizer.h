// AdamW over the model's flat parameter buffer: decay on matrices only (norms, biases and, unless
// asked, embeddings are not decayed), global-norm clipping, state saved as optimizer.safetensors.
#pragma once
#include <string>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "model/model.h"

namespace mindllm {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  bool decay_embeddings = false;
};

class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWConfig& cfg);
  // One update of all parameters with learning rate lr; gradients are multiplied by grad_scale.
  void step(Model& model, float lr, float grad_scale);
  // The same over other flat buffers of the layout's size (LoRA adapters: model/lora.h).
  void step(float* params, const float* grads, float lr, float grad_scale);
  int steps_taken() const { return step_; }
  void save(const std::string& path) const;
  void load(const std::string& path);
  // The state as flat buffers, for a device that runs the update itself (the CUDA trainer
  // uploads them and writes them back before a checkpoint).
  const std::vector<cpu::AdamWSpan>& spans() const { return spans_; }
  std::vector<float>& exp_avg() { return m_; }
  std::vector<float>& exp_avg_sq() { return v_; }
  void set_steps_taken(int steps) { step_ = steps; }

 private:
  const ParamLayout& layout_;
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  std::vector<cpu::AdamWSpan> spans_;  // the layout cut into chunks, decay flag per tensor
  int step_ = 0;
};

// Global L2 norm of the gradients (deterministic).
double grad_norm(const Model& model);

}  // namespace mindllm
