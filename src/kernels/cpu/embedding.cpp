#include "kernels/cpu/embedding.h"

#include "core/profile.h"

#include <cstring>

namespace mindllm::cpu {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       int pos_offset, const int32_t* positions) {
  PROFILE("embedding");
#pragma omp parallel for schedule(static)
  for (int i = 0; i < B * T; i++) {
    int t = positions ? positions[i] : i % T;
    float* o = out + (size_t)i * C;
    const float* e = wte + (size_t)tokens[i] * C;
    if (wpe) {
      const float* p = wpe + (size_t)(t + pos_offset) * C;
      for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    } else {
      std::memcpy(o, e, sizeof(float) * C);
    }
  }
}

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset, const int32_t* positions) {
  PROFILE("embedding");
  // Threads split the channels, so each output element is summed by one thread in row order.
#pragma omp parallel for schedule(static)
  for (int c0 = 0; c0 < C; c0 += 16) {
    int c1 = c0 + 16 < C ? c0 + 16 : C;
    for (int i = 0; i < B * T; i++) {
      const float* d = dout + (size_t)i * C;
      float* e = dwte + (size_t)tokens[i] * C;
      for (int c = c0; c < c1; c++) e[c] += d[c];
      if (dwpe) {
        float* p = dwpe + (size_t)((positions ? positions[i] : i % T) + pos_offset) * C;
        for (int c = c0; c < c1; c++) p[c] += d[c];
      }
    }
  }
}

}  // namespace mindllm::cpu
