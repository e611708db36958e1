// AVX2 + FMA + F16C kernels of the quantised linear (kernels/cpu/quant.h), compiled for those
// extensions only (function target attributes) and chosen at run time, so the binary stays
// portable. int8 dot products as ggml's AVX2 path computes them: |w| (vpsignb) times x with w's
// sign (vpsignb) by vpmaddubsw into int16 pairs, vpmaddwd against ones into int32, then fp32
// with the block's d_w d_x. Each weight block is loaded once per tile of activation rows.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "kernels/cpu/quant_impl.h"
#include "kernels/cpu/quant_x86.h"

namespace mindllm::cpu::quant_detail {

namespace {

MINDLLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

MINDLLM_AVX2 inline float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// 8 bytes broadcast to the four 64-bit lanes.
MINDLLM_AVX2 inline __m256i bcast8(const int8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_set1_epi64x(v);
}

// Signed int8 w times signed int8 x, adjacent pairs summed to int16 (|w|, |x| <= 127: a pair
// sum cannot saturate): vpsignb moves w's sign onto x, vpmaddubsw takes |w| as unsigned.
MINDLLM_AVX2 inline __m256i mul_i8(__m256i w, __m256i x) {
  return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}
MINDLLM_AVX2 inline __m256i pairs_i32(__m256i v16) { return _mm256_madd_epi16(v16, _mm256_set1_epi16(1)); }

// Activation rows per pass of a batch: about 256 KiB of them (a multiple of 4, at least 4).
inline int rows_per_pass(size_t row_bytes) { return std::max<int>(4, (int)((256u << 10) / row_bytes) / 4 * 4); }

// A plain row's block as 32 int8 (q4_0: nibbles unpacked, 8 subtracted; low nibbles are weights
// 0..15, high ones 16..31).
MINDLLM_AVX2 inline __m256i plain_block(QuantType t, const uint8_t* p) {
  if (t == QuantType::q8_0) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

// Plain rows [o0, o1) (an unpacked matrix, or a packed one's last O % 8 rows), one (row, weight
// row) at a time: per block the int32 sum, then the fp32 FMA (quant.h's arithmetic).
MINDLLM_AVX2 void plain_rows(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  const size_t rb = w.row_bytes();
  const int bytes = w.type == QuantType::q8_0 ? 34 : 18;
  for (int o = o0; o < o1; o++)
    for (int n = 0; n < N; n++) {
      const int8_t* xq = x.qs + (size_t)n * x.nb * 32;
      const float* xd = x.d + (size_t)n * x.nb;
      float sum = 0.0f;
      for (int b = 0; b < x.nb; b++) {
        const uint8_t* p = w.data + (size_t)o * rb + (size_t)b * bytes;
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * b));
        const __m256i v = pairs_i32(mul_i8(plain_block(w.type, p), xv));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        sum = std::fma(static_cast<float>(_mm_cvtsi128_si32(s4)), half(p) * xd[b], sum);
      }
      out[(size_t)n * ldo + o] = sum;
    }
}

// Decode reads each group once: prefetch ~1 KiB ahead of the block in use (the hardware
// prefetcher alone left the GEMV at 68-79% of the read rate, with this 80-95%; bench/decode/gemv.cpp).
MINDLLM_AVX2 inline void prefetch_ahead(const uint8_t* g, int bytes) {
  for (int off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(g) + 1024 + off, _MM_HINT_T0);
}

// Activation rows n0 .. n0 + R - 1 of x: each row's quants, block scales and block sums.
template <int R>
struct ActRows {
  const int8_t* q[R];
  const float* d[R];
  const int32_t* s[R];
  ActRows(const ActQ8& x, int n0) {
    for (int r = 0; r < R; r++) {
      q[r] = x.qs + (size_t)(n0 + r) * x.nb * 32, d[r] = x.d + (size_t)(n0 + r) * x.nb;
      s[r] = x.sum + (size_t)(n0 + r) * x.nb;
    }
  }
};

// out[n][0..8) for a packed group g (its 8 weight rows) and R activation rows n0..: per block the
// 8 rows' int32 sums in one vector, converted and FMA'd with the 8 scales d_w d_x.
template <int R>
MINDLLM_AVX2 inline void q8_group(const uint8_t* g, const ActQ8& x, int n0, float* out, int ldo) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  const ActRows<R> a(x, n0);
  for (int b = 0; b < x.nb; b++, g += kPackRows * 34) {
    if constexpr (R == 1) prefetch_ahead(g, kPackRows * 32);
    __m256i ia[R], ib[R];
    for (int r = 0; r < R; r++) ia[r] = ib[r] = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
      const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 64 * k));
      const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 48 + 64 * k));
      for (int r = 0; r < R; r++) {
        const __m256i xk = bcast8(a.q[r] + 32 * b + 8 * k);
        ia[r] = _mm256_add_epi32(ia[r], pairs_i32(mul_i8(wa, xk)));
        ib[r] = _mm256_add_epi32(ib[r], pairs_i32(mul_i8(wb, xk)));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    for (int r = 0; r < R; r++)
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(rows8(ia[r], ib[r])), _mm256_mul_ps(dw, _mm256_set1_ps(a.d[r][b])),
                               acc[r]);
  }
  for (int r = 0; r < R; r++) _mm256_storeu_ps(out + (size_t)(n0 + r) * ldo, acc[r]);
}

