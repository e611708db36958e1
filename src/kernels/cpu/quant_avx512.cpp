// AVX-512 batch tiles of the f16 linear (kernels/cpu/quant.h): the AVX2 broadcast tiles with 16
// lanes, so twice the outputs per FMA. Each lane is one output's FMA chain over the input
// features in order, as in every bf16 / f16 kernel: the same bits as the AVX2 decode GEMV.
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "kernels/cpu/quant_impl.h"

#define MINDLLM_AVX512 __attribute__((target("avx512f,avx512bw,f16c,fma")))

namespace mindllm::cpu::quant_detail {

bool f16_avx512_available() {
#if defined(__x86_64__)
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  }();
  return yes;
#else
  return false;
#endif
}

namespace {

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

}  // namespace mindllm::cpu::quant_detail
