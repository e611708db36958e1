// Causal attention of new query rows against a paged K/V cache on the GPU (the inference engine,
// model/cuda/cuda_engine.h), and the store of the new rows' keys and values into the cache. Same
// semantics as kernels/cpu/attention_paged.h; the cache's blocks are addressed by id instead of
// by pointer (one device pool).
//
// Row r (of n_rows packed query rows) sits at absolute position positions[r] of its sequence,
// whose block table is tables[table_of[r] ...] (block ids; position p in block table[p / block_size],
// row p % block_size). Block b's keys for this layer: the block_size rows of Hkv x D elements at
// k_base + b * block_stride (elements), ldc apart; values likewise at v_base. Elements are fp32,
// or bf16 when `bf16`. Row r attends to positions [lo, positions[r]], lo = positions[r] - window + 1
// for a local window (window > 0), else 0; its own key and value must be stored first
// (paged_kv_store). Query head h reads kv head h / (Hq / Hkv); scores = scale q.k; GPT-Neo's
// scale 1, RoPE (applied to q and k before the store) and learned positions need nothing here.
//
// q: [n_rows, Hq x D] (stride ldq); out: like q (stride ldo); fp32 or bf16 (the activations).
// Head dims up to 256. All pointers are device pointers.
#pragma once
#include <cstdint>

#include "kernels/cuda/device.h"

namespace mindllm::cuda {

struct PagedAttentionShape {
  int n_rows;
  const int32_t* positions;  // [n_rows] absolute position of each row
  const int32_t* table_of;   // [n_rows] offset of the row's block table in `tables`
  const int32_t* tables;     // block ids
  void* k_base;              // this layer's keys of block 0
  void* v_base;              // this layer's values of block 0
  int64_t block_stride;      // elements from one block's keys to the next's
  int Hq, Hkv, D;
  int ldq, ldo, ldc;
  int block_size;
  float scale;
  int window;  // 0: global
  bool bf16 = false;
};

// Writes row r's key k[r, :Hkv*D] and value v[r, :Hkv*D] (rows ldk apart, fp32 or bf16) at
// position positions[r] of its sequence in the cache (converted to the cache's element type).
void paged_kv_store(const PagedAttentionShape& s, const float* k, const float* v, int ldk);
void paged_kv_store(const PagedAttentionShape& s, const bf16* k, const bf16* v, int ldk);

void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s);
void attention_paged_forward(bf16* out, const bf16* q, const PagedAttentionShape& s);

}  // namespace mindllm::cuda