// q4_0: nibbles as unsigned 0..15 (vpmaddubsw's unsigned side; 4 pair sums <= 4 x 2 x 15 x 127
// fit int16), the -8 offset applied once per block as 8 x the activation block's sum.
template <int R>
MINDLLM_AVX2 inline void q4_group(const uint8_t* g, const ActQ8& x, int n0, float* out, int ldo) {
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  const ActRows<R> a(x, n0);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int b = 0; b < x.nb; b++, g += kPackRows * 18) {
    if constexpr (R == 1) prefetch_ahead(g, kPackRows * 16);
    __m256i sa[R], sb[R];
    for (int r = 0; r < R; r++) sa[r] = sb[r] = _mm256_setzero_si256();
    for (int k = 0; k < 2; k++) {
      const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 64 * k));
      const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 48 + 64 * k));
      const __m256i la = _mm256_and_si256(va, m4), ha = _mm256_and_si256(_mm256_srli_epi16(va, 4), m4);
      const __m256i lb = _mm256_and_si256(vb, m4), hb = _mm256_and_si256(_mm256_srli_epi16(vb, 4), m4);
      for (int r = 0; r < R; r++) {
        const __m256i xl = bcast8(a.q[r] + 32 * b + 8 * k), xh = bcast8(a.q[r] + 32 * b + 16 + 8 * k);
        sa[r] = _mm256_add_epi16(sa[r], _mm256_add_epi16(_mm256_maddubs_epi16(la, xl), _mm256_maddubs_epi16(ha, xh)));
        sb[r] = _mm256_add_epi16(sb[r], _mm256_add_epi16(_mm256_maddubs_epi16(lb, xl), _mm256_maddubs_epi16(hb, xh)));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    for (int r = 0; r < R; r++) {
      const __m256i s = _mm256_sub_epi32(rows8(pairs_i32(sa[r]), pairs_i32(sb[r])), _mm256_set1_epi32(8 * a.s[r][b]));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(a.d[r][b])), acc[r]);
    }
  }
  for (int r = 0; r < R; r++) _mm256_storeu_ps(out + (size_t)(n0 + r) * ldo, acc[r]);
}

