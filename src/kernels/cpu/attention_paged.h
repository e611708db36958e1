// Causal attention of new query rows against a paged K/V cache: the inference variant of
// attention_forward (forward only, nothing saved), for a batch of independent sequences.
//
// Sequence s owns the packed rows [row0, row0 + n_rows) of q and out; its row t sits at absolute
// position past + t. Its keys and values for positions 0 .. past + n_rows - 1 (the new rows'
// included: the caller writes them first) live in the cache in blocks of `block_size` positions:
// position p is row p % block_size of block p / block_size, whose rows are k_blocks[..] /
// v_blocks[..] (Hkv heads × D each, rows of ldc values: kv_row_bytes(kv, ldc) bytes apart, in the
// element type `kv` of core/types.h; q8_0 needs D and ldc multiples of 32). Row t
// attends to positions [lo, past + t], lo = past + t - window + 1 for a local window (window > 0),
// else 0. Sequences never see each other.
//
// Each (row, head) is computed on its own, straight from the blocks (no gathered copy, no
// allocation once the per-thread score buffer has grown): scores q·k in 8 lanes of FMAs summed in a
// fixed tree, the softmax of kernels/cpu/attention's rows, then out = FMAs over positions in order
// of p_j v_j. AVX2 (eight keys per pass, the output row in registers) where the CPU has it and D is
// a multiple of 8; with AVX-512 (32 registers, no window) three rows of a head at once, each key
// and value chunk loaded and widened once for the three (MINDLLM_NO_AVX512=1: off); else portable
// C++: the same arithmetic. So a row's output is the same bits whatever else is in the batch and
// however its sequence's prompt was split into chunks.
//
// q: rows of Hq heads × D (stride ldq); out: like q (stride ldo). Query head h reads kv head
// h / (Hq / Hkv); scores = scale · q·k. A q8_0 key or value element is the fp32 product d · q of
// its block's scale and int8, on every path.
#pragma once
#include <cstdint>

#include "core/types.h"

namespace mindllm::cpu {

// One cache row of n values (n a multiple of 32 for q8_0) -> kv_row_bytes(t, n) bytes: fp32 as
// is, bf16 rounded to nearest even, q8_0 as ggml's quantize_row_q8_0_ref; and back to fp32 (the
// values attention reads).
void kv_encode_row(KvType t, const float* x, int n, uint8_t* out);
void kv_decode_row(KvType t, const uint8_t* in, int n, float* out);

struct PagedSequence {
  int row0, n_rows, past;
  const void* const* k_blocks;  // one pointer per block of the sequence (rows of KvType elements)
  const void* const* v_blocks;
};

struct PagedAttentionShape {
  int n_seqs;
  const PagedSequence* seqs;
  int Hq, Hkv, D;
  int ldq, ldo, ldc;
  int block_size;
  float scale;
  int window;               // 0: global
  KvType kv = KvType::f32;  // the blocks' element type
  bool portable = false;    // the portable C++ path whatever the CPU (tests: every path, the same bits)
};

void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s);

}  // namespace mindllm::cpu
