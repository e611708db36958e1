#include "data/sha1.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mindllm::data {

namespace {

constexpr uint32_t kInit[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// The compression function over n 64-byte blocks (FIPS 180-4, 6.1.2).
void blocks_scalar(uint32_t st[5], const uint8_t* p, size_t n) {
  for (; n > 0; n--, p += 64) {
    uint32_t w[80];
    for (int t = 0; t < 16; t++) w[t] = load_be32(p + 4 * t);
    for (int t = 16; t < 80; t++) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];
    for (int t = 0; t < 80; t++) {
      uint32_t f, k;
      if (t < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
      else if (t < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
      else if (t < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
      else f = b ^ c ^ d, k = 0xCA62C1D6u;
      uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
      e = d, d = c, c = rotl(b, 30), b = a, a = tmp;
    }
    st[0] += a, st[1] += b, st[2] += c, st[3] += d, st[4] += e;
  }
}

#if defined(__x86_64__)
// The same with the SHA extensions. Lanes: ABCD holds A in its top 32-bit lane; E rides in the
// top lane of a second register. Message groups of 4 words follow the schedule
// W[k] = sha1msg2(sha1msg1(W[k-4], W[k-3]) ^ W[k-2], W[k-1]); round group k takes
// E = sha1nexte(ABCD before group k-1, W[k]) (the E of group k is A of two groups back, rotated).
__attribute__((target("sha,sse4.1,ssse3"))) void blocks_sha_ni(uint32_t st[5], const uint8_t* p, size_t n) {
  const __m128i bswap = _mm_set_epi64x(0x0001020304050607ll, 0x08090a0b0c0d0e0fll);
  __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(st)), 0x1B);
  __m128i e0 = _mm_set_epi32(static_cast<int>(st[4]), 0, 0, 0);
  for (; n > 0; n--, p += 64) {
    const __m128i abcd_save = abcd, e_save = e0;
    __m128i w[4];
    for (int i = 0; i < 4; i++)
      w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), bswap);
    __m128i prev = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, _mm_add_epi32(e0, w[0]), 0);
    __m128i e;
    for (int k = 1; k < 20; k++) {
      if (k >= 4) {  // message group k into w[k % 4]
        __m128i x = _mm_xor_si128(_mm_sha1msg1_epu32(w[k & 3], w[(k + 1) & 3]), w[(k + 2) & 3]);
        w[k & 3] = _mm_sha1msg2_epu32(x, w[(k + 3) & 3]);
      }
      e = _mm_sha1nexte_epu32(prev, w[k & 3]);
      prev = abcd;
      switch (k / 5) {  // the round function is an immediate
        case 0: abcd = _mm_sha1rnds4_epu32(abcd, e, 0); break;
        case 1: abcd = _mm_sha1rnds4_epu32(abcd, e, 1); break;
        case 2: abcd = _mm_sha1rnds4_epu32(abcd, e, 2); break;
        default: abcd = _mm_sha1rnds4_epu32(abcd, e, 3); break;
      }
    }
    e0 = _mm_sha1nexte_epu32(prev, e_save);
    abcd = _mm_add_epi32(abcd, abcd_save);
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(st), _mm_shuffle_epi32(abcd, 0x1B));
  st[4] = static_cast<uint32_t>(_mm_extract_epi32(e0, 3));
}
#endif

// L independent one-block messages at once: the round instructions of one message wait on the
// previous round's result, so interleaving messages keeps the SHA unit busy. Returns each
// final A (digest word 0). SHA instructions address only xmm0..15, so L stays small.
template <int L>
__attribute__((target("sha,sse4.1,ssse3"))) void one_block_sha_ni(const uint8_t* const* blk, uint32_t* out) {
  const __m128i bswap = _mm_set_epi64x(0x0001020304050607ll, 0x08090a0b0c0d0e0fll);
  const __m128i abcd0 = _mm_set_epi32(static_cast<int>(kInit[0]), static_cast<int>(kInit[1]),
                                      static_cast<int>(kInit[2]), static_cast<int>(kInit[3]));
  const __m128i e_init = _mm_set_epi32(static_cast<int>(kInit[4]), 0, 0, 0);
  __m128i w[L][4], abcd[L], prev[L], e[L];
  for (int l = 0; l < L; l++) {
    for (int i = 0; i < 4; i++)
      w[l][i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[l] + 16 * i)), bswap);
    prev[l] = abcd0;
    abcd[l] = _mm_sha1rnds4_epu32(abcd0, _mm_add_epi32(e_init, w[l][0]), 0);
  }
  for (int k = 1; k < 20; k++) {
    for (int l = 0; l < L; l++) {
      if (k >= 4) {
        __m128i x = _mm_xor_si128(_mm_sha1msg1_epu32(w[l][k & 3], w[l][(k + 1) & 3]), w[l][(k + 2) & 3]);
        w[l][k & 3] = _mm_sha1msg2_epu32(x, w[l][(k + 3) & 3]);
      }
      e[l] = _mm_sha1nexte_epu32(prev[l], w[l][k & 3]);
      prev[l] = abcd[l];
      switch (k / 5) {
        case 0: abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e[l], 0); break;
        case 1: abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e[l], 1); break;
        case 2: abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e[l], 2); break;
        default: abcd[l] = _mm_sha1rnds4_epu32(abcd[l], e[l], 3); break;
      }
    }
  }
  for (int l = 0; l < L; l++) out[l] = static_cast<uint32_t>(_mm_extract_epi32(_mm_add_epi32(abcd[l], abcd0), 3));
}

