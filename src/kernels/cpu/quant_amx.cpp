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
#include <vector>

#include "core/env.h"
#include "core/dtype.h"
#include "kernels/cpu/quant_impl.h"

#define MINDLLM_AMX __attribute__((target("amx-tile,amx-bf16,amx-int8,avx512f,avx512bw,f16c,fma")))

namespace mindllm::cpu {

bool amx_available(QuantType t) {
  static const bool tiles = [] {
    if (env_flag("MINDLLM_NO_AMX")) return false;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw"))
      return false;
    // Linux hands out the 8 KiB tile state only on request (once per process, all threads).
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
#if defined(__x86_64__)
  if (!tiles) return false;
  if (t == QuantType::bf16) return __builtin_cpu_supports("amx-bf16");
  if (t == QuantType::q8_0 || t == QuantType::q4_0) return __builtin_cpu_supports("amx-int8");
#endif
  return false;
}

bool amx_bf16_fits(int I) { return I % kAmxK == 0 && amx_available(QuantType::bf16); }

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

// Decode (one activation row): the A and C tiles one row high, so a k step loads 64 bytes of
// activations instead of 16 rows of them and multiplies one row. Each C row is its own sums
// (TDPBF16PS computes rows independently): the same bits as row 0 of the 16-row tiles.
struct alignas(64) TileConfigDecode : TileConfig {
  TileConfigDecode() { rows[0] = rows[1] = rows[4] = 1; }
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
    if constexpr (A == 1)                    // decode: the weights stream once; fetch 4 steps (8 KiB) ahead
      for (int l = 0; l < 32; l++) _mm_prefetch(reinterpret_cast<const char*>(b + 4096) + 64 * l, _MM_HINT_T0);
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

namespace {

// int8: tmm0..3 accumulate 16 x 16 int32 (one block of 32), tmm4, 5: 16 activation rows x 32 int8,
// tmm6, 7: 8 rows of 64 bytes (4 weight indices x 16 output rows).
struct alignas(64) TileConfigInt8 : TileConfig {
  TileConfigInt8() {
    colsb[4] = colsb[5] = 32;
    rows[6] = rows[7] = 8;
  }
};

// One supergroup (32 rows = 4 packed groups of 8) of a packed q8_0 / q4_0 matrix as TDPBSSD's B
// operand: per block b, 2 tiles x 8 rows x 64 bytes, byte (t, r, 4 n + j) = weight 4 r + j of row
// 16 t + n as int8 (q4_0: nibble - 8); and the 32 rows' scales dw[b][32].
MINDLLM_AMX void repack_supergroup(const QuantMatrix& w, int o, uint8_t* b, float* dw) {
  const bool q8 = w.type == QuantType::q8_0;
  const int nb = w.I / kQuantBlock, bytes = q8 ? 34 : 18;
  const size_t rb = w.row_bytes();
  for (int g = 0; g < 4; g++) {
    const uint8_t* p = w.data + (size_t)(o + 8 * g) * rb;
    for (int blk = 0; blk < nb; blk++, p += kPackRows * bytes) {
      uint8_t* tile = b + (size_t)blk * 1024;
      const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      _mm256_storeu_ps(dw + (size_t)blk * 32 + 8 * g, d);
      for (int c = 0; c < kPackRows; c++) {
        const int row = 8 * g + c;
        uint8_t* dst = tile + (row / 16) * 512 + (row % 16) * 4;
        alignas(32) uint8_t q[32];
        if (q8) {
          for (int k = 0; k < 4; k++) std::memcpy(q + 8 * k, p + quant_detail::packed_chunk(c, k), 8);
        } else {
          uint8_t nib[16];
          for (int k = 0; k < 2; k++) std::memcpy(nib + 8 * k, p + quant_detail::packed_chunk(c, k), 8);
          for (int j = 0; j < 16; j++)
            q[j] = static_cast<uint8_t>((nib[j] & 15) - 8), q[j + 16] = static_cast<uint8_t>((nib[j] >> 4) - 8);
        }
        for (int r = 0; r < 8; r++) std::memcpy(dst + 64 * r, q + 4 * r, 4);
      }
    }
  }
}

// out[m0 .. m0 + m) x 32 outputs for one supergroup: per block the exact int32 sums of A (1 or 2
// activation tiles) x 2 weight tiles, then acc = fma(float(s), d_w d_x, acc) per output in block
// order: dot_rows_avx2's arithmetic, so the same bits.
template <int A>
MINDLLM_AMX void int8_tiles(const uint8_t* b, const float* dw, const ActQ8& x, int I, int n0, int m, float* out,
                            int ldo) {
  alignas(64) float acc[32][32];
  alignas(64) int32_t c[4][256];
  for (int r = 0; r < 16 * A; r++)
    for (int h = 0; h < 2; h++) _mm512_store_ps(&acc[r][16 * h], _mm512_setzero_ps());
  const int8_t* q = x.qs + (size_t)n0 * I;
  for (int blk = 0; blk < x.nb; blk++, b += 1024) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_loadd(6, b, 64);
    _tile_loadd(7, b + 512, 64);
    _tile_loadd(4, q + 32 * blk, I);
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    if constexpr (A == 2) {
      _tile_zero(2);
      _tile_zero(3);
      _tile_loadd(5, q + (size_t)16 * I + 32 * blk, I);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
      _tile_stored(2, c[2], 64);
      _tile_stored(3, c[3], 64);
    }
    const __m512 d0 = _mm512_loadu_ps(dw + 32 * blk), d1 = _mm512_loadu_ps(dw + 32 * blk + 16);
    const int rows = std::min(m, 16 * A);
    const __mmask16 all = 0xffff;  // (maskz: see to_bf16_rows)
    for (int r = 0; r < rows; r++) {
      const __m512 dx = _mm512_set1_ps(x.d[(size_t)(n0 + r) * x.nb + blk]);
      const int32_t* cr = c[2 * (r / 16)] + 16 * (r % 16);
      const __m512 a0 = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(all, _mm512_load_si512(cr)), _mm512_mul_ps(d0, dx),
                                        _mm512_load_ps(&acc[r][0]));
      const __m512 a1 = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(all, _mm512_load_si512(cr + 256)),
                                        _mm512_mul_ps(d1, dx), _mm512_load_ps(&acc[r][16]));
      _mm512_store_ps(&acc[r][0], a0);
      _mm512_store_ps(&acc[r][16], a1);
    }
  }
  for (int r = 0; r < std::min(m, 16 * A); r++) std::memcpy(out + (size_t)r * ldo, acc[r], 32 * sizeof(float));
}

}  // namespace

