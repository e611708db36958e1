// Python's random.Random, bit for bit, for what lm-evaluation-harness uses to draw few-shot
// examples: Random(int seed) (MT19937 seeded by init_by_array) and sample(range(n), k).
// Source of the algorithms: CPython's Modules/_randommodule.c and Lib/random.py (3.11).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mindllm::eval {

class PyRandom {
 public:
  explicit PyRandom(uint32_t seed);
  uint32_t genrand_uint32();
  // random._randbelow_with_getrandbits(n), n > 0.
  uint32_t randbelow(uint32_t n);
  // Indices chosen by random.sample(population, k) for a population of size n (k <= n).
  std::vector<size_t> sample(size_t n, size_t k);

 private:
  static constexpr int kN = 624;
  uint32_t mt_[kN];
  int index_ = kN;
};

}  // namespace mindllm::eval
