// Hashing for filters and dedup: a fast 64-bit byte hash and flat open-addressing sets/maps of
// 64-bit keys (far smaller and faster than std::unordered_set for billions of small keys).
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace mindllm::data {

inline uint64_t mix64(uint64_t z) {  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 64-bit hash of bytes: 8-byte words folded with multiply-mix (stable across machines).
inline uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ mix64(w)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    p += 8, n -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++) w |= static_cast<uint64_t>(p[i]) << (8 * i);
  h = (h ^ mix64(w ^ 0xA5A5A5A5ull)) * 0x9E3779B97F4A7C15ull;
  return mix64(h);
}
inline uint64_t hash_str(std::string_view s, uint64_t seed = 0) { return hash_bytes(s.data(), s.size(), seed); }

// A set of 64-bit keys; grows at 50% load. Key 0 is stored as a flag.
class FlatSet64 {
 public:
  explicit FlatSet64(size_t expected = 16) { reset(expected); }
  void reset(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    slots_.assign(cap, 0);
    size_ = 0;
    has_zero_ = false;
  }
  // Inserts; returns false if the key was already there.
  bool insert(uint64_t k) {
    if (k == 0) {
      bool was = has_zero_;
      has_zero_ = true;
      return !was;
    }
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1, i = mix64(k) & mask;
    while (slots_[i] != 0) {
      if (slots_[i] == k) return false;
      i = (i + 1) & mask;
    }
    slots_[i] = k;
    size_++;
    return true;
  }
  bool contains(uint64_t k) const {
    if (k == 0) return has_zero_;
    size_t mask = slots_.size() - 1, i = mix64(k) & mask;
    while (slots_[i] != 0) {
      if (slots_[i] == k) return true;
      i = (i + 1) & mask;
    }
    return false;
  }
  size_t size() const { return size_ + has_zero_; }
  size_t memory_bytes() const { return slots_.size() * 8; }

 private:
  void grow() {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(old.size() * 2, 0);
    size_ = 0;
    for (uint64_t k : old)
      if (k) insert(k);
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
  bool has_zero_ = false;
};

// Counts of 64-bit keys (for the most frequent n-gram).
class FlatCounter64 {
 public:
  void reset(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    keys_.assign(cap, 0);
    counts_.assign(cap, 0);
  }
  // Adds one to key k (k != 0) and returns the new count.
  uint32_t add(uint64_t k) {
    size_t mask = keys_.size() - 1, i = mix64(k) & mask;
    while (keys_[i] != 0 && keys_[i] != k) i = (i + 1) & mask;
    keys_[i] = k;
    return ++counts_[i];
  }

 private:
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> counts_;
};

}  // namespace mindllm::data
