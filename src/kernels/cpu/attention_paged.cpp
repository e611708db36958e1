#include "kernels/cpu/attention_paged.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/profile.h"
#include "kernels/cpu/omp_trap.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

// S: L rows × n columns of scores against keys at positions c0 .. c0 + n - 1; row t (position
// past + t) becomes the softmax over its allowed keys, zeros elsewhere.
MINDLLM_SIMD_CLONES void softmax_paged_rows(float* S, int L, int n, int c0, int past, int window) {
  for (int t = 0; t < L; t++) {
    float* row = S + (size_t)t * n;
    const int abs_t = past + t;
    const int lo = (window > 0) ? std::max(abs_t - window + 1, 0) : 0;
    const int a = std::max(lo - c0, 0), b = abs_t - c0 + 1;  // allowed columns [a, b)
    const float mx = lane_max(row + a, b - a);
    for (int j = a; j < b; j++) row[j] = vexp(row[j] - mx);
    const double sum = lane_sum(b - a, [&](size_t j) { return row[a + j]; });
    const float inv = static_cast<float>(1.0 / sum);
    for (int j = 0; j < a; j++) row[j] = 0.0f;
    for (int j = a; j < b; j++) row[j] *= inv;
    for (int j = b; j < n; j++) row[j] = 0.0f;
  }
}

}  // namespace

void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s) {
  PROFILE("attention_paged");
  const int D = s.D, group = s.Hq / s.Hkv, bs = s.block_size;
  const int jobs = s.n_seqs * s.Hkv;
  OmpExceptionTrap trap;  // out of memory for the scratch: thrown after the region
#pragma omp parallel
  {
    std::vector<float> keys, values, scores;
#pragma omp for schedule(dynamic)
    for (int j = 0; j < jobs; j++) {
      const PagedSequence& sq = s.seqs[j / s.Hkv];
      const int hk = j % s.Hkv, L = sq.n_rows, end = sq.past + L;
      if (L == 0) continue;
      // Keys some row can see: from the first row's window start to the last row.
      const int c0 = (s.window > 0) ? std::max(0, sq.past - s.window + 1) : 0, n = end - c0;
      // Gather this kv head's keys and values into contiguous [n, D] rows.
      if (!trap.run([&] { keys.resize((size_t)n * D), values.resize((size_t)n * D), scores.resize((size_t)L * n); }))
        continue;
      for (int p = c0; p < end; p++) {
        const size_t off = (size_t)(p % bs) * s.ldc + (size_t)hk * D;
        std::memcpy(keys.data() + (size_t)(p - c0) * D, sq.k_blocks[p / bs] + off, sizeof(float) * D);
        std::memcpy(values.data() + (size_t)(p - c0) * D, sq.v_blocks[p / bs] + off, sizeof(float) * D);
      }
      for (int h = hk * group; h < (hk + 1) * group; h++) {
        const float* qh = q + (size_t)sq.row0 * s.ldq + (size_t)h * D;
        float* oh = out + (size_t)sq.row0 * s.ldo + (size_t)h * D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, n, D, s.scale, qh, s.ldq, keys.data(), D, 0.0f,
                    scores.data(), n);
        softmax_paged_rows(scores.data(), L, n, c0, sq.past, s.window);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, D, n, 1.0f, scores.data(), n, values.data(), D, 0.0f,
                    oh, s.ldo);
      }
    }
  }
  trap.rethrow();
}

}  // namespace mindllm::cpu
