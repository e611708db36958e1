// q4_k, ggml's 4-bit k-quant (block_q4_K), byte for byte: the quantiser (quantize_row_q4_K_ref's
// arithmetic, in the same fp32 operation order so the bytes are equal), the dequantiser, the packed
// layout and the portable kernel. Layout and kernel arithmetic: kernels/cpu/quant.h.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/quant_impl.h"

namespace mindllm::cpu::quant_detail {

namespace {

constexpr int kSub = kSuperBlock / kQuantBlock;  // 8 sub-blocks of 32
constexpr int kBlockBytes = 144;                 // 2 + 2 + 12 + 128

float get_half(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8)); }
void put_half(uint8_t* p, float v) {
  const uint16_t h = float_to_half(v);
  p[0] = h & 0xff, p[1] = h >> 8;
}

// Round to nearest, ties to even, by adding 1.5 * 2^23 (the fp32 addition rounds; ggml's
// nearest_int, for |v| < 2^22; outside that range the same bits as ggml's, not a rounding).
int nearest(float v) {
  const float f = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &f, 4);
  return (i & 0x007fffff) - 0x00400000;
}
uint8_t clamp15(int l) { return static_cast<uint8_t>(std::max(0, std::min(15, l))); }

// A scale and min for 32 values at 4 bits minimising sum w (scale L + min - x)^2: L from the
// range first, then 21 trial scales around it each with the least-squares (scale, min) for its L
// (min clamped to <= 0), the best kept; a trial's levels are taken from the best min so far. Returns scale; *neg_min =
// -min (>= 0); L[32] the levels. The order of every fp32 operation is ggml's make_qkx2_quants (nmax 15, rmin -1, rdelta
// 0.1, 20 steps, squared error), so the results are bitwise its.
float fit_sub_block(const float* x, const float* w, uint8_t* L, float* neg_min) {
  float lo = x[0], hi = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < 32; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(L, L + 32, 0);
    *neg_min = -lo;
    return 0.0f;
  }
  // `min` is the best min so far, and the trials are taken relative to it (ggml's order).
  float min = lo, iscale = 15 / (hi - min), scale = 1 / iscale, best = 0;
  for (int i = 0; i < 32; i++) {
    L[i] = clamp15(nearest(iscale * (x[i] - min)));
    float diff = scale * L[i] + min - x[i];
    diff = diff * diff;
    best += w[i] * diff;
  }
  uint8_t trial[32];
  for (int step = 0; step <= 20; step++) {
    iscale = (-1.0f + 0.1f * step + 15) / (hi - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < 32; i++) {
      const int l = clamp15(nearest(iscale * (x[i] - min)));
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / D, m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (m > 0) m = 0, s = sum_xl / sum_l2;
    float err = 0;
    for (int i = 0; i < 32; i++) {
      float diff = s * trial[i] + m - x[i];
      diff = diff * diff;
      err += w[i] * diff;
    }
    if (err < best) {
      std::memcpy(L, trial, 32);
      best = err, scale = s, min = m;
    }
  }
  *neg_min = -min;
  return scale;
}

// One super-block of 256 values -> 144 bytes.
void quantize_super_block(const float* x, uint8_t* out) {
  uint8_t L[kSuperBlock];
  float scales[kSub], mins[kSub], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kSub; j++) {
    const float* v = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 += v[l] * v[l];
    const float av = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; l++) w[l] = av + std::fabs(v[l]);  // weight: larger values matter more
    scales[j] = fit_sub_block(v, w, L + 32 * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // The 8 scales and mins as 6-bit multiples of d = max_scale / 63 and dmin = max_min / 63.
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t* sc12 = out + 4;
  std::memset(sc12, 0, 12);
  for (int j = 0; j < kSub; j++) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest(inv_min * mins[j])));
    if (j < 4) {
      sc12[j] = ls, sc12[j + 4] = lm;
    } else {  // low 4 bits in bytes 8..11, the top 2 in the top bits of bytes j - 4 and j
      sc12[j + 4] = (ls & 0xf) | (lm & 0xf) << 4;
      sc12[j - 4] |= (ls >> 4) << 6;
      sc12[j] |= (lm >> 4) << 6;
    }
  }
  put_half(out, max_scale / 63.f);
  put_half(out + 2, max_min / 63.f);
  // The levels again against the rounded scales (a sub-block whose scale rounds to 0 keeps the fit's).
  uint8_t sc[kSub], m[kSub];
  q4k_scales(sc12, sc, m);
  const float d = get_half(out), dmin = get_half(out + 2);
  for (int j = 0; j < kSub; j++) {
    const float dj = d * sc[j];
    if (dj == 0.0f) continue;
    const float mj = dmin * m[j];
    for (int i = 0; i < 32; i++) L[32 * j + i] = clamp15(nearest((x[32 * j + i] + mj) / dj));
  }
  uint8_t* qs = out + 16;
  for (int p = 0; p < 4; p++)
    for (int l = 0; l < 32; l++) qs[32 * p + l] = L[64 * p + l] | L[64 * p + 32 + l] << 4;
}

}  // namespace

