#include "kernels/cpu/attention.h"

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mindllm::cpu {

namespace {

// The first key that query t may attend to (local windows; 0 for global attention).
inline int first_key(int t, int window) { return (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0; }

// Rows [r0, r1) of the T x T score matrix P become softmax over keys [first_key(t), t], 0 elsewhere.
// Only scores in that range are read.
MINDLLM_SIMD_CLONES void softmax_causal_rows(float* P, int T, int window, int r0, int r1) {
  for (int t = r0; t < r1; t++) {
    float* row = P + (size_t)t * T;
    const int lo = first_key(t, window);
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

// Rows [r0, r1): dS = P * (dP - rowsum(P * dP)) over the attended keys, in place over dP; 0
// elsewhere. Only dP entries of attended keys are read.
MINDLLM_SIMD_CLONES void softmax_backward_rows(const float* P, float* dS, int T, int window, int r0, int r1) {
  for (int t = r0; t < r1; t++) {
    const int lo = first_key(t, window);
    const float* pr = P + (size_t)t * T + lo;
    float* row = dS + (size_t)t * T;
    float* dr = row + lo;
    const int n = t - lo + 1;
    float dot = static_cast<float>(lane_sum(n, [&](size_t j) { return pr[j] * dr[j]; }));
    for (int j = 0; j < lo; j++) row[j] = 0.0f;
    for (int j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - dot);
    for (int j = t + 1; j < T; j++) row[j] = 0.0f;
  }
}

// Causal attention is computed in blocks of query rows; block [r0, r1) needs keys
// [first_key(r0), r1) only, so the GEMMs skip the masked part (about half of it for global
// attention, most of it for short local windows).
constexpr int kRowBlock = 64;

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
    float* ob = out + (size_t)b * T * s.ldo + (size_t)h * D;
    for (int r0 = 0; r0 < T; r0 += kRowBlock) {
      const int r1 = std::min(T, r0 + kRowBlock), k0 = first_key(r0, s.window), nk = r1 - k0, m = r1 - r0;
      float* Pb = P + (size_t)r0 * T + k0;
      // S = scale · Q[r0:r1] · K[k0:r1]^T;  O[r0:r1] = softmax(S) · V[k0:r1]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, D, s.scale, qb + (size_t)r0 * s.ldq, s.ldq,
                  kb + (size_t)k0 * s.ldk, s.ldk, 0.0f, Pb, T);
      softmax_causal_rows(P, T, s.window, r0, r1);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, nk, 1.0f, Pb, T, vb + (size_t)k0 * s.ldv, s.ldv,
                  0.0f, ob + (size_t)r0 * s.ldo, s.ldo);
    }
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
      for (int r0 = 0; r0 < T; r0 += kRowBlock) {
        const int r1 = std::min(T, r0 + kRowBlock), k0 = first_key(r0, s.window), nk = r1 - k0, m = r1 - r0;
        const float* Pb = P + (size_t)r0 * T + k0;
        float* dSb = dS + (size_t)r0 * T + k0;
        const float* dob_r = dob + (size_t)r0 * s.ldo;
        // dP = dO · V^T ;  dV += P^T · dO
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, D, 1.0f, dob_r, s.ldo, vb + (size_t)k0 * s.ldv,
                    s.ldv, 0.0f, dSb, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, m, 1.0f, Pb, T, dob_r, s.ldo, 1.0f,
                    dvb + (size_t)k0 * s.ldv, s.ldv);
        // dS = P ⊙ (dP - rowsum(P ⊙ dP))
        softmax_backward_rows(P, dS, T, s.window, r0, r1);
        // dQ = scale · dS · K ;  dK += scale · dS^T · Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, nk, s.scale, dSb, T, kb + (size_t)k0 * s.ldk,
                    s.ldk, 0.0f, dqb + (size_t)r0 * s.ldq, s.ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, D, m, s.scale, dSb, T, qb + (size_t)r0 * s.ldq,
                    s.ldq, 1.0f, dkb + (size_t)k0 * s.ldk, s.ldk);
      }
    }
  }
}

}  // namespace mindllm::cpu