bool force_scalar = false;
bool have_sha_ni() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
  return has;
#else
  return false;
#endif
}

inline void blocks(uint32_t st[5], const uint8_t* p, size_t n) {
#if defined(__x86_64__)
  if (!force_scalar && have_sha_ni()) return blocks_sha_ni(st, p, n);
#endif
  blocks_scalar(st, p, n);
}

void sha1_state(const void* data, size_t n, uint32_t st[5]) {
  std::memcpy(st, kInit, sizeof kInit);
  const auto* p = static_cast<const uint8_t*>(data);
  size_t full = n / 64;
  if (full) blocks(st, p, full);
  // Last one or two blocks: the tail, 0x80, zeros, the bit length (big-endian 64-bit).
  uint8_t tail[128] = {};
  size_t rem = n - full * 64;
  if (rem) std::memcpy(tail, p + full * 64, rem);
  tail[rem] = 0x80;
  size_t len = rem + 9 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(n) * 8;
  for (int i = 0; i < 8; i++) tail[len - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  blocks(st, tail, len / 64);
}

}  // namespace

void sha1(const void* data, size_t n, uint8_t digest[20]) {
  uint32_t st[5];
  sha1_state(data, n, st);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 4; k++) digest[4 * i + k] = static_cast<uint8_t>(st[i] >> (24 - 8 * k));
}

uint32_t sha1_hash32(const void* data, size_t n) {
  uint32_t st[5];
  sha1_state(data, n, st);
  // Digest bytes 0..3 are st[0] big-endian; read little-endian that is its byte swap.
  return __builtin_bswap32(st[0]);
}

namespace {
// The single padded block of a message of at most 55 bytes.
inline void pad_one_block(std::string_view m, uint8_t* blk) {
  std::memset(blk, 0, 64);
  std::memcpy(blk, m.data(), m.size());
  blk[m.size()] = 0x80;
  uint64_t bits = static_cast<uint64_t>(m.size()) * 8;
  for (int i = 0; i < 8; i++) blk[63 - i] = static_cast<uint8_t>(bits >> (8 * i));
}
}  // namespace

void sha1_hash32_many(const std::string_view* msgs, size_t n, uint32_t* out) {
  size_t i = 0;
#if defined(__x86_64__)
  constexpr int L = 2;
  if (!force_scalar && have_sha_ni()) {
    alignas(16) uint8_t blk[L][64];
    const uint8_t* ptr[L];
    for (int l = 0; l < L; l++) ptr[l] = blk[l];
    for (; i + L <= n; i += L) {
      bool short_all = true;
      for (int l = 0; l < L; l++) short_all &= msgs[i + l].size() <= 55;
      if (!short_all) {
        for (int l = 0; l < L; l++) out[i + l] = sha1_hash32(msgs[i + l].data(), msgs[i + l].size());
        continue;
      }
      for (int l = 0; l < L; l++) pad_one_block(msgs[i + l], blk[l]);
      uint32_t a[L];
      one_block_sha_ni<L>(ptr, a);
      for (int l = 0; l < L; l++) out[i + l] = __builtin_bswap32(a[l]);
    }
  }
#endif
  for (; i < n; i++) out[i] = sha1_hash32(msgs[i].data(), msgs[i].size());
}

bool sha1_uses_sha_ni() { return !force_scalar && have_sha_ni(); }
void sha1_force_scalar(bool on) { force_scalar = on; }

}  // namespace mindllm::data
