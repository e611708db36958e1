// NEFTune (Jain et al., 2023, "NEFTune: Noisy Embeddings Improve Instruction Finetuning"): while
// training, uniform noise in [-m, m], m = alpha / sqrt(T * C), is added to the input embeddings of
// a micro-batch of T positions per row and width C (as TRL's neftune_noise_alpha does, T being
// the padded length). The noise comes from one seeded stream, so the CPU and the GPU add the same
// values and a resumed run the same as an uninterrupted one. The noise is additive: the backward
// pass is unchanged.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/rng.h"

namespace mindllm {

struct EmbeddingNoise {
  float alpha = 0.0f;  // 0: off
  uint64_t seed = 0;
  bool on() const { return alpha > 0.0f; }
};

// out[0..N*C) = the noise of a micro-batch of N = B*T rows.
inline void embedding_noise(float* out, size_t N, int T, int C, const EmbeddingNoise& e) {
  const float m = e.alpha / std::sqrt(static_cast<float>(T) * static_cast<float>(C));
  Rng rng(e.seed);
  for (size_t i = 0; i < N * (size_t)C; i++) out[i] = (2.0f * rng.uniform() - 1.0f) * m;
}

}  // namespace mindllm