// q4_k: per super-block the 8 rows' d and dmin (fp16) and their scale words unpacked into 6-bit
// scales (sub-blocks 0..3 in sc_lo's bytes, 4..7 in sc_hi's) and mins, 8 rows per vector; per pair
// of sub-blocks the nibbles as q4_0's (low: sub-block 2p, high: 2p + 1; 4 chunks' int16 sums <= 4 x
// 2 x 15 x 127), then per sub-block j the 8 rows' sc_j s_b and m_j S_b (exact int32) and two FMAs
// (quant.h's arithmetic). At most 2 activation rows per call: 4 int16 sums per row already.
template <int R>
MINDLLM_AVX2 inline void q4k_group(const uint8_t* g, const ActQ8& x, int n0, float* out, int ldo) {
  static_assert(R <= 2, "register budget");
  __m256 acc[R];
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  const ActRows<R> a(x, n0);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int sb = 0; sb < x.nb / 8; sb++, g += kPackRows * 144) {
    if constexpr (R == 1) prefetch_ahead(g, kPackRows * 144);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
    const Q4kScales scales(g);
    for (int p = 0; p < 4; p++) {
      __m256i la[R], ha[R], lb[R], hb[R];
      for (int r = 0; r < R; r++) la[r] = ha[r] = lb[r] = hb[r] = _mm256_setzero_si256();
      const uint8_t* q = g + 128 + 256 * p;
      for (int k = 0; k < 4; k++) {
        const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * k));
        const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * k + 32));
        const __m256i wla = _mm256_and_si256(va, m4), wha = _mm256_and_si256(_mm256_srli_epi16(va, 4), m4);
        const __m256i wlb = _mm256_and_si256(vb, m4), whb = _mm256_and_si256(_mm256_srli_epi16(vb, 4), m4);
        for (int r = 0; r < R; r++) {
          const int8_t* xb = a.q[r] + 32 * (8 * sb + 2 * p) + 8 * k;
          const __m256i xl = bcast8(xb), xh = bcast8(xb + 32);
          la[r] = _mm256_add_epi16(la[r], _mm256_maddubs_epi16(wla, xl));
          ha[r] = _mm256_add_epi16(ha[r], _mm256_maddubs_epi16(wha, xh));
          lb[r] = _mm256_add_epi16(lb[r], _mm256_maddubs_epi16(wlb, xl));
          hb[r] = _mm256_add_epi16(hb[r], _mm256_maddubs_epi16(whb, xh));
        }
      }
      for (int h = 0; h < 2; h++) {
        const int j = 2 * p + h, b = 8 * sb + j;
        const __m256i scj = scales.scale(j), mnj = scales.min(j);
        for (int r = 0; r < R; r++) {
          const __m256i s = rows8(pairs_i32(h ? ha[r] : la[r]), pairs_i32(h ? hb[r] : lb[r]));
          acc[r] = q4k_sub_block(acc[r], s, scj, mnj, a.s[r][b], dw, dm, a.d[r][b]);
        }
      }
    }
  }
  for (int r = 0; r < R; r++) _mm256_storeu_ps(out + (size_t)(n0 + r) * ldo, acc[r]);
}

template <int R>
MINDLLM_AVX2 inline void group(QuantType t, const uint8_t* g, const ActQ8& x, int n0, float* out, int ldo) {
  if (t == QuantType::q8_0) {
    q8_group<R>(g, x, n0, out, ldo);
  } else if (t == QuantType::q4_0) {
    q4_group<R>(g, x, n0, out, ldo);
  } else {
    for (int r = 0; r + 2 <= R; r += 2) q4k_group<2>(g, x, n0 + r, out, ldo);
    if constexpr (R % 2) q4k_group<1>(g, x, n0 + R - 1, out, ldo);
  }
}

MINDLLM_AVX2 inline __m256 load_bf16(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

MINDLLM_AVX2 inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 8 weights of a bf16 (BF) or f16 row, widened to fp32.
template <bool BF>
MINDLLM_AVX2 inline __m256 load_float16(const uint16_t* p) {
  if constexpr (BF) return load_bf16(p);
  else return load_f16(p);
}

}  // namespace

