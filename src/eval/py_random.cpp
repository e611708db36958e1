#include "eval/py_random.h"

#include <cmath>
#include <unordered_set>

namespace mindllm::eval {

PyRandom::PyRandom(uint32_t seed) {
  // init_genrand(19650218), then init_by_array(key = {seed}) as CPython's random_seed does for a
  // non-negative int below 2^32.
  mt_[0] = 19650218u;
  for (int i = 1; i < kN; i++) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  const uint32_t key[1] = {seed};
  const int key_len = 1;
  int i = 1, j = 0;
  for (int k = kN > key_len ? kN : key_len; k; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    i++;
    j++;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_len) j = 0;
  }
  for (int k = kN - 1; k; k--) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    i++;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;
  index_ = kN;
}

uint32_t PyRandom::genrand_uint32() {
  constexpr int kM = 397;
  constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
  if (index_ >= kN) {
    for (int kk = 0; kk < kN; kk++) {
      uint32_t y = (mt_[kk] & kUpper) | (mt_[(kk + 1) % kN] & kLower);
      mt_[kk] = mt_[(kk + kM) % kN] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    }
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PyRandom::randbelow(uint32_t n) {
  int k = 0;
  for (uint32_t v = n; v; v >>= 1) k++;       // n.bit_length()
  uint32_t r = genrand_uint32() >> (32 - k);  // getrandbits(k), k <= 32
  while (r >= n) r = genrand_uint32() >> (32 - k);
  return r;
}

std::vector<size_t> PyRandom::sample(size_t n, size_t k) {
  std::vector<size_t> result(k);
  size_t setsize = 21;
  if (k > 5)
    setsize += static_cast<size_t>(std::pow(4.0, std::ceil(std::log(static_cast<double>(k * 3)) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; i++) pool[i] = i;
    for (size_t i = 0; i < k; i++) {
      size_t j = randbelow(static_cast<uint32_t>(n - i));
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; i++) {
      size_t j = randbelow(static_cast<uint32_t>(n));
      while (selected.count(j)) j = randbelow(static_cast<uint32_t>(n));
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace mindllm::eval
