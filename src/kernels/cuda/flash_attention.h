// Flash-style causal attention on the GPU (FlashAttention-2 algorithm): bf16 q/k/v, fp32
// accumulation, online softmax, never a T x T matrix in memory. Same shapes and masking as
// kernels/cpu/attention.h and kernels/cuda/attention.h: strided q/k/v rows (e.g. offsets into one
// packed qkv row), grouped-query heads (query head h reads kv head h / (Hq / Hkv)), scores =
// scale · q·k with any scale (GPT-Neo: 1), local window W > 0 keeps t - s < W, packed rows keep
// s >= seg_start[b*T + t] (a device array).
//
// Instead of the probabilities the forward saves one fp32 logsumexp per query row; the backward
// recomputes the probabilities from it. Deterministic: no atomics, every sum in a fixed order.
// Head dims 64 and 128 (flash_attention_supported); other shapes throw an Error naming them and
// belong to kernels/cuda/attention.h. Design and status: docs/cuda-speed.md.
#pragma once
#include "kernels/cpu/attention.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

using cpu::AttentionShape;

// True when the flash kernels take this shape (head dim 64 or 128, Hq a multiple of Hkv).
bool flash_attention_supported(const AttentionShape& s);

// out: [B*T] rows of Hq x D (stride ldo), overwritten.
// lse: [B, Hq, T] fp32, overwritten: log Σ_s exp(scale · q_t·k_s) over the keys row t sees
// (natural log), the softmax statistic the backward needs.
void flash_attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                             const AttentionShape& s);

// dq, dk, dv overwritten (same strides as q, k, v; they may be offsets into one packed row, as
// long as they do not overlap). dout and out have stride ldo; out and lse are the forward's.
// delta: B*Hq*T floats of scratch (receives rowsum(dout ∘ out)).
void flash_attention_backward(bf16* dq, bf16* dk, bf16* dv, float* delta, const bf16* dout, const bf16* out,
                              const float* lse, const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s);

}  // namespace mindllm::cuda
