// AVX-512 kernels of the quantised linear (kernels/cpu/quant.h), chosen at run time:
// - f16 batch tiles: the AVX2 broadcast tiles with 16 lanes, so twice the outputs per FMA. Each
//   lane is one output's FMA chain over the input features in order, as in every bf16 / f16
//   kernel: the same bits as the AVX2 decode GEMV.
// - q8_0 / q4_0 / q4_k decode GEMV with VNNI (vpdpbusd: 64 unsigned x signed int8 products into 16
//   int32 per instruction): a packed group's 64-byte chunk is one load and one vpdpbusd where
//   AVX2 needs two loads and eight instructions. Each block's int32 sums are exact and the fp32
//   steps are the AVX2 kernel's, so the same bits as dot_rows_avx2.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/env.h"
#include "kernels/cpu/quant_impl.h"
#include "kernels/cpu/quant_x86.h"

#define MINDLLM_AVX512 __attribute__((target("avx512f,avx512bw,f16c,fma")))
#define MINDLLM_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma")))

namespace mindllm::cpu::quant_detail {

bool f16_avx512_available() {
#if defined(__x86_64__)
  static const bool yes = [] {
    if (env_flag("MINDLLM_NO_AVX512")) return false;  // the AVX2 kernels instead (tests, comparisons)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  }();
  return yes;
#else
  return false;
#endif
}

bool int8_vnni_available() {
#if defined(__x86_64__)
  static const bool yes = [] {
    __builtin_cpu_init();
    return f16_avx512_available() && __builtin_cpu_supports("avx512vnni");
  }();
  return yes;
#else
  return false;
#endif
}

namespace {

// The decode's block of `bytes` at g, 2 KiB ahead (Xeon, bench/decode/gemv.cpp, Qwen2-0.5B: q4_0
// at 84-88% of the read rate with the AVX2 decode's 1 KiB of quants only, 93-96% so; 4 KiB: 88-93%).
MINDLLM_VNNI inline void prefetch_block(const uint8_t* g, int bytes) {
  for (int off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(g) + 2048 + off, _MM_HINT_T0);
}

// A packed group's 16 int32 lanes of chunk sums (64-bit lanes: rows 0, 1, 4, 5, 2, 3, 6, 7) as
// the 8 rows' int32 sums in order (each row's two lanes added, as the AVX2 kernels' rows8).
MINDLLM_VNNI inline __m256i rows8_512(__m512i s) {
  return rows8(_mm512_maskz_extracti64x4_epi64(0xff, s, 0), _mm512_maskz_extracti64x4_epi64(0xff, s, 1));
}

// out[0..8) of one packed q8_0 (Q4 = false) or q4_0 group g (quant_impl.h's packed_chunk layout)
// against one activation row. A chunk k (64 bytes) holds weights 8k..8k+7 of the 8 rows (q4_0:
// nibble bytes, low nibbles weights 8k.., high ones 16 + 8k..), rows 0, 1, 4, 5, 2, 3, 6, 7 in its
// 64-bit lanes. vpdpbusd wants one side unsigned: q4_0's nibbles are (its -8 is 8 x the
// activation block's sum, as in AVX2); q8_0's weights are flipped to w + 128 (xor 0x80) and 128 x
// the block sum taken off. |sums| <= 32 x 255 x 127: exact in int32.
template <bool Q4>
MINDLLM_VNNI void int8_group_gemv(const uint8_t* g, const ActQ8& x, float* out) {
  constexpr int kQuantBytes = Q4 ? 16 : 32, kBlockBytes = kPackRows * (2 + kQuantBytes);
  const __m512i low4 = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < x.nb; b++, g += kBlockBytes) {
    prefetch_block(g, kBlockBytes);
    const int8_t* q = x.qs + 32 * b;
    __m512i s = _mm512_setzero_si512();
    int64_t xk;
    for (int k = 0; k < (Q4 ? 2 : 4); k++) {
      const __m512i v = _mm512_loadu_si512(g + 16 + 64 * k);
      std::memcpy(&xk, q + 8 * k, 8);
      if constexpr (Q4) {
        s = _mm512_dpbusd_epi32(s, _mm512_and_si512(v, low4), _mm512_set1_epi64(xk));
        std::memcpy(&xk, q + 16 + 8 * k, 8);
        s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), _mm512_set1_epi64(xk));
      } else {
        s = _mm512_dpbusd_epi32(s, _mm512_xor_si512(v, flip), _mm512_set1_epi64(xk));
      }
    }
    const __m256i rows = rows8_512(s);
    const __m256i sums = _mm256_sub_epi32(rows, _mm256_set1_epi32((Q4 ? 8 : 128) * x.sum[b]));
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, _mm256_set1_ps(x.d[b])), acc);
  }
  _mm256_storeu_ps(out, acc);
}

