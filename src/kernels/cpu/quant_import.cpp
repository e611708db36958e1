#include "kernels/cpu/quant_import.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/quant_impl.h"

namespace mindllm::cpu {

namespace {

float half_at(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// One q5_0 block (22 bytes) -> y[32].
void q5_0_block(const uint8_t* b, float* y) {
  const float d = half_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; j++) {
    const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
    y[j] = d * static_cast<float>(((qs[j] & 0x0f) | hi0 << 4) - 16);
    y[j + 16] = d * static_cast<float>(((qs[j] >> 4) | hi1 << 4) - 16);
  }
}

// One q5_K super-block (176 bytes) -> y[256].
void q5_k_block(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  uint8_t sc[8], m[8];
  quant_detail::q4k_scales(b + 4, sc, m);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int p = 0; p < 4; p++) {  // sub-blocks 2p (low nibbles) and 2p + 1 (high nibbles)
    const float d1 = d * sc[2 * p], m1 = dmin * m[2 * p], d2 = d * sc[2 * p + 1], m2 = dmin * m[2 * p + 1];
    for (int l = 0; l < 32; l++) {
      const int q1 = (qs[32 * p + l] & 0x0f) | ((qh[l] >> (2 * p)) & 1) << 4;
      const int q2 = (qs[32 * p + l] >> 4) | ((qh[l] >> (2 * p + 1)) & 1) << 4;
      y[64 * p + l] = d1 * static_cast<float>(q1) - m1;
      y[64 * p + 32 + l] = d2 * static_cast<float>(q2) - m2;
    }
  }
}

// One q6_K super-block (210 bytes) -> y[256].
void q6_k_block(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; l++) {
      const int s = l / 16;
      const int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
      const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
      const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
      y[l] = d * static_cast<float>(sc[s]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q4);
    }
  }
}

}  // namespace

int import_block_weights(ImportBlock t) { return t == ImportBlock::q5_0 ? 32 : 256; }

int import_block_bytes(ImportBlock t) {
  switch (t) {
    case ImportBlock::q5_0: return 22;
    case ImportBlock::q5_k: return 176;
    case ImportBlock::q6_k: return 210;
  }
  return 0;
}

void dequantize_import_row(ImportBlock t, const uint8_t* in, int64_t n, float* out) {
  const int bw = import_block_weights(t), bb = import_block_bytes(t);
  MINDLLM_CHECK(n % bw == 0, "dequantize_import_row: row length is not whole blocks");
  for (int64_t b = 0; b < n / bw; b++) {
    const uint8_t* p = in + b * bb;
    float* y = out + b * bw;
    if (t == ImportBlock::q5_0) q5_0_block(p, y);
    else if (t == ImportBlock::q5_k) q5_k_block(p, y);
    else q6_k_block(p, y);
  }
}

}  // namespace mindllm::cpu
