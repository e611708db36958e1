// Small non-cryptographic hashes for content identity and seeding.
#pragma once
#include <cstdint>
#include <string_view>

namespace mindllm {

// FNV-1a, 64-bit.
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Mixes integers into one well-spread 64-bit value (splitmix64 finalizer).
inline uint64_t mix64(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t z =
      a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^ (c + 0x2545F4914F6CDD1Dull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace mindllm
