// Token (+ learned position) embedding lookup.
#pragma once
#include <cstdint>

namespace mindllm::cpu {

// out[B,T,C] = wte[tokens[b,t]] + (wpe ? wpe[pos_offset + p] : 0), p = t, or positions[b*T+t]
// when given (packed samples: positions restart at 0 for each sample). Token ids must be < vocab, positions within wpe.
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       int pos_offset = 0, const int32_t* positions = nullptr);
// dwte[tok] += dout, dwpe[p] += dout (dwpe may be null). Deterministic for any thread count:
// each element gets its rows' additions in row order.
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset = 0, const int32_t* positions = nullptr);

}  // namespace mindllm::cpu