// out[0..8) of one packed q4_k group g (quant.h: per super-block the 8 d, 8 dmin, scale words,
// then per pair p of sub-blocks 4 chunks of 64 nibble bytes, low nibbles sub-block 2p, high 2p + 1)
// against one activation row: per pair two vpdpbusd chains (the nibbles are unsigned), then per
// sub-block the AVX2 kernel's fp32 steps.
MINDLLM_VNNI void q4k_group_gemv(const uint8_t* g, const ActQ8& x, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  for (int sb = 0; sb < x.nb / 8; sb++, g += kPackRows * 144) {
    prefetch_block(g, kPackRows * 144);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
    const Q4kScales scales(g);
    for (int p = 0; p < 4; p++) {
      const int8_t* xq = x.qs + 32 * (8 * sb + 2 * p);
      __m512i lo = _mm512_setzero_si512(), hi = lo;
      int64_t xk;
      for (int k = 0; k < 4; k++) {
        const __m512i v = _mm512_loadu_si512(g + 128 + 256 * p + 64 * k);
        std::memcpy(&xk, xq + 8 * k, 8);
        lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, low4), _mm512_set1_epi64(xk));
        std::memcpy(&xk, xq + 32 + 8 * k, 8);
        hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), _mm512_set1_epi64(xk));
      }
      for (int h = 0; h < 2; h++) {
        const int j = 2 * p + h, b = 8 * sb + j;
        acc = q4k_sub_block(acc, rows8_512(h ? hi : lo), scales.scale(j), scales.min(j), x.sum[b], dw, dm, x.d[b]);
      }
    }
  }
  _mm256_storeu_ps(out, acc);
}

// out[r][0..32) for R activation rows x[r * I ..] and one packed f16 group g [I][32]: per weight
// index one 64-byte load widened to 2 x 16 lanes, R broadcasts, 2 R FMAs (R = 12: 24 accumulators).
template <int R>
MINDLLM_AVX512 void f16_tile(const uint16_t* g, int I, const float* x, float* out, int ldo) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const __mmask16 all = 0xffff;  // (maskz: GCC 12 warns of the unmasked form's undefined operand)
  for (int i = 0; i < I; i++, g += kPack16Rows) {
    const __m512 lo = _mm512_maskz_cvtph_ps(all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g)));
    const __m512 hi = _mm512_maskz_cvtph_ps(all, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16)));
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
      const __m512 xb = _mm512_set1_ps(x[(size_t)r * I + i]);
      acc[r][0] = _mm512_fmadd_ps(lo, xb, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(hi, xb, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; r++) {
    _mm512_storeu_ps(out + (size_t)r * ldo, acc[r][0]);
    _mm512_storeu_ps(out + (size_t)r * ldo + 16, acc[r][1]);
  }
}

template <int... Rs>
MINDLLM_AVX512 void f16_tile_rows(int R, const uint16_t* g, int I, const float* x, float* out, int ldo,
                                  std::integer_sequence<int, Rs...>) {
  ((R == Rs + 1 ? f16_tile<Rs + 1>(g, I, x, out, ldo) : void()), ...);
}

}  // namespace

MINDLLM_AVX512 void f16_groups_avx512(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out,
                                      int ldo) {
  const int I = w.I;
  const uint16_t* data = reinterpret_cast<const uint16_t*>(w.data);
  // Passes of ~256 KiB of activation rows (as the AVX2 tiles), tiles of 12 rows x 32 outputs.
  const int pass = std::max(12, (int)((256u << 10) / ((size_t)I * sizeof(float))) / 12 * 12);
  for (int n0 = 0; n0 < N; n0 += pass) {
    const int n1 = std::min(N, n0 + pass);
    for (int o = o0; o < o1; o += kPack16Rows)
      for (int n = n0; n < n1; n += 12)
        f16_tile_rows(std::min(12, n1 - n), data + (size_t)o * I, I, in + (size_t)n * I, out + (size_t)n * ldo + o, ldo,
                      std::make_integer_sequence<int, 12>{});
  }
}

MINDLLM_VNNI void int8_gemv_avx512(const QuantMatrix& w, int o0, int o1, const ActQ8& x, float* out) {
  const size_t rb = w.row_bytes();
  const int grouped = std::max(o0, std::min(o1, w.O / kPackRows * kPackRows));
  for (int o = o0; o < grouped; o += kPackRows) {
    if (w.type == QuantType::q4_k) q4k_group_gemv(w.data + (size_t)o * rb, x, out + o);
    else if (w.type == QuantType::q4_0) int8_group_gemv<true>(w.data + (size_t)o * rb, x, out + o);
    else int8_group_gemv<false>(w.data + (size_t)o * rb, x, out + o);
  }
  if (grouped < o1) dot_rows_avx2(w, grouped, o1, x, 1, out, w.O);  // the plain last O % 8 rows
}

}  // namespace mindllm::cpu::quant_detail