void q4k_scales(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; j++) {
    sc[j] = q[j] & 63, m[j] = q[j + 4] & 63;
    sc[j + 4] = (q[j + 8] & 0xf) | (q[j] >> 6) << 4;
    m[j + 4] = (q[j + 8] >> 4) | (q[j + 4] >> 6) << 4;
  }
}

void quantize_row_q4k(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kSuperBlock; b++) quantize_super_block(x + kSuperBlock * b, out + kBlockBytes * b);
}

void dequantize_row_q4k(const uint8_t* in, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kSuperBlock; b++) {
    const uint8_t* p = in + kBlockBytes * b;
    uint8_t sc[kSub], m[kSub];
    q4k_scales(p + 4, sc, m);
    const float d = get_half(p), dmin = get_half(p + 2);
    float* o = out + kSuperBlock * b;
    for (int j = 0; j < kSub; j++) {
      const float dj = d * sc[j], mj = dmin * m[j];
      const uint8_t* qs = p + 16 + 32 * (j / 2);
      const int shift = 4 * (j & 1);
      for (int l = 0; l < 32; l++) {
        const float prod = dj * static_cast<float>((qs[l] >> shift) & 0xf);  // no FMA: ggml's rounding
        o[32 * j + l] = prod - mj;
      }
    }
  }
}

void pack_q4k_block(const uint8_t* block, int c, uint8_t* g) {
  std::memcpy(g + 2 * c, block, 2);
  std::memcpy(g + 16 + 2 * c, block + 2, 2);
  for (int wd = 0; wd < 3; wd++) std::memcpy(g + 32 + 32 * wd + 4 * c, block + 4 + 4 * wd, 4);
  for (int p = 0; p < 4; p++)
    for (int k = 0; k < 4; k++) std::memcpy(g + q4k_chunk(c, p, k), block + 16 + 32 * p + 8 * k, 8);
}

void unpack_q4k_block(const uint8_t* g, int c, uint8_t* block) {
  std::memcpy(block, g + 2 * c, 2);
  std::memcpy(block + 2, g + 16 + 2 * c, 2);
  for (int wd = 0; wd < 3; wd++) std::memcpy(block + 4 + 4 * wd, g + 32 + 32 * wd + 4 * c, 4);
  for (int p = 0; p < 4; p++)
    for (int k = 0; k < 4; k++) std::memcpy(block + 16 + 32 * p + 8 * k, g + q4k_chunk(c, p, k), 8);
}

void q4k_rows_scalar(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo) {
  uint8_t p[kBlockBytes], sc[kSub], m[kSub];
  for (int o = o0; o < o1; o++)
    for (int n = 0; n < N; n++) {
      const int8_t* xq = x.qs + (size_t)n * x.nb * 32;
      const float* xd = x.d + (size_t)n * x.nb;
      const int32_t* xs = x.sum + (size_t)n * x.nb;
      float acc = 0.0f;
      for (int sb = 0; sb < x.nb / kSub; sb++) {
        copy_block(w, o, sb, p);
        q4k_scales(p + 4, sc, m);
        const float d = get_half(p), dmin = get_half(p + 2);
        for (int j = 0; j < kSub; j++) {
          const int b = kSub * sb + j, shift = 4 * (j & 1);
          const uint8_t* qs = p + 16 + 32 * (j / 2);
          int s = 0;
          for (int l = 0; l < 32; l++) s += ((qs[l] >> shift) & 0xf) * xq[32 * b + l];
          acc = std::fma(static_cast<float>(sc[j] * s), d * xd[b], acc);
          acc = std::fma(-static_cast<float>(m[j] * xs[b]), dmin * xd[b], acc);
        }
      }
      out[(size_t)n * ldo + o] = acc;
    }
}

}  // namespace mindllm::cpu::quant_detail
