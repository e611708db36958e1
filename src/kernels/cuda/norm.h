// LayerNorm and RMSNorm over the last dimension C of N rows, on the GPU. Same math and
// accumulate semantics as kernels/cpu/norm.h; statistics and accumulation in fp32.
// The parameter gradients are column sums over rows computed by a fixed-shape reduction (each
// block owns a tile of channels and adds its row partials in order): no atomics, same bits
// every run.
#pragma once
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

// out = (x - mean) * rstd * weight + bias; mean[N], rstd[N] saved (fp32). bias may be null.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, float eps);
void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int N, int C, float eps);
// dinp += ..., dweight += ..., dbias += ... (dbias may be null; dinp may be null).
// bf16: activations and weight bf16; the parameter gradients fp32.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);
void layernorm_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                        const float* mean, const float* rstd, int N, int C);

// out = x * rstd * weight, rstd = 1/sqrt(mean(x^2) + eps); rstd[N] saved.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);
void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C);

}  // namespace mindllm::cuda
