// x86 pieces shared by the AVX2 (quant_avx2.cpp) and AVX-512 (quant_avx512.cpp) kernels of the
// quantised linear: a packed group's per-row int32 sums and q4_k's scale words. AVX2 functions; a
// caller compiled for a superset (AVX-512) inlines them.
#pragma once
#include <immintrin.h>

#include <cstdint>

#define MINDLLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace mindllm::cpu::quant_detail {

// The 8 int32 lanes of A (64-bit lanes: rows 0, 1, 4, 5 of a packed group) and B (rows 2, 3, 6,
// 7), each row's two lanes added: rows 0..7 in order.
MINDLLM_AVX2 inline __m256i rows8(__m256i a, __m256i b) { return _mm256_hadd_epi32(a, b); }

// A packed q4_k group super-block's scale words (g + 32: 8 rows x 12 bytes, as quant.h packs them)
// unpacked into 6-bit scales and mins, 8 rows per vector: sub-blocks 0..3 in the bytes of sc[0] /
// mn[0], 4..7 in sc[1] / mn[1].
struct Q4kScales {
  __m256i sc[2], mn[2];
  MINDLLM_AVX2 explicit Q4kScales(const uint8_t* g) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m6 = _mm256_set1_epi8(0x3f), m2 = _mm256_set1_epi8(0x03);
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 32));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 64));
    const __m256i w2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 96));
    sc[0] = _mm256_and_si256(w0, m6);
    sc[1] =
        _mm256_or_si256(_mm256_and_si256(w2, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 6), m2), 4));
    mn[0] = _mm256_and_si256(w1, m6);
    mn[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), m4),
                            _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 6), m2), 4));
  }
  // Sub-block j's scales / mins of the 8 rows as int32.
  MINDLLM_AVX2 static __m256i pick(const __m256i* v, int j) {
    return _mm256_and_si256(_mm256_srli_epi32(v[j >> 2], 8 * (j & 3)), _mm256_set1_epi32(0xff));
  }
  MINDLLM_AVX2 __m256i scale(int j) const { return pick(sc, j); }
  MINDLLM_AVX2 __m256i min(int j) const { return pick(mn, j); }
};

// Sub-block j of a q4_k super-block added to the 8 rows' fp32 sums (quant.h's arithmetic, in this
// order): s: the rows' exact int32 nibble sums against activation block b, scj / mnj: the rows'
// scales and mins of j, sum / dx: block b's quant sum and scale, dw / dm: the rows' d and dmin.
MINDLLM_AVX2 inline __m256 q4k_sub_block(__m256 acc, __m256i s, __m256i scj, __m256i mnj, int32_t sum, __m256 dw,
                                         __m256 dm, float dx) {
  const __m256 vdx = _mm256_set1_ps(dx);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(s, scj)), _mm256_mul_ps(dw, vdx), acc);
  return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mnj, _mm256_set1_epi32(sum))), _mm256_mul_ps(dm, vdx),
                          acc);
}

}  // namespace mindllm::cpu::quant_detail
