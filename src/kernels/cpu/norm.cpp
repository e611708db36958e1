#include "kernels/cpu/norm.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

constexpr int kRowsPerChunk = 16;

MINDLLM_SIMD_CLONES void layernorm_fwd_rows(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                                            const float* bias, int r0, int r1, int C, float eps) {
  for (int n = r0; n < r1; n++) {
    const float* x = inp + (size_t)n * C;
    float m = static_cast<float>(lane_sum(C, [&](size_t c) { return x[c]; }) / C);
    double v = lane_sum(C, [&](size_t c) {
      double d = x[c] - m;
      return d * d;
    });
    float r = 1.0f / std::sqrt(static_cast<float>(v / C) + eps);
    float* y = out + (size_t)n * C;
    if (bias)
      for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * weight[c] + bias[c];
    else
      for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * weight[c];
    mean[n] = m;
    rstd[n] = r;
  }
}

MINDLLM_SIMD_CLONES void rmsnorm_fwd_rows(float* out, float* rstd, const float* inp, const float* weight, int r0,
                                          int r1, int C, float eps) {
  for (int n = r0; n < r1; n++) {
    const float* x = inp + (size_t)n * C;
    double ss = lane_sum(C, [&](size_t c) { return (double)x[c] * x[c]; });
    float r = 1.0f / std::sqrt(static_cast<float>(ss / C) + eps);
    float* y = out + (size_t)n * C;
    for (int c = 0; c < C; c++) y[c] = (x[c] * r) * weight[c];
    rstd[n] = r;
  }
}

// xhat = (x - mean) * rstd; dxhat = dout * w;
// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)); dw += dout * xhat; db += dout.
// mean == null: RMSNorm (no centring, no mean(dxhat) term, no bias).
MINDLLM_SIMD_CLONES void norm_bwd_rows(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                                       const float* weight, const float* mean, const float* rstd, int r0, int r1,
                                       int C) {
  for (int n = r0; n < r1; n++) {
    const float* x = inp + (size_t)n * C;
    const float* dy = dout + (size_t)n * C;
    const float m = mean ? mean[n] : 0.0f, r = rstd[n];
    double sum_dxhat = mean ? lane_sum(C, [&](size_t c) { return dy[c] * weight[c]; }) : 0.0;
    double sum_dxhat_xhat = lane_sum(C, [&](size_t c) { return dy[c] * weight[c] * ((x[c] - m) * r); });
    for (int c = 0; c < C; c++) dw[c] += dy[c] * ((x[c] - m) * r);
    if (db)
      for (int c = 0; c < C; c++) db[c] += dy[c];
    if (!dinp) continue;
    const float mean_dxhat = static_cast<float>(sum_dxhat / C),
                mean_dxhat_xhat = static_cast<float>(sum_dxhat_xhat / C);
    float* dx = dinp + (size_t)n * C;
    for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * weight[c] - mean_dxhat - ((x[c] - m) * r) * mean_dxhat_xhat);
  }
}

// Parameter gradients are summed over rows: each thread sums a fixed block of rows into its own
// buffer, then the buffers are added in thread order. Same thread count, same bytes.
void norm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                   const float* mean, const float* rstd, int N, int C) {
  const int nt = omp_get_max_threads();
  const int nb = dbias ? 2 : 1;
  std::vector<float> part((size_t)nt * nb * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), nthreads = omp_get_num_threads();
    float* pw = part.data() + (size_t)t * nb * C;
    float* pb = dbias ? pw + C : nullptr;
    const int per = (N + nthreads - 1) / nthreads;
    const int r0 = std::min(N, t * per), r1 = std::min(N, r0 + per);
    for (int r = r0; r < r1; r += kRowsPerChunk)
      norm_bwd_rows(dinp, pw, pb, dout, inp, weight, mean, rstd, r, std::min(r1, r + kRowsPerChunk), C);
  }
  for (int t = 0; t < nt; t++) {
    const float* pw = part.data() + (size_t)t * nb * C;
    if (dweight)
      for (int c = 0; c < C; c++) dweight[c] += pw[c];
    if (dbias)
      for (int c = 0; c < C; c++) dbias[c] += pw[C + c];
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, float eps) {
  PROFILE("norm_fwd");
  parallel_ranges(N, kRowsPerChunk, [&](size_t b, size_t e) {
    layernorm_fwd_rows(out, mean, rstd, inp, weight, bias, (int)b, (int)e, C, eps);
  });
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
  PROFILE("norm_bwd");
  norm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
  PROFILE("norm_fwd");
  parallel_ranges(N, kRowsPerChunk,
                  [&](size_t b, size_t e) { rmsnorm_fwd_rows(out, rstd, inp, weight, (int)b, (int)e, C, eps); });
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  PROFILE("norm_bwd");
  norm_backward(dinp, dweight, nullptr, dout, inp, weight, nullptr, rstd, N, C);
}

}  // namespace mindllm::cpu
