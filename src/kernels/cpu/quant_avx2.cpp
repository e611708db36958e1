// AVX2 + FMA + F16C kernels of the quantised linear (kernels/cpu/quant.h), compiled for those
// extensions only (function target attributes) and chosen at run time, so the binary stays
// portable. int8 dot products as ggml's AVX2 path computes them: |w| (vpsignb) times x with w's
// sign (vpsignb) by vpmaddubsw into int16 pairs, vpmaddwd against ones into int32, then fp32
// with the block's d_w d_x. Each weight block is loaded once per tile of activation rows.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/quant_impl.h"

#define MINDLLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace mindllm::cpu::quant_detail {

namespace {

MINDLLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sum over 32 int8 pairs w*x in 8 fp32 lanes (w in [-127, 127]: the int16 pair sums cannot saturate).
MINDLLM_AVX2 inline __m256 mul_sum_i8(__m256i w, __m256i x) {
  const __m256i ax = _mm256_sign_epi8(w, w), sx = _mm256_sign_epi8(x, w);
  const __m256i dot16 = _mm256_maddubs_epi16(ax, sx);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(dot16, _mm256_set1_epi16(1)));
}

MINDLLM_AVX2 inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Activation rows per pass of a batch: about 256 KiB of them (a multiple of 4, at least 4).
inline int rows_per_pass(size_t row_bytes) { return std::max<int>(4, (int)((256u << 10) / row_bytes) / 4 * 4); }

// One weight block as 32 int8 and its scale.
struct Q8Block {
  static constexpr int bytes = 34;
  MINDLLM_AVX2 static __m256i load(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  }
};
struct Q4Block {
  static constexpr int bytes = 18;
  // 16 bytes of nibbles -> 32 int8 in [-8, 7]: low nibbles are weights 0..15, high ones 16..31.
  MINDLLM_AVX2 static __m256i load(const uint8_t* p) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
  }
};

// out[n][o] for C weight rows o (rb bytes apart) and R activation rows n0.. at once: each weight
// block is loaded once for the R rows, each activation block once for the C weight rows. One
// accumulator per (row, weight row), one FMA per block in order, then hsum: the same sums for any
// R and C, so a row's result does not depend on how many rows the call has.
template <class B, int R, int C>
MINDLLM_AVX2 inline void dot_tile(const uint8_t* row, size_t rb, const ActQ8& x, int n0, float* out, int ldo) {
  __m256 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
  const int8_t* xq[R];
  const float* xd[R];
  for (int r = 0; r < R; r++) xq[r] = x.qs + (size_t)(n0 + r) * x.nb * 32, xd[r] = x.d + (size_t)(n0 + r) * x.nb;
  for (int b = 0; b < x.nb; b++) {
    __m256i wq[C];
    float dw[C];
    for (int c = 0; c < C; c++) {
      const uint8_t* p = row + c * rb + (size_t)b * B::bytes;
      wq[c] = B::load(p), dw[c] = half(p);
    }
    for (int r = 0; r < R; r++) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[r] + 32 * b));
      for (int c = 0; c < C; c++)
        acc[r][c] = _mm256_fmadd_ps(_mm256_set1_ps(dw[c] * xd[r][b]), mul_sum_i8(wq[c], xv), acc[r][c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) out[(size_t)(n0 + r) * ldo + c] = hsum(acc[r][c]);
}

// Decode (one activation row): one weight row after the other, so the matrix is read as one
// sequential stream (reading 2 or 4 rows at once, each its own stream, ran at 35-45% of the read
// bandwidth against 65-78% on a 2-core Zen3: bench/decode/gemv.cpp). Batches: tiles of 4 rows x 2
// weight rows.
template <class B>
MINDLLM_AVX2 void dot_rows(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  const size_t rb = w.row_bytes();
  int o = o0;
  if (N == 1) {
    for (; o < o1; o++) dot_tile<B, 1, 1>(w.data + (size_t)o * rb, rb, x, 0, out + o, ldo);
    return;
  }
  // Passes over about 256 KiB of activation rows, so they stay in L2 while the run's weight rows
  // meet them.
  const int pass = rows_per_pass((size_t)x.nb * (32 + sizeof(float)));
  for (int n0 = 0; n0 < N; n0 += pass) {
    const int n1 = std::min(N, n0 + pass);
    for (o = o0; o < o1; o += 2) {
      const uint8_t* row = w.data + (size_t)o * rb;
      const bool two = o + 2 <= o1;
      int n = n0;
      for (; n + 4 <= n1; n += 4)
        two ? dot_tile<B, 4, 2>(row, rb, x, n, out + o, ldo) : dot_tile<B, 4, 1>(row, rb, x, n, out + o, ldo);
      for (; n < n1; n++)
        two ? dot_tile<B, 1, 2>(row, rb, x, n, out + o, ldo) : dot_tile<B, 1, 1>(row, rb, x, n, out + o, ldo);
      if (!two) break;
    }
  }
}