// Packed groups in [o0, o1): decode (N = 1) one group after the other, the matrix read as one
// stream; batches in passes of about 256 KiB of activation rows (they stay in L2 while the run's
// groups meet them), 4 rows per tile (each weight chunk loaded once for the 4). Then any plain rows.
MINDLLM_AVX2 void dot_rows_avx2(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  const size_t rb = w.row_bytes();
  const int grouped = w.packed ? std::min(o1, w.O / kPackRows * kPackRows) : o0;
  const QuantType t = w.type;
  if (N == 1) {
    for (int o = o0; o < grouped; o += kPackRows) group<1>(t, w.data + (size_t)o * rb, x, 0, out + o, ldo);
  } else {
    const int pass = rows_per_pass((size_t)x.nb * (32 + 2 * sizeof(float)));
    for (int n0 = 0; n0 < N; n0 += pass) {
      const int n1 = std::min(N, n0 + pass);
      for (int o = o0; o < grouped; o += kPackRows) {
        const uint8_t* g = w.data + (size_t)o * rb;
        int n = n0;
        for (; n + 4 <= n1; n += 4) group<4>(t, g, x, n, out + o, ldo);
        for (; n < n1; n++) group<1>(t, g, x, n, out + o, ldo);
      }
    }
  }
  if (t == QuantType::q4_k) q4k_rows_scalar(w, std::max(o0, grouped), o1, x, N, out, ldo);  // same bits
  else plain_rows(w, std::max(o0, grouped), o1, x, N, out, ldo);
}

namespace {

// One weight index of 16 rows of a packed bf16 (BF) / f16 group (32 bytes, quant.h's slot order)
// widened to fp32: rows 0..7 in lo, 8..15 in hi.
template <bool BF>
MINDLLM_AVX2 inline void widen16(const uint16_t* p, __m256& lo, __m256& hi) {
  if constexpr (BF) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(_mm256_setzero_si256(), v));
    hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(_mm256_setzero_si256(), v));
  } else {
    lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  }
}

// Decode: out[0..32) of one packed group g [I][32] against one activation row x[I]: per weight
// index one broadcast and four FMAs (four independent chains, one stream of 64 bytes per index).
template <bool BF>
MINDLLM_AVX2 void float16_group_gemv(const uint16_t* g, int I, const float* x, float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int i = 0; i < I; i++, g += kPack16Rows) {
    prefetch_ahead(reinterpret_cast<const uint8_t*>(g), 64);
    const __m256 xb = _mm256_broadcast_ss(x + i);
    __m256 w0, w1, w2, w3;
    widen16<BF>(g, w0, w1);
    widen16<BF>(g + 16, w2, w3);
    a0 = _mm256_fmadd_ps(w0, xb, a0), a1 = _mm256_fmadd_ps(w1, xb, a1);
    a2 = _mm256_fmadd_ps(w2, xb, a2), a3 = _mm256_fmadd_ps(w3, xb, a3);
  }
  _mm256_storeu_ps(out, a0), _mm256_storeu_ps(out + 8, a1), _mm256_storeu_ps(out + 16, a2);
  _mm256_storeu_ps(out + 24, a3);
}

