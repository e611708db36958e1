// Internals of the quantised linear (kernels/cpu/quant.h), shared by the portable and the AVX2
// kernels: activations quantised to q8_0 as [N][nb] blocks of 32 int8 plus [N][nb] fp32 scales
// (each scale rounded through fp16, as ggml's block_q8_0 stores it).
#pragma once
#include <cstdint>

#include "kernels/cpu/quant.h"

namespace mindllm::cpu::quant_detail {

struct ActQ8 {
  const int8_t* qs;    // [N][nb * 32]
  const float* d;      // [N][nb]
  const int32_t* sum;  // [N][nb]: the sum of each block's 32 qs (q4_0's -8 offset, applied once)
  int nb;
};

// Offset of chunk k (8 bytes: quants 8k..8k+7 of q8_0, nibble bytes 8k..8k+7 of q4_0) of row c of
// a packed group's block, from the block's start (its 8 scales come first).
inline int packed_chunk(int c, int k) { return 16 + 64 * k + 32 * ((c >> 1) & 1) + 8 * ((c & 1) | (c >> 2) << 1); }
// The slot of row c (0..31) of a packed bf16 / f16 group in each weight index's 32 (quant.h): bf16
// swaps bits 2 and 3 of c (rows 0..3, 8..11, 4..7, 12..15 per 16), f16 keeps the row order.
inline int pack16_slot(QuantType t, int c) {
  return t == QuantType::bf16 ? (c & ~12) | (c & 4) << 1 | (c & 8) >> 1 : c;
}
// Weight i of row o of a bf16 / f16 matrix (plain or packed), as stored.
inline uint16_t float16_at(const QuantMatrix& w, int o, int i) {
  const uint16_t* d = reinterpret_cast<const uint16_t*>(w.data);
  const int grouped = w.O / kPack16Rows * kPack16Rows, g = o / kPack16Rows * kPack16Rows, c = o - g;
  if (!w.packed || o >= grouped) return d[(size_t)o * w.I + i];
  if (w.amx) return d[(size_t)g * w.I + (size_t)(i / 2) * 64 + (c / 16) * 32 + (c % 16) * 2 + i % 2];
  return d[(size_t)g * w.I + (size_t)i * kPack16Rows + pack16_slot(w.type, c)];
}
// Row o's block b of w (plain or packed): its bytes as ggml's block (fp16 d, then quants; q4_k:
// super-block b, 144 bytes).
void copy_block(const QuantMatrix& w, int o, int b, uint8_t* block);

// q4_k (quant_k.cpp). A super-block's 8 scales and 8 mins (6 bits each) from its 12 scale bytes.
void q4k_scales(const uint8_t* scales12, uint8_t* sc, uint8_t* m);
void quantize_row_q4k(const float* x, int64_t n, uint8_t* out);
void dequantize_row_q4k(const uint8_t* in, int64_t n, float* out);
// One plain super-block (144 bytes) <-> row c of a packed group's super-block (8 x 144 bytes).
void pack_q4k_block(const uint8_t* block, int c, uint8_t* group);
void unpack_q4k_block(const uint8_t* group, int c, uint8_t* block);
// Offset of nibble chunk k (qs[32p + 8k .. + 8]) of row c in a packed q4_k group's super-block.
inline int q4k_chunk(int c, int p, int k) { return 128 + 256 * p + packed_chunk(c, k) - 16; }
// dot_rows for q4_k weights (the portable kernel; the AVX2 one is dot_rows_avx2).
void q4k_rows_scalar(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo);

// out[n * ldo + o] = dot(W row o, activation row n) for o in [o0, o1), n in [0, N); q8_0 / q4_0.
// o0 is a multiple of kPackRows when w is packed.
void dot_rows_scalar(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo);
void dot_rows_avx2(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo);
// The same for bf16 / f16 weights (w.type) against fp32 activations in[N][I]; o0 is a multiple of
// kPack16Rows when w is packed.
void float16_rows_scalar(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo);
void float16_rows_avx2(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo);
// f16 batch tiles in AVX-512 (quant_avx512.cpp): packed groups [o0, o1) (whole groups), N rows;
// the same bits as float16_rows_avx2.
bool f16_avx512_available();
void f16_groups_avx512(const QuantMatrix& w, int o0, int o1, const float* in, int N, float* out, int ldo);
// q8_0 / q4_0 / q4_k decode (one activation row) with AVX-512 VNNI: rows [o0, o1) of a packed matrix, o0
// a multiple of kPackRows; the same bits as dot_rows_avx2.
bool int8_vnni_available();
void int8_gemv_avx512(const QuantMatrix& w, int o0, int o1, const ActQ8& x, float* out);
// AMX (quant_amx.cpp), each call loading its tile configuration in the calling thread. bf16:
// x: the activations as bf16, [N][I] for N = 1, else [N rounded up to 32][I] with the padding rows
// anything finite. Rows [o0, o1) of an AMX-packed bf16 matrix, o0 a multiple of kPack16Rows.
void bf16_rows_amx(const QuantMatrix& w, int o0, int o1, const uint16_t* x, int N, float* out, int ldo);
void to_bf16_rows(const float* in, size_t n, uint16_t* out);
// Packed q8_0 / q4_0 rows [o0, o1) (whole supergroups of 32 rows, o0 a multiple of 32) on AMX
// int8 tiles, the same bits as dot_rows_avx2; x's quants padded to a multiple of 16 rows. Loads
// its own tile configuration.
void int8_rows_amx(const QuantMatrix& w, int o0, int o1, const ActQ8& x, int N, float* out, int ldo);
// dequantize_row (quant.h) in AVX2: the same values.
void dequantize_row_avx2(QuantType t, const uint8_t* in, int64_t n, float* out);
// One activation row x[nb * 32] -> qs, d (ggml's quantize_row_q8_0 arithmetic), sum (of qs).
void quantize_act_scalar(const float* x, int nb, int8_t* qs, float* d, int32_t* sum);
void quantize_act_avx2(const float* x, int nb, int8_t* qs, float* d, int32_t* sum);

}  // namespace mindllm::cpu::quant_detail
