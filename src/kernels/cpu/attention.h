// Causal multi-head attention with grouped-query heads and optional local windows.
// q: [B*T rows] of Hq heads × D, row stride ldq; k, v: Hkv heads × D, strides ldk, ldv;
// query head h reads kv head h / (Hq / Hkv). Position t attends to s when s <= t and, for a
// local window W > 0, t - s < W (GPT-Neo's local layers). scores = scale · q·k (GPT-Neo: 1).
#pragma once

namespace mindllm::cpu {

struct AttentionShape {
  int B, T, Hq, Hkv, D;
  int ldq, ldk, ldv, ldo;  // row strides in floats
  float scale;
  int window;  // 0: global
};

// out: [B*T] rows of Hq × D (stride ldo); probs: [B, Hq, T, T] softmax probabilities, saved
// for the backward pass (entries above the diagonal or outside the window are 0).
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const AttentionShape& s);

// Gradients (overwritten, same strides as q, k, v): dq, dk, dv from dout and the saved probs.
// scratch: B*Hq*T*T floats (may alias nothing else).
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout,
                        const float* probs, const float* q, const float* k, const float* v,
                        const AttentionShape& s);

}  // namespace mindllm::cpu
