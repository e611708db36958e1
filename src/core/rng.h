// Deterministic random numbers: the same seed gives the same stream on every machine
// (no std:: distributions, whose output is implementation-defined).
#pragma once
#include <cmath>
#include <cstdint>

namespace mindllm {

// splitmix64: small, fast, full-period; its whole state is one uint64 (easy to checkpoint).
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed = 0) : state(seed) {}
  uint64_t next_u64() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 random bits (exact in float).
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  double uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n) (n > 0), without modulo bias worth caring about for n << 2^64.
  uint64_t below(uint64_t n) { return next_u64() % n; }
  // Standard normal by Box-Muller.
  float normal() {
    double u1 = uniform_double(), u2 = uniform_double();
    if (u1 < 1e-300) u1 = 1e-300;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

}  // namespace mindllm
