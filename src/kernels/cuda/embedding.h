// Token (+ learned position) embedding on the GPU; same semantics as kernels/cpu/embedding.h.
#pragma once
#include <cstdint>

#include "kernels/cuda/device.h"

namespace mindllm::cuda {

// out[B,T,C] = wte[tokens[b,t]] + (wpe ? wpe[pos_offset + t] : 0). Token ids must be < vocab.
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       int pos_offset = 0);
void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C,
                       int pos_offset = 0);

// dwte[tok] += dout, dwpe[t] += dout (dwpe may be null); gradients fp32. Deterministic without
// atomics: each thread owns one channel of the tokens in one hash bucket (tok % 64) and adds
// the rows in order, so every element gets exactly the CPU's sequence of additions.
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset = 0);
void embedding_backward(float* dwte, float* dwpe, const bf16* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset = 0);

}  // namespace mindllm::cuda
