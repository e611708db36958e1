// A model from a config.json object with seeded random weights: norm weights near 1, the rest
// N(0, scale²) — for the unit tests that compare inference paths on the same weights.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/rng.h"
#include "model/config.h"
#include "model/model.h"

namespace mindllm::test {

inline Model random_model(const nlohmann::json& j, uint64_t seed, float scale) {
  Model m(config_from_json(j, "test"));
  Rng rng(seed);
  for (auto& s : m.layout().specs) {
    float* w = m.params().data() + s.offset;
    const bool norm = s.name.find("norm") != std::string::npos || s.name.find("ln_") != std::string::npos;
    for (size_t i = 0; i < s.numel; i++)
      w[i] = norm && s.name.ends_with("weight") ? 1.0f + 0.1f * rng.normal() : scale * rng.normal();
  }
  return m;
}

}  // namespace mindllm::test
