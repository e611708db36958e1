// Token (+ learned position) embedding lookup.
#pragma once
#include <cstdint>

namespace mindllm::cpu {

// out[B,T,C] = wte[tokens[b,t]] + (wpe ? wpe[pos_offset + t] : 0). Token ids must be < vocab.
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                       int B, int T, int C, int pos_offset = 0);
// dwte[tok] += dout, dwpe[t] += dout (dwpe may be null). Deterministic for any thread count.
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                        int B, int T, int C, int pos_offset = 0);

}  // namespace mindllm::cpu