// Prefill: out[r][0..16) for R activation rows x[r * I ..] and 16 rows of a packed group (h = the
// group's first or second half, p = g + 16 h): per weight index 2 widened vectors, R broadcasts,
// 2 R FMAs (R = 6: 12 accumulators).
template <bool BF, int R>
MINDLLM_AVX2 void float16_half_tile(const uint16_t* p, int I, const float* x, float* out, int ldo) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int i = 0; i < I; i++, p += kPack16Rows) {
    __m256 lo, hi;
    widen16<BF>(p, lo, hi);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 xb = _mm256_broadcast_ss(x + (size_t)r * I + i);
      acc[r][0] = _mm256_fmadd_ps(lo, xb, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(hi, xb, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    _mm256_storeu_ps(out + (size_t)r * ldo, acc[r][0]);
    _mm256_storeu_ps(out + (size_t)r * ldo + 8, acc[r][1]);
  }
}

template <bool BF>
MINDLLM_AVX2 void float16_half_rows(const uint16_t* p, int I, const float* x, int R, float* out, int ldo) {
  switch (R) {
    case 1: return float16_half_tile<BF, 1>(p, I, x, out, ldo);
    case 2: return float16_half_tile<BF, 2>(p, I, x, out, ldo);
    case 3: return float16_half_tile<BF, 3>(p, I, x, out, ldo);
    case 4: return float16_half_tile<BF, 4>(p, I, x, out, ldo);
    case 5: return float16_half_tile<BF, 5>(p, I, x, out, ldo);
    default: return float16_half_tile<BF, 6>(p, I, x, out, ldo);
  }
}

template <bool BF>
MINDLLM_AVX2 inline float float16_scalar(uint16_t h) {
  if constexpr (BF) return bf16_to_float(h);
  else return _cvtsh_ss(h);
}

// Packed groups in [o0, o1) as dot_rows_avx2 walks them (decode: one group after the other;
// batches: passes of ~256 KiB of activation rows, tiles of 6 rows x 16 outputs), then the plain
// rows one FMA at a time in the same order (quant.h: every kernel gives the same bits).
template <bool BF>
MINDLLM_AVX2 void float16_rows(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo) {
  const int I = w.I;
  const uint16_t* data = reinterpret_cast<const uint16_t*>(w.data);
  const int grouped = w.packed ? std::min(o1, w.O / kPack16Rows * kPack16Rows) : o0;
  if (N == 1) {
    for (int o = o0; o < grouped; o += kPack16Rows) float16_group_gemv<BF>(data + (size_t)o * I, I, in, out + o);
  } else if (!BF && f16_avx512_available()) {
    if (o0 < grouped) f16_groups_avx512(w, o0, grouped, in, N, out, ldo);
  } else {
    const int pass = rows_per_pass((size_t)I * sizeof(float));
    for (int n0 = 0; n0 < N; n0 += pass) {
      const int n1 = std::min(N, n0 + pass);
      for (int o = o0; o < grouped; o += kPack16Rows)
        for (int h = 0; h < 2; h++)
          for (int n = n0; n < n1; n += 6)
            float16_half_rows<BF>(data + (size_t)o * I + 16 * h, I, in + (size_t)n * I, std::min(6, n1 - n),
                                  out + (size_t)n * ldo + o + 16 * h, ldo);
    }
  }
  for (int o = std::max(o0, grouped); o < o1; o++)
    for (int n = 0; n < N; n++) {
      const uint16_t* row = data + (size_t)o * I;
      const float* x = in + (size_t)n * I;
      float sum = 0.0f;
      for (int i = 0; i < I; i++) sum = std::fma(float16_scalar<BF>(row[i]), x[i], sum);
      out[(size_t)n * ldo + o] = sum;
    }
}

}  // namespace

MINDLLM_AVX2 void float16_rows_avx2(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo) {
  if (w.type == QuantType::bf16) float16_rows<true>(w, o0, o1, in, N, out, ldo);
  else float16_rows<false>(w, o0, o1, in, N, out, ldo);
}

MINDLLM_AVX2 void dequantize_row_avx2(QuantType t, const uint8_t* in, int64_t n, float* out) {
  if (is_float16(t)) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(in);
    const bool bf = t == QuantType::bf16;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bf ? load_float16<true>(h + i) : load_float16<false>(h + i));
    for (; i < n; i++) out[i] = bf ? float16_scalar<true>(h[i]) : float16_scalar<false>(h[i]);
    return;
  }
  const int bytes = t == QuantType::q8_0 ? 34 : 18;
  for (int64_t b = 0; b < n / 32; b++) {
    const uint8_t* p = in + b * bytes;
    const __m256i q = plain_block(t, p);
    const __m256 d = _mm256_set1_ps(half(p));
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    float* o = out + 32 * b;
    _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
  }
}

MINDLLM_AVX2 void quantize_act_avx2(const float* x, int nb, int8_t* qs, float* d, int32_t* sum) {
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
    const __m256i s8 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p), _mm256_set1_epi16(1));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    sum[b] = _mm_cvtsi128_si32(_mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1)));
  }
}

}  // namespace mindllm::cpu::quant_detail
