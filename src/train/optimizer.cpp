#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/safetensors.h"
#include "kernels/cpu/adamw.h"

namespace mindllm {

namespace {

// The layout's tensors cut into chunks of at most 32k elements, within [begin, end), as offsets
// from begin.
std::vector<cpu::AdamWSpan> make_spans(const ParamLayout& layout, const AdamWConfig& cfg, size_t begin, size_t end) {
  constexpr size_t kChunk = 1 << 15;
  std::vector<cpu::AdamWSpan> spans;
  for (const ParamSpec& s : layout.specs) {
    bool decay = s.decay || (s.embedding && cfg.decay_embeddings);
    for (size_t o = s.offset; o < s.offset + s.numel; o += kChunk) {
      size_t lo = std::max(o, begin), hi = std::min({o + kChunk, s.offset + s.numel, end});
      if (lo < hi) spans.push_back({lo - begin, hi - lo, decay});
    }
  }
  return spans;
}

}  // namespace

AdamW::AdamW(const ParamLayout& layout, const AdamWConfig& cfg)
    : layout_(layout), cfg_(cfg), m_(layout.total, 0.0f), v_(layout.total, 0.0f),
      spans_(make_spans(layout, cfg, 0, layout.total)) {}

void AdamW::shard(size_t begin, std::vector<float> m, std::vector<float> v) {
  MINDLLM_CHECK(m.size() == v.size() && begin + m.size() <= layout_.total, "AdamW::shard: bad slice");
  begin_ = begin;
  m_ = std::move(m);
  v_ = std::move(v);
  spans_ = make_spans(layout_, cfg_, begin, begin + m_.size());
}

void AdamW::step(Model& model, float lr, float grad_scale) {
  step(model.params().data(), model.grads().data(), lr, grad_scale);
}

void AdamW::step(float* params, const float* grads, float lr, float grad_scale) {
  step_++;
  cpu::AdamWParams ap{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, step_};
  cpu::adamw_update_spans(params + begin_, grads + begin_, m_.data(), v_.data(), spans_.data(), spans_.size(), ap,
                          grad_scale);
}

void AdamW::save_state(const std::string& path, const std::vector<float>& m, const std::vector<float>& v, int step) {
  int64_t n = static_cast<int64_t>(m.size());
  write_safetensors(path, {{"exp_avg", DType::f32, {n}, m.data()}, {"exp_avg_sq", DType::f32, {n}, v.data()}},
                    {{"step", std::to_string(step)}, {"format", "mindllm-adamw-flat"}});
}

void AdamW::save(const std::string& path) const {
  MINDLLM_CHECK(m_.size() == layout_.total, "AdamW::save of a shard");
  save_state(path, m_, v_, step_);
}

void AdamW::load(const std::string& path) {
  MINDLLM_CHECK(m_.size() == layout_.total, "AdamW::load into a shard");
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
