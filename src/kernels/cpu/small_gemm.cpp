#include "kernels/cpu/small_gemm.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MINDLLM_SMALL_GEMM_AVX512 1
#endif

namespace mindllm::cpu {

namespace {

#ifdef MINDLLM_SMALL_GEMM_AVX512
#define MINDLLM_AVX512 __attribute__((target("avx512f")))

// One tile: MR (1..6) rows × NV (1..4) vectors of 16 columns of C, the last vector masked by
// `last`. Accumulates over all k in registers, then C = alpha · acc (+ beta · C).
// a points at op(A)'s row 0, column 0 of the tile; TA: A stored transposed (element (r, kk) at
// a[kk * lda + r]).
template <bool TA, int MR, int NV>
MINDLLM_AVX512 void tile(int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc, __mmask16 last) {
  __m512 acc[MR][NV];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  for (int kk = 0; kk < k; kk++) {
    const float* brow = b + (size_t)kk * ldb;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; v++) bv[v] = _mm512_loadu_ps(brow + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(last, brow + 16 * (NV - 1));
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(TA ? a[(size_t)kk * lda + r] : a[(size_t)r * lda + kk]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    float* crow = c + (size_t)r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xFFFF;
      __m512 x = _mm512_mul_ps(acc[r][v], va);
      if (beta != 0.0f) x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, crow + 16 * v), vb, x);
      _mm512_mask_storeu_ps(crow + 16 * v, m, x);
    }
  }
}

using TileFn = void (*)(int, float, const float*, int, const float*, int, float, float*, int, __mmask16);
constexpr int kMR = 6, kNV = 4;

template <bool TA, int... I>
constexpr std::array<TileFn, sizeof...(I)> tile_table(std::integer_sequence<int, I...>) {
  return {&tile<TA, I / kNV + 1, I % kNV + 1>...};
}
constexpr auto kTiles = tile_table<false>(std::make_integer_sequence<int, kMR * kNV>());
constexpr auto kTilesT = tile_table<true>(std::make_integer_sequence<int, kMR * kNV>());

MINDLLM_AVX512 void small_gemm_avx512(bool trans_a, int m, int n, int k, float alpha, const float* A, int lda,
                                      const float* B, int ldb, float beta, float* C, int ldc) {
  const auto& tiles = trans_a ? kTilesT : kTiles;
  for (int j0 = 0; j0 < n; j0 += 16 * kNV) {
    const int nc = std::min(16 * kNV, n - j0), nv = (nc + 15) / 16, rem = nc % 16;
    const __mmask16 last = rem == 0 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);
    for (int i0 = 0; i0 < m; i0 += kMR) {
      const int mr = std::min(kMR, m - i0);
      const float* a = trans_a ? A + i0 : A + (size_t)i0 * lda;
      tiles[(mr - 1) * kNV + nv - 1](k, alpha, a, lda, B + j0, ldb, beta, C + (size_t)i0 * ldc + j0, ldc, last);
    }
  }
}

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#endif

}  // namespace

void small_gemm(bool trans_a, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc) {
  if (m <= 0 || n <= 0) return;
#ifdef MINDLLM_SMALL_GEMM_AVX512
  if (have_avx512()) return small_gemm_avx512(trans_a, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, m, n, k, alpha, A, lda, B, ldb, beta, C,
              ldc);
}

void transpose(float* dst, int ld_dst, const float* src, int ld_src, int rows, int cols) {
  // 16 source rows at a time: every destination row gets a contiguous run of 16 floats.
  constexpr int kRows = 16;
  for (int i0 = 0; i0 < rows; i0 += kRows) {
    const int i1 = std::min(rows, i0 + kRows);
    for (int j = 0; j < cols; j++) {
      float* d = dst + (size_t)j * ld_dst;
      for (int i = i0; i < i1; i++) d[i] = src[(size_t)i * ld_src + j];
    }
  }
}

void copy_rows(float* dst, int ld_dst, const float* src, int ld_src, int rows, int cols) {
  for (int i = 0; i < rows; i++) std::memcpy(dst + (size_t)i * ld_dst, src + (size_t)i * ld_src, sizeof(float) * cols);
}

}  // namespace mindllm::cpu
