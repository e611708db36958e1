// Causal multi-head attention on the GPU, with grouped-query heads and local windows; same
// shapes and semantics as kernels/cpu/attention.h (strided q/k/v rows, query head h reads kv head
// h / (Hq / Hkv), scores = scale · q·k, window W > 0 keeps t - s < W, packed rows keep
// s >= seg_start[b*T + t] with seg_start a device array).
//
// A simple, exact kernel first: the T x T probabilities are materialised (the CPU path saves them
// too), every reduction runs in a fixed order in fp32, and dk/dv are gathered per key position
// (no atomics). A flash-style kernel is the next step (docs/cuda.md).
#pragma once
#include "kernels/cpu/attention.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

using cpu::AttentionShape;

// out: [B*T] rows of Hq x D (stride ldo); probs: [B, Hq, T, T] fp32 (0 above the diagonal and
// outside the window). D <= 256.
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const AttentionShape& s);
void attention_forward(bf16* out, float* probs, const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s);

// dq, dk, dv overwritten (same strides as q, k, v). scratch: B*Hq*T*T floats (receives dS).
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout, const float* probs,
                        const float* q, const float* k, const float* v, const AttentionShape& s);
void attention_backward(bf16* dq, bf16* dk, bf16* dv, float* scratch, const bf16* dout, const float* probs,
                        const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s);

}  // namespace mindllm::cuda
