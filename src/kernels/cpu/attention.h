// Causal multi-head attention with grouped-query heads and optional local windows.
// q: [B*T rows] of Hq heads × D, row stride ldq; k, v: Hkv heads × D, strides ldk, ldv;
// query head h reads kv head h / (Hq / Hkv). Position t attends to s when s <= t and, for a
// local window W > 0, t - s < W (GPT-Neo's local layers). scores = scale · q·k (GPT-Neo: 1).
// Packed sequences (sft --packing): with seg_start, position t of row b also needs
// s >= seg_start[b*T + t], the first position of the sample that t belongs to, so attention is
// block-diagonal causal without a T × T mask (segments are contiguous: seg_start never decreases
// along a row, and seg_start[b*T + t] <= t).
//
// The T × T probabilities are never stored: both passes work on blocks of 64 query rows in
// per-thread scratch, and the backward pass recomputes a block's probabilities from the two
// numbers per row that the forward pass saves (memory O(T) per head, not O(T²)).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mindllm::cpu {

struct AttentionShape {
  int B, T, Hq, Hkv, D;
  int ldq, ldk, ldv, ldo;  // row strides in floats
  float scale;
  int window;                          // 0: global
  const int32_t* seg_start = nullptr;  // [B*T] first position of each row's segment; null: one segment per row
};

#if defined(__CUDACC__)
#define MINDLLM_HOST_DEVICE __host__ __device__
#else
#define MINDLLM_HOST_DEVICE
#endif

// The first key position t of sequence b may attend to (window and segment), on every backend
// (on a GPU seg_start is a device array).
MINDLLM_HOST_DEVICE inline int first_key(const AttentionShape& s, int b, int t) {
  int lo = (s.window > 0 && t - s.window + 1 > 0) ? t - s.window + 1 : 0;
  if (s.seg_start && s.seg_start[(std::size_t)b * s.T + t] > lo) lo = s.seg_start[(std::size_t)b * s.T + t];
  return lo;
}

// Floats of saved statistics per softmax row: its largest score and 1 / (sum of exponentials).
constexpr int kAttentionStats = 2;

// out: [B*T] rows of Hq × D (stride ldo); stats: [B, Hq, T, kAttentionStats], saved for the
// backward pass. The probabilities of row t are exp(score - stats[0]) · stats[1] over its keys.
void attention_forward(float* out, float* stats, const float* q, const float* k, const float* v,
                       const AttentionShape& s);

// Gradients (overwritten, same strides as q, k, v): dq, dk, dv from dout and the saved stats.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* stats, const float* q,
                        const float* k, const float* v, const AttentionShape& s);

}  // namespace mindllm::cpu
