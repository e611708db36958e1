#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/safetensors.h"
#include "kernels/cpu/adamw.h"

namespace mindllm {

AdamW::AdamW(const ParamLayout& layout, const AdamWConfig& cfg)
    : layout_(layout), cfg_(cfg), m_(layout.total, 0.0f), v_(layout.total, 0.0f) {
  constexpr size_t kChunk = 1 << 15;
  for (const ParamSpec& s : layout_.specs) {
    bool decay = s.decay || (s.embedding && cfg_.decay_embeddings);
    for (size_t o = 0; o < s.numel; o += kChunk) spans_.push_back({s.offset + o, std::min(kChunk, s.numel - o), decay});
  }
}

void AdamW::step(Model& model, float lr, float grad_scale) {
  step(model.params().data(), model.grads().data(), lr, grad_scale);
}

void AdamW::step(float* params, const float* grads, float lr, float grad_scale) {
  step_++;
  cpu::AdamWParams ap{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, step_};
  cpu::adamw_update_spans(params, grads, m_.data(), v_.data(), spans_.data(), spans_.size(), ap, grad_scale);
}

void AdamW::save(const std::string& path) const {
  int64_t n = static_cast<int64_t>(m_.size());
  write_safetensors(path, {{"exp_avg", DType::f32, {n}, m_.data()}, {"exp_avg_sq", DType::f32, {n}, v_.data()}},
                    {{"step", std::to_string(step_)}, {"format", "mindllm-adamw-flat"}});
}

void AdamW::load(const std::string& path) {
  SafetensorsFile f(path);
  std::vector<int64_t> shape = {static_cast<int64_t>(m_.size())};
  f.read_f32("exp_avg", m_.data(), &shape);
  f.read_f32("exp_avg_sq", v_.data(), &shape);
  auto it = f.metadata().find("step");
  if (it == f.metadata().end()) bad_input(path + ": optimizer state has no step");
  const std::string& s = it->second;
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad_input(path + ": optimizer step '" + s.substr(0, 40) + "' is not a step count (0 to 999999999)");
  step_ = std::stoi(s);
  // NaN or infinite moments (or a negative second moment) would spread into every weight.
  bool finite = true;
  const float* m = m_.data();
  const float* v = v_.data();
  const int64_t n = static_cast<int64_t>(m_.size());
#pragma omp parallel for reduction(&& : finite) schedule(static)
  for (int64_t i = 0; i < n; i++) finite = finite && std::isfinite(m[i]) && std::isfinite(v[i]) && v[i] >= 0.0f;
  if (!finite) bad_input(path + ": optimizer state holds NaN, infinite or negative values");
}

double grad_norm(const Model& model) {
  const auto& g = model.grads();
  return std::sqrt(cpu::sum_of_squares(g.data(), g.size()));
}

}  // namespace mindllm