MINDLLM_AMX void int8_rows_amx(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  static const TileConfigInt8 config;
  _tile_loadconfig(&config);
  const int nb = w.I / kQuantBlock;
  thread_local std::vector<uint8_t> wb;  // one supergroup as B tiles, and its scales
  thread_local std::vector<float> dw;
  if (wb.size() < (size_t)nb * 1024) wb.resize((size_t)nb * 1024);
  if (dw.size() < (size_t)nb * 32) dw.resize((size_t)nb * 32);
  // Each supergroup repacked once (it then stays in L2), all activation rows against it.
  for (int o = o0; o < o1; o += 32) {
    repack_supergroup(w, o, wb.data(), dw.data());
    for (int n = 0; n < N; n += 32) {
      const int m = std::min(32, N - n);
      if (m > 16) int8_tiles<2>(wb.data(), dw.data(), x, w.I, n, m, out + (size_t)n * ldo + o, ldo);
      else int8_tiles<1>(wb.data(), dw.data(), x, w.I, n, m, out + (size_t)n * ldo + o, ldo);
    }
  }
}

MINDLLM_AMX void bf16_rows_amx(const QuantMatrix& w, int o0, int o1, const uint16_t* x, int N, float* out, int ldo) {
  static const TileConfig config;
  static const TileConfigDecode decode;
  _tile_loadconfig(N == 1 ? &decode : &config);
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
    __m512i r =
        _mm512_maskz_srli_epi32(all, _mm512_add_epi32(u, _mm512_add_epi32(round, _mm512_and_si512(hi, one))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_maskz_cvtepi32_epi16(all, r));
  }
  for (; i < n; i++) out[i] = float_to_bf16(in[i]);
}

}  // namespace quant_detail
}  // namespace mindllm::cpu
