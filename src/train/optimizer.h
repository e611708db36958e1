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
  void save(const std::string& path) const;  // the full state (not a shard)
  void load(const std::string& path);
  // optimizer.safetensors from full moments (ZeRO-1's rank 0, after gathering the shards).
  static void save_state(const std::string& path, const std::vector<float>& m, const std::vector<float>& v, int step);
  // ZeRO-1: from now on hold and update only elements [begin, begin + m.size()) of the flat
  // buffers, whose moments are m and v (train/dist: each rank its slice).
  void shard(size_t begin, std::vector<float> m, std::vector<float> v);
  size_t shard_begin() const { return begin_; }
  // The state as flat buffers, for a device that runs the update itself (the CUDA trainer
  // uploads them and writes them back before a checkpoint).
  const std::vector<cpu::AdamWSpan>& spans() const { return spans_; }
  std::vector<float>& exp_avg() { return m_; }
  std::vector<float>& exp_avg_sq() { return v_; }
  const std::vector<float>& exp_avg() const { return m_; }
  const std::vector<float>& exp_avg_sq() const { return v_; }
  void set_steps_taken(int steps) { step_ = steps; }

 private:
  const ParamLayout& layout_;
  AdamWConfig cfg_;
  std::vector<float> m_, v_;
  std::vector<cpu::AdamWSpan> spans_;  // the layout cut into chunks, decay flag per tensor (offsets from begin_)
  size_t begin_ = 0;                   // ZeRO-1: the first element this optimizer holds
  int step_ = 0;
};

// Global L2 norm of the gradients (deterministic).
double grad_norm(const Model& model);

}  // namespace mindllm
