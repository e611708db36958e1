// Token (+ learned position) embedding on the GPU; same semantics as kernels/cpu/embedding.h.
#pragma once
#include <cstdint>

#include "kernels/cuda/device.h"

namespace mindllm::cuda {

// out[B,T,C] = wte[tokens[b,t]] + (wpe ? wpe[pos_offset + p] : 0), p = t or positions[b*T+t] (device
// position ids of packed samples). Token ids must be < vocab.
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       int pos_offset = 0, const int32_t* positions = nullptr);
void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C,
                       int pos_offset = 0, const int32_t* positions = nullptr);

// dwte[tok] += dout, dwpe[t] += dout (dwpe may be null); gradients fp32. Deterministic without
// atomics: each thread owns one channel of the tokens in one hash bucket (tok % 64) and adds
// the rows in order, so every element gets exactly the CPU's sequence of additions (dwpe too:
// with position ids it is summed as dwte is, the positions as token ids).
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset = 0, const int32_t* positions = nullptr);
void embedding_backward(float* dwte, float* dwpe, const bf16* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset = 0, const int32_t* positions = nullptr);

}  // namespace mindllm::cuda
