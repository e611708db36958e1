#include "kernels/cpu/attention.h"

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

#include <cblas.h>

#include <cmath>
#include <cstring>

namespace mindllm::cpu {

namespace {

// Row t of the T x T score matrix P becomes softmax over keys [lo, t] (lo from the local
// window), 0 elsewhere.
MINDLLM_SIMD_CLONES void softmax_causal_rows(float* P, int T, int window) {
  for (int t = 0; t < T; t++) {
    float* row = P + (size_t)t * T;
    int lo = (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0;
    const int n = t - lo + 1;
    float* r = row + lo;
    float mx = lane_max(r, n);
    for (int j = 0; j < n; j++) r[j] = vexp(r[j] - mx);
    float inv = static_cast<float>(1.0 / lane_sum(n, [&](size_t j) { return r[j]; }));
    for (int j = 0; j < lo; j++) row[j] = 0.0f;
    for (int j = 0; j < n; j++) r[j] *= inv;
    for (int j = t + 1; j < T; j++) row[j] = 0.0f;
  }
}

// dS = P * (dP - rowsum(P * dP)), in place over dP (entries outside the causal range are 0).
MINDLLM_SIMD_CLONES void softmax_backward_rows(const float* P, float* dS, int T) {
  for (int t = 0; t < T; t++) {
    const float* pr = P + (size_t)t * T;
    float* dr = dS + (size_t)t * T;
    float dot = static_cast<float>(lane_sum(t + 1, [&](size_t j) { return pr[j] * dr[j]; }));
    for (int j = 0; j <= t; j++) dr[j] = pr[j] * (dr[j] - dot);
    for (int j = t + 1; j < T; j++) dr[j] = 0.0f;
  }
}

}  // namespace

// One (batch, query head) pair works on a T×T slice; the GEMMs run single-threaded inside the
// OpenMP loop (OpenBLAS's OpenMP build does so inside a parallel region).

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  PROFILE("attention_fwd");
  const int B = s.B, T = s.T, Hq = s.Hq, D = s.D, group = s.Hq / s.Hkv;
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * Hq; bh++) {
    int b = bh / Hq, h = bh % Hq, hk = h / group;
    const float* qb = q + (size_t)b * T * s.ldq + (size_t)h * D;
    const float* kb = k + (size_t)b * T * s.ldk + (size_t)hk * D;
    const float* vb = v + (size_t)b * T * s.ldv + (size_t)hk * D;
    float* P = probs + (size_t)bh * T * T;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, s.scale, qb, s.ldq, kb, s.ldk, 0.0f, P, T);
    softmax_causal_rows(P, T, s.window);
    float* ob = out + (size_t)b * T * s.ldo + (size_t)h * D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, P, T, vb, s.ldv, 0.0f, ob, s.ldo);
  }
}

void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout,
                        const float* probs, const float* q, const float* k, const float* v,
                        const AttentionShape& s) {
  PROFILE("attention_bwd");
  const int B = s.B, T = s.T, Hq = s.Hq, Hkv = s.Hkv, D = s.D, group = s.Hq / s.Hkv;
  // Parallel over (batch, kv head): the query heads of a group add into the same dk, dv in order.
#pragma omp parallel for schedule(static)
  for (int bk = 0; bk < B * Hkv; bk++) {
    int b = bk / Hkv, hk = bk % Hkv;
    const float* kb = k + (size_t)b * T * s.ldk + (size_t)hk * D;
    const float* vb = v + (size_t)b * T * s.ldv + (size_t)hk * D;
    float* dkb = dk + (size_t)b * T * s.ldk + (size_t)hk * D;
    float* dvb = dv + (size_t)b * T * s.ldv + (size_t)hk * D;
    for (int t = 0; t < T; t++) {
      std::memset(dkb + (size_t)t * s.ldk, 0, sizeof(float) * D);
      std::memset(dvb + (size_t)t * s.ldv, 0, sizeof(float) * D);
    }
    for (int h = hk * group; h < (hk + 1) * group; h++) {
      size_t bh = (size_t)b * Hq + h;
      const float* P = probs + bh * T * T;
      float* dS = scratch + bh * T * T;
      const float* qb = q + (size_t)b * T * s.ldq + (size_t)h * D;
      const float* dob = dout + (size_t)b * T * s.ldo + (size_t)h * D;
      float* dqb = dq + (size_t)b * T * s.ldq + (size_t)h * D;
      // dP = dO · V^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, dob, s.ldo, vb, s.ldv, 0.0f, dS, T);
      // dV += P^T · dO
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, P, T, dob, s.ldo, 1.0f, dvb, s.ldv);
      // dS = P ⊙ (dP - rowsum(P ⊙ dP))
      softmax_backward_rows(P, dS, T);
      // dQ = scale · dS · K ;  dK += scale · dS^T · Q
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, s.scale, dS, T, kb, s.ldk, 0.0f, dqb, s.ldq);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, s.scale, dS, T, qb, s.ldq, 1.0f, dkb, s.ldk);
    }
  }
}

}  // namespace mindllm::cpu
