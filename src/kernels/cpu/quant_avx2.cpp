// AVX2 + FMA + F16C kernels of the quantised linear (kernels/cpu/quant.h), compiled for those
// extensions only (function target attributes) and chosen at run time, so the binary stays
// portable. int8 dot products as ggml's AVX2 path computes them: |w| (vpsignb) times x with w's
// sign (vpsignb) by vpmaddubsw into int16 pairs, vpmaddwd against ones into int32, then fp32
// with the block's d_w d_x. Each weight block is loaded once per tile of activation rows.
#include <immintrin.h>

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

// out[n][o] for one weight row o and up to 4 activation rows n0..n0+R at once.
template <class B, int R>
MINDLLM_AVX2 inline void dot_tile(const uint8_t* row, const ActQ8& x, int n0, float* out, int ldo) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  const int8_t* xq[R];
  const float* xd[R];
  for (int r = 0; r < R; r++) xq[r] = x.qs + (size_t)(n0 + r) * x.nb * 32, xd[r] = x.d + (size_t)(n0 + r) * x.nb;
  for (int b = 0; b < x.nb; b++) {
    const uint8_t* p = row + (size_t)b * B::bytes;
    const __m256i wq = B::load(p);
    const float dw = half(p);
    for (int r = 0; r < R; r++) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[r] + 32 * b));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[r][b]), mul_sum_i8(wq, xv), acc[r]);
    }
  }
  for (int r = 0; r < R; r++) out[(size_t)(n0 + r) * ldo] = hsum(acc[r]);
}

// Decode (one activation row): two weight rows at once, two accumulators each, for more loads
// in flight.
template <class B>
MINDLLM_AVX2 inline void dot_two_rows(const uint8_t* r0, const uint8_t* r1, const ActQ8& x, float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
  int b = 0;
  for (; b + 1 < x.nb; b += 2) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b + 32));
    const uint8_t *p0 = r0 + (size_t)b * B::bytes, *p1 = r1 + (size_t)b * B::bytes;
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0) * x.d[b]), mul_sum_i8(B::load(p0), x0), a0);
    c0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1) * x.d[b]), mul_sum_i8(B::load(p1), x0), c0);
    a1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0 + B::bytes) * x.d[b + 1]), mul_sum_i8(B::load(p0 + B::bytes), x1), a1);
    c1 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1 + B::bytes) * x.d[b + 1]), mul_sum_i8(B::load(p1 + B::bytes), x1), c1);
  }
  if (b < x.nb) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    const uint8_t *p0 = r0 + (size_t)b * B::bytes, *p1 = r1 + (size_t)b * B::bytes;
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p0) * x.d[b]), mul_sum_i8(B::load(p0), x0), a0);
    c0 = _mm256_fmadd_ps(_mm256_set1_ps(half(p1) * x.d[b]), mul_sum_i8(B::load(p1), x0), c0);
  }
  out[0] = hsum(_mm256_add_ps(a0, a1));
  out[1] = hsum(_mm256_add_ps(c0, c1));
}

template <class B>
MINDLLM_AVX2 void dot_rows(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  const size_t rb = w.row_bytes();
  int o = o0;
  if (N == 1) {
    for (; o + 1 < o1; o += 2) dot_two_rows<B>(w.data + (size_t)o * rb, w.data + (size_t)(o + 1) * rb, x, out + o);
    for (; o < o1; o++) dot_tile<B, 1>(w.data + (size_t)o * rb, x, 0, out + o, ldo);
    return;
  }
  for (; o < o1; o++) {
    const uint8_t* row = w.data + (size_t)o * rb;
    int n = 0;
    for (; n + 4 <= N; n += 4) dot_tile<B, 4>(row, x, n, out + o, ldo);
    for (; n < N; n++) dot_tile<B, 1>(row, x, n, out + o, ldo);
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

MINDLLM_AVX2 void bf16_rows_avx2(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo) {
  const int I = w.I, I8 = I / 8 * 8;
  for (int o = o0; o < o1; o++) {
    const uint16_t* row = reinterpret_cast<const uint16_t*>(w.data) + (size_t)o * I;
    for (int n = 0; n < N; n++) {
      const float* x = in + (size_t)n * I;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      int i = 0;
      for (; i + 16 <= I8; i += 16) {
        a0 = _mm256_fmadd_ps(load_bf16(row + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16(row + i + 8), _mm256_loadu_ps(x + i + 8), a1);
      }
      for (; i < I8; i += 8) a0 = _mm256_fmadd_ps(load_bf16(row + i), _mm256_loadu_ps(x + i), a0);
      float sum = hsum(_mm256_add_ps(a0, a1));
      for (; i < I; i++) {
        uint32_t u = static_cast<uint32_t>(row[i]) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        sum += f * x[i];
      }
      out[(size_t)n * ldo + o] = sum;
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
