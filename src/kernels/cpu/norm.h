// LayerNorm and RMSNorm over the last dimension C of N rows. Statistics in float32 (double
// accumulation for the row sums), saved for the backward pass.
#pragma once

namespace mindllm::cpu {

// out = (x - mean) * rstd * weight + bias; mean[N], rstd[N] saved. bias may be null.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, float eps);
// dinp += ..., dweight += ..., dbias += ... (any may be null: skipped).
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);

// out = x * rstd * weight with rstd = 1/sqrt(mean(x^2) + eps) (LLaMA's RMSNorm); rstd[N] saved.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);

}  // namespace mindllm::cpu
