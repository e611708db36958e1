#include "kernels/cpu/attention_paged.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
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

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// q · k over D elements: lane j sums the elements j, j + 8, ... in order; the lanes are added in a
// fixed tree.
template <typename K>
__attribute__((always_inline)) inline float dot8(const float* q, const K* k, int D) {
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int d = 0;
  for (; d + 8 <= D; d += 8)
    for (int j = 0; j < 8; j++) acc[j] += q[d + j] * to_f32(k[d + j]);
  for (; d < D; d++) acc[d & 7] += q[d] * to_f32(k[d]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Every new row of sequence sq for the query heads of kv head hk. scores: >= past + n_rows floats.
template <typename K>
__attribute__((always_inline)) inline void kv_head_rows(float* out, const float* q, const PagedAttentionShape& s,
                                                        const PagedSequence& sq, int hk, float* scores) {
  const int D = s.D, bs = s.block_size, group = s.Hq / s.Hkv;
  const K* const* kb = reinterpret_cast<const K* const*>(sq.k_blocks);
  const K* const* vb = reinterpret_cast<const K* const*>(sq.v_blocks);
  const size_t head = (size_t)hk * D;
  for (int t = 0; t < sq.n_rows; t++) {
    const int pos = sq.past + t, lo = s.window > 0 ? std::max(0, pos - s.window + 1) : 0, n = pos - lo + 1;
    for (int h = hk * group; h < (hk + 1) * group; h++) {
      const float* qh = q + (size_t)(sq.row0 + t) * s.ldq + (size_t)h * D;
      float* oh = out + (size_t)(sq.row0 + t) * s.ldo + (size_t)h * D;
      for (int p = lo; p <= pos; p++)
        scores[p - lo] = s.scale * dot8(qh, kb[p / bs] + (size_t)(p % bs) * s.ldc + head, D);
      softmax_paged_rows(scores, 1, n, lo, pos, s.window);
      for (int d = 0; d < D; d++) oh[d] = 0.0f;
      for (int p = lo; p <= pos; p++) {
        const float w = scores[p - lo];
        const K* v = vb[p / bs] + (size_t)(p % bs) * s.ldc + head;
        for (int d = 0; d < D; d++) oh[d] += w * to_f32(v[d]);
      }
    }
  }
}

MINDLLM_SIMD_CLONES void kv_head_rows_f32(float* out, const float* q, const PagedAttentionShape& s,
                                          const PagedSequence& sq, int hk, float* scores) {
  kv_head_rows<float>(out, q, s, sq, hk, scores);
}
MINDLLM_SIMD_CLONES void kv_head_rows_bf16(float* out, const float* q, const PagedAttentionShape& s,
                                           const PagedSequence& sq, int hk, float* scores) {
  kv_head_rows<uint16_t>(out, q, s, sq, hk, scores);
}

}  // namespace

void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s) {
  PROFILE("attention_paged");
  const int jobs = s.n_seqs * s.Hkv;
  int longest = 0;
  for (int i = 0; i < s.n_seqs; i++) longest = std::max(longest, s.seqs[i].past + s.seqs[i].n_rows);
  OmpExceptionTrap trap;  // out of memory for the scratch: thrown after the region
#pragma omp parallel if (jobs > 1)
  {
    // Scores of one row; grows to the longest context seen, then no allocation.
    static thread_local std::vector<float> scores;
    const bool ok = trap.run([&] {
      if (scores.size() < (size_t)longest) scores.resize(std::max((size_t)longest, 2 * scores.size()));
    });
#pragma omp for schedule(dynamic)
    for (int j = 0; j < jobs; j++) {
      if (!ok) continue;
      const PagedSequence& sq = s.seqs[j / s.Hkv];
      if (s.bf16) kv_head_rows_bf16(out, q, s, sq, j % s.Hkv, scores.data());
      else kv_head_rows_f32(out, q, s, sq, j % s.Hkv, scores.data());
    }
  }
  trap.rethrow();
}

}  // namespace mindllm::cpu
