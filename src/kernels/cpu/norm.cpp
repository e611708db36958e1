#include "kernels/cpu/norm.h"

#include "core/profile.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace mindllm::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
  PROFILE("norm_fwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* x = inp + (size_t)n * C;
    double s = 0.0;
    for (int c = 0; c < C; c++) s += x[c];
    float m = static_cast<float>(s / C);
    double v = 0.0;
    for (int c = 0; c < C; c++) {
      float d = x[c] - m;
      v += (double)d * d;
    }
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

// Parameter gradients are summed over rows: each thread sums a fixed block of rows into its own
// buffer, then the buffers are added in thread order. Same thread count, same bytes.
template <typename RowFn>
static void accumulate_param_grads(int N, int C, int nbuf, float* dw, float* db, RowFn row_fn) {
  int nt = omp_get_max_threads();
  std::vector<float> part((size_t)nt * nbuf * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    float* pw = part.data() + (size_t)t * nbuf * C;
    float* pb = nbuf > 1 ? pw + C : nullptr;
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) row_fn(n, pw, pb);
  }
  for (int t = 0; t < nt; t++) {
    const float* pw = part.data() + (size_t)t * nbuf * C;
    for (int c = 0; c < C; c++) dw[c] += pw[c];
    if (db)
      for (int c = 0; c < C; c++) db[c] += pw[C + c];
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
  PROFILE("norm_bwd");
  // xhat = (x - mean) * rstd; dxhat = dout * w;
  // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
  accumulate_param_grads(N, C, 2, dweight, dbias, [&](int n, float* dw, float* db) {
    const float* x = inp + (size_t)n * C;
    const float* dy = dout + (size_t)n * C;
    float m = mean[n], r = rstd[n];
    float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
    for (int c = 0; c < C; c++) {
      float xhat = (x[c] - m) * r;
      float dxhat = dy[c] * weight[c];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += dxhat * xhat;
      dw[c] += dy[c] * xhat;
      db[c] += dy[c];
    }
    if (!dinp) return;
    float mean_dxhat = sum_dxhat / C, mean_dxhat_xhat = sum_dxhat_xhat / C;
    float* dx = dinp + (size_t)n * C;
    for (int c = 0; c < C; c++) {
      float xhat = (x[c] - m) * r;
      dx[c] += r * (dy[c] * weight[c] - mean_dxhat - xhat * mean_dxhat_xhat);
    }
  });
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
  PROFILE("norm_fwd");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* x = inp + (size_t)n * C;
    double ss = 0.0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    float r = 1.0f / std::sqrt(static_cast<float>(ss / C) + eps);
    float* y = out + (size_t)n * C;
    for (int c = 0; c < C; c++) y[c] = (x[c] * r) * weight[c];
    rstd[n] = r;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  PROFILE("norm_bwd");
  // xhat = x * rstd; dx = rstd * (dxhat - xhat * mean(dxhat * xhat))
  accumulate_param_grads(N, C, 1, dweight, nullptr, [&](int n, float* dw, float*) {
    const float* x = inp + (size_t)n * C;
    const float* dy = dout + (size_t)n * C;
    float r = rstd[n];
    float s = 0.0f;
    for (int c = 0; c < C; c++) {
      float xhat = x[c] * r;
      float dxhat = dy[c] * weight[c];
      s += dxhat * xhat;
      dw[c] += dy[c] * xhat;
    }
    if (!dinp) return;
    float ms = s / C;
    float* dx = dinp + (size_t)n * C;
    for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * weight[c] - x[c] * r * ms);
  });
}

}  // namespace mindllm::cpu
