// Block formats mindllm reads from GGUF files but does not multiply by: llama.cpp's q5_0, q5_K and
// q6_K, the higher-precision tensors of its Q4_K_M / Q5_K_M / Q6_K files (attention V, half of the
// MLP down projections, the output projection; q5_0 where a row is not whole 256-weight
// super-blocks). Dequantised to fp32 at import (model/gguf_import.cpp), then run as q8_0. Byte
// layouts as ggml defines them (ggml-common.h), little-endian:
//   q5_0: 32 weights -> { fp16 d; uint8 qh[4]; uint8 qs[16] } (22 bytes): q = low nibble
//         (weights 0..15: qs[j] & 15, weights 16..31: qs[j] >> 4) | bit j (resp. j + 16) of the
//         32-bit qh << 4, x = d (q - 16).
//   q5_K: 256 weights -> { fp16 d, dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] } (176
//         bytes): q4_K's 8 sub-blocks with 6-bit scales and mins (the same 12-byte packing), the
//         low 4 bits of weight l of sub-block 2p (2p + 1) in the low (high) nibble of qs[32p + l],
//         the fifth bit in bit 2p (2p + 1) of qh[l]; x = d sc_j q - dmin m_j.
//   q6_K: 256 weights -> { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d } (210 bytes): two
//         halves of 128, each 4 groups of 32 (q from 4 low bits of ql and 2 high bits of qh),
//         16 sub-blocks of 16 with a signed 8-bit scale; x = d scales[s] (q - 32).
#pragma once
#include <cstdint>

namespace mindllm::cpu {

enum class ImportBlock : uint8_t { q5_0, q5_k, q6_k };
int import_block_weights(ImportBlock t);  // 32 or 256
int import_block_bytes(ImportBlock t);    // 22, 176, 210
// in: n / import_block_weights(t) blocks (n must be whole blocks) -> out[n] fp32.
void dequantize_import_row(ImportBlock t, const uint8_t* in, int64_t n, float* out);

}  // namespace mindllm::cpu
