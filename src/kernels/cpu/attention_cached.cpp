#include "kernels/cpu/attention_cached.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/profile.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

// Scores of a branch: L rows × (Pc + L) columns, the first Pc against cached positions
// [c0, c0 + Pc), then the branch's own L keys. Row t becomes the softmax over the allowed keys.
MINDLLM_SIMD_CLONES void softmax_cached_rows(float* S, int L, int Pc, int c0, int P, int window) {
  const int W = Pc + L;
  for (int t = 0; t < L; t++) {
    float* row = S + (size_t)t * W;
    const int abs_t = P + t;
    const int lo = (window > 0 && abs_t - window + 1 > 0) ? abs_t - window + 1 : 0;  // lowest allowed key
    // Allowed columns: cached [max(lo, c0) - c0, Pc), own [max(lo - P, 0), t].
    const int cl = std::min(Pc, std::max(lo - c0, 0));
    const int ol = std::max(lo - P, 0);
    float mx = -INFINITY;
    if (cl < Pc) mx = lane_max(row + cl, Pc - cl);
    mx = std::max(mx, lane_max(row + Pc + ol, t - ol + 1));
    for (int j = cl; j < Pc; j++) row[j] = vexp(row[j] - mx);
    for (int j = ol; j <= t; j++) row[Pc + j] = vexp(row[Pc + j] - mx);
    double sum = lane_sum(Pc - cl, [&](size_t j) { return row[cl + j]; }) +
                 lane_sum(t - ol + 1, [&](size_t j) { return row[Pc + ol + j]; });
    const float inv = static_cast<float>(1.0 / sum);
    for (int j = 0; j < cl; j++) row[j] = 0.0f;
    for (int j = cl; j < Pc; j++) row[j] *= inv;
    for (int j = 0; j < ol; j++) row[Pc + j] = 0.0f;
    for (int j = ol; j <= t; j++) row[Pc + j] *= inv;
    for (int j = t + 1; j < L; j++) row[Pc + j] = 0.0f;
  }
}

}  // namespace

void attention_cached_forward(float* out, const float* q, const float* k, const float* v, const float* k_cache,
                              const float* v_cache, const CachedAttentionShape& s) {
  PROFILE("attention_cached");
  const int Hq = s.Hq, D = s.D, group = s.Hq / s.Hkv, P = s.prefix_len;
  const int jobs = s.n_branches * Hq;
#pragma omp parallel
  {
    std::vector<float> scratch;
#pragma omp for schedule(dynamic)
    for (int j = 0; j < jobs; j++) {
      const int b = j / Hq, h = j % Hq, hk = h / group;
      const int L = s.branch_len[b], r0 = s.branch_offset[b];
      // Only cached keys some row of the branch can see: the window of row 0 starts at P - W + 1.
      const int c0 = (s.window > 0) ? std::max(0, P - s.window + 1) : 0;
      const int Pc = P - c0, W = Pc + L;
      scratch.resize((size_t)L * W);
      float* S = scratch.data();
      const float* qb = q + (size_t)r0 * s.ldq + (size_t)h * D;
      const float* kb = k + (size_t)r0 * s.ldk + (size_t)hk * D;
      const float* vb = v + (size_t)r0 * s.ldv + (size_t)hk * D;
      const float* kc = k_cache + (size_t)c0 * s.ldc + (size_t)hk * D;
      const float* vc = v_cache + (size_t)c0 * s.ldc + (size_t)hk * D;
      if (Pc > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, Pc, D, s.scale, qb, s.ldq, kc, s.ldc, 0.0f, S, W);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, D, s.scale, qb, s.ldq, kb, s.ldk, 0.0f, S + Pc, W);
      softmax_cached_rows(S, L, Pc, c0, P, s.window);
      float* ob = out + (size_t)r0 * s.ldo + (size_t)h * D;
      if (Pc > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, Pc, 1.0f, S, W, vc, s.ldc, 0.0f, ob, s.ldo);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, L, 1.0f, S + Pc, W, vb, s.ldv, 1.0f, ob, s.ldo);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, L, 1.0f, S, W, vb, s.ldv, 0.0f, ob, s.ldo);
      }
    }
  }
}

}  // namespace mindllm::cpu
