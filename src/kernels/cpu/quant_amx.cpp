// AMX kernels of the quantised linear (kernels/cpu/quant.h): bf16 weights against bf16-rounded
// activations on the tile unit (TDPBF16PS: 16 x 32 activations times 32 x 16 weights into 16 x 16
// fp32 accumulators per instruction). Compiled for AMX / AVX-512 by function attributes and
// used only where the CPU has them and Linux grants the process the tile state.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/dtype.h"
#include "kernels/cpu/quant_impl.h"

#define MINDLLM_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

namespace mindllm::cpu {

bool amx_available() {
  static const bool yes = [] {
    const char* e = std::getenv("MINDLLM_NO_AMX");
    if (e && *e && std::strcmp(e, "0") != 0) return false;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16") ||
        !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw"))
      return false;
    // Linux hands out the 8 KiB tile state only on request (once per process, all threads).
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return yes;
}

bool amx_bf16_fits(int I) { return I % kAmxK == 0 && amx_available(); }

namespace quant_detail {

namespace {

// Tile configuration (palette 1): every tile 16 rows of 64 bytes. tmm0..3 accumulate 16 x 16 fp32
// outputs (activation tile a, weight tile h), tmm4, 5 hold 16 activation rows x 32 bf16, tmm6, 7 a
// weight tile: 16 pairs of weights x 16 output rows (the VNNI layout of quant.h).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; t++) colsb[t] = 64, rows[t] = 16;
  }
};

// C tile (16 rows x 16 fp32) -> out rows [0, m) of 16 columns.
MINDLLM_AMX inline void store_rows(float* tmp, int m, float* out, int ldo) {
  for (int r = 0; r < m; r++) std::memcpy(out + (size_t)r * ldo, tmp + 16 * r, 64);
}

// out[m0 .. m0 + 32) x [32 outputs of group g] over all of I (2 x 2 tiles), or 16 rows (A = 1).
template <int A>
MINDLLM_AMX void group_tiles(const uint16_t* g, int I, const uint16_t* x, int m, float* out, int ldo) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const size_t ldx = (size_t)I * 2;  // bytes between activation rows
  for (int k = 0; k < I; k += kAmxK) {
    const uint16_t* b = g + (size_t)k * 32;  // 16 weight pairs x 32 rows for this k block
    _tile_loadd(6, b, 128);
    _tile_loadd(7, b + 32, 128);
    _tile_loadd(4, x + k, ldx);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (A == 2) {
      _tile_loadd(5, x + 16 * (size_t)I + k, ldx);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  alignas(64) float tmp[256];
  const int m0 = std::min(m, 16);
  _tile_stored(0, tmp, 64);
  store_rows(tmp, m0, out, ldo);
  _tile_stored(1, tmp, 64);
  store_rows(tmp, m0, out + 16, ldo);
  if constexpr (A == 2) {
    _tile_stored(2, tmp, 64);
    store_rows(tmp, m - 16, out + (size_t)16 * ldo, ldo);
    _tile_stored(3, tmp, 64);
    store_rows(tmp, m - 16, out + (size_t)16 * ldo + 16, ldo);
  }
}

}  // namespace

MINDLLM_AMX void amx_begin() {
  static const TileConfig config;
  _tile_loadconfig(&config);
}

MINDLLM_AMX void bf16_rows_amx(const QuantMatrix& w, int o0, int o1, const uint16_t* x, int N, float* out, int ldo) {
  const int I = w.I;
  const uint16_t* data = reinterpret_cast<const uint16_t*>(w.data);
  const int grouped = std::min(o1, w.O / kPack16Rows * kPack16Rows);
  // Passes of activation rows (multiples of 32, ~1 MiB of them) so a pass stays in L2 while the
  // run's weight groups stream past it once each.
  const int pass = std::max(32, (int)((1u << 20) / ((size_t)I * 2)) / 32 * 32);
  for (int n0 = 0; n0 < N; n0 += pass) {
    const int n1 = std::min(N, n0 + pass);
    for (int o = o0; o < grouped; o += kPack16Rows)
      for (int n = n0; n < n1; n += 32) {
        const uint16_t* xn = x + (size_t)n * I;
        float* on = out + (size_t)n * ldo + o;
        if (n1 - n > 16) group_tiles<2>(data + (size_t)o * I, I, xn, std::min(32, n1 - n), on, ldo);
        else group_tiles<1>(data + (size_t)o * I, I, xn, n1 - n, on, ldo);
      }
  }
  // The last O % 32 rows (plain bf16), one fp32 FMA chain per output over the same activations.
  for (int o = std::max(o0, grouped); o < o1; o++)
    for (int n = 0; n < N; n++) {
      const uint16_t* row = data + (size_t)o * I;
      const uint16_t* xn = x + (size_t)n * I;
      float sum = 0.0f;
      for (int i = 0; i < I; i++) sum = std::fma(bf16_to_float(row[i]), bf16_to_float(xn[i]), sum);
      out[(size_t)n * ldo + o] = sum;
    }
}

// float_to_bf16 (core/dtype.h: nearest even, NaN kept) of 16 floats at a time. (The maskz forms:
// GCC 12 warns of the unmasked ones' undefined pass-through operand.)
MINDLLM_AMX void to_bf16_rows(const float* in, size_t n, uint16_t* out) {
  size_t i = 0;
  const __m512i one = _mm512_set1_epi32(1), round = _mm512_set1_epi32(0x7fff), abs = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x40);
  const __mmask16 all = 0xffff;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(in + i), hi = _mm512_maskz_srli_epi32(all, u, 16);
    __m512i r = _mm512_maskz_srli_epi32(all, _mm512_add_epi32(u, _mm512_add_epi32(round, _mm512_and_si512(hi, one))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_maskz_cvtepi32_epi16(all, r));
  }
  for (; i < n; i++) out[i] = float_to_bf16(in[i]);
}

}  // namespace quant_detail
}  // namespace mindllm::cpu