MINDLLM_AVX2 inline __m256 load_bf16(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

}  // namespace

MINDLLM_AVX2 void dot_rows_avx2(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  if (w.type == QuantType::q8_0) dot_rows<Q8Block>(w, o0, o1, x, N, out, ldo);
  else dot_rows<Q4Block>(w, o0, o1, x, N, out, ldo);
}

namespace {

// bf16 weights: out[n][o] for C weight rows and R activation rows, one 8-lane accumulator per
// pair over i, hsum, then the I % 8 tail by scalar FMAs: the same sums for any R and C.
template <int R, int C>
MINDLLM_AVX2 void bf16_tile(const uint16_t* row, int I, const float* in, int n0, float* out, int ldo) {
  __m256 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
  const float* x = in + (size_t)n0 * I;
  const int I8 = I / 8 * 8;
  for (int i = 0; i < I8; i += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; c++) wv[c] = load_bf16(row + (size_t)c * I + i);
    for (int r = 0; r < R; r++) {
      const __m256 xv = _mm256_loadu_ps(x + (size_t)r * I + i);
      for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(wv[c], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      float sum = hsum(acc[r][c]);
      for (int i = I8; i < I; i++) {
        const uint32_t u = static_cast<uint32_t>(row[(size_t)c * I + i]) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        sum = std::fma(f, x[(size_t)r * I + i], sum);
      }
      out[(size_t)(n0 + r) * ldo + c] = sum;
    }
}

}  // namespace

MINDLLM_AVX2 void bf16_rows_avx2(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo) {
  const int I = w.I;
  const uint16_t* data = reinterpret_cast<const uint16_t*>(w.data);
  int o = o0;
  if (N == 1) {  // one row after the other: one sequential stream (see dot_rows)
    for (; o < o1; o++) bf16_tile<1, 1>(data + (size_t)o * I, I, in, 0, out + o, ldo);
    return;
  }
  const int pass = rows_per_pass((size_t)I * sizeof(float));
  for (int n0 = 0; n0 < N; n0 += pass) {
    const int n1 = std::min(N, n0 + pass);
    for (o = o0; o < o1; o += 2) {
      const uint16_t* row = data + (size_t)o * I;
      const bool two = o + 2 <= o1;
      int n = n0;
      for (; n + 4 <= n1; n += 4)
        two ? bf16_tile<4, 2>(row, I, in, n, out + o, ldo) : bf16_tile<4, 1>(row, I, in, n, out + o, ldo);
      for (; n < n1; n++)
        two ? bf16_tile<1, 2>(row, I, in, n, out + o, ldo) : bf16_tile<1, 1>(row, I, in, n, out + o, ldo);
      if (!two) break;
    }
  }
}

MINDLLM_AVX2 void dequantize_row_avx2(QuantType t, const uint8_t* in, int64_t n, float* out) {
  if (t == QuantType::bf16) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16(reinterpret_cast<const uint16_t*>(in) + i));
    for (; i < n; i++) {
      uint32_t u = static_cast<uint32_t>(in[2 * i] | in[2 * i + 1] << 8) << 16;
      std::memcpy(out + i, &u, 4);
    }
    return;
  }
  const bool q8 = t == QuantType::q8_0;
  const int bytes = q8 ? Q8Block::bytes : Q4Block::bytes;
  for (int64_t b = 0; b < n / 32; b++) {
    const uint8_t* p = in + b * bytes;
    const __m256i q = q8 ? Q8Block::load(p) : Q4Block::load(p);
    const __m256 d = _mm256_set1_ps(half(p));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    float* o = out + 32 * b;
    _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
  }
}

MINDLLM_AVX2 void quantize_act_avx2(const float* x, int nb, int8_t* qs, float* d) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < nb; b++) {
    const float* v = x + 32 * b;
    __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
           v3 = _mm256_loadu_ps(v + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    // Round half to even, to int32, then pack to int8 (packs interleave lanes: permute back).
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + 32 * b), p);
  }
}

}  // namespace mindllm::cpu::quant_detail
