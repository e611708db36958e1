// SHA-1 (FIPS 180-4), for MinHash shingle hashes that match datasketch's `sha1_hash32`
// bit for bit. Not for security. Uses the x86 SHA extensions where the CPU has them
// (checked once at run time), else a portable scalar compression function.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mindllm::data {

// The 20-byte digest of n bytes.
void sha1(const void* data, size_t n, uint8_t digest[20]);

// datasketch.hashfunc.sha1_hash32: the first 4 digest bytes read as a little-endian uint32.
uint32_t sha1_hash32(const void* data, size_t n);
inline uint32_t sha1_hash32(std::string_view s) { return sha1_hash32(s.data(), s.size()); }

// sha1_hash32 of n messages (several at once where the SHA extensions are available).
void sha1_hash32_many(const std::string_view* msgs, size_t n, uint32_t* out);

// True when the SHA-NI compression function is in use (for benchmarks and tests).
bool sha1_uses_sha_ni();
// Forces the scalar compression function (tests compare both paths).
void sha1_force_scalar(bool on);

}  // namespace mindllm::data
