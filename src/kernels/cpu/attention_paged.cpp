#include "kernels/cpu/attention_paged.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/dtype.h"
#include "core/env.h"
#include "core/error.h"
#include "core/profile.h"
#include "kernels/cpu/omp_trap.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/vec_math.h"

namespace mindllm::cpu {

namespace {

constexpr int kRows = 3;  // query rows per pass of the AVX-512 prefill path (below)

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

// The element types of the cache's blocks: float, uint16_t (bf16 bits), Q8 (q8_0 blocks). A row
// of position p from `head` on is a pointer (float, bf16) or a Q8Row; at(row, d) is its element d
// as fp32 (exactly; q8_0: the product of the block's scale and int8 in fp32).
struct Q8 {};
struct Q8Row {
  const uint8_t* b;  // the q8_0 block holding the head's element 0
};
constexpr int kQ8Bytes = 2 + kKvQ8Block;

inline float at(const float* r, int d) { return r[d]; }
inline float at(const uint16_t* r, int d) { return bf16_to_float(r[d]); }
inline float at(Q8Row r, int d) {
  const uint8_t* b = r.b + (size_t)(d / kKvQ8Block) * kQ8Bytes;
  uint16_t h;
  std::memcpy(&h, b, sizeof(h));
  return half_to_float(h) * static_cast<float>(static_cast<int8_t>(b[2 + d % kKvQ8Block]));
}

// Row of position p of head `head` in a sequence's blocks (keys or values).
template <typename K>
inline const K* cache_row(const K* const* blocks, const PagedAttentionShape& s, int p, size_t head) {
  return blocks[p / s.block_size] + (size_t)(p % s.block_size) * s.ldc + head;
}
inline Q8Row cache_row(const Q8* const* blocks, const PagedAttentionShape& s, int p, size_t head) {
  const uint8_t* row = reinterpret_cast<const uint8_t*>(blocks[p / s.block_size]) +
                       (size_t)(p % s.block_size) * kv_row_bytes(KvType::q8_0, s.ldc);
  return Q8Row{row + head / kKvQ8Block * kQ8Bytes};
}
template <typename K>
using KvRow = decltype(cache_row(static_cast<const K* const*>(nullptr), std::declval<const PagedAttentionShape&>(), 0,
                                 size_t{0}));

// Decode reads each position's head slice once, and consecutive positions sit a whole cache row
// (every head) apart, in another 4 KiB page for wide models: the hardware prefetchers do not
// follow. So the loops below prefetch the slices of the positions kAhead ahead of the one they
// compute (as far as the sequence goes).
constexpr int kAhead = 48;
inline const void* row_address(const void* r) { return r; }
inline const void* row_address(Q8Row r) { return r.b; }
template <typename K>
inline void prefetch_slice(const K* const* blocks, const PagedAttentionShape& s, int p, size_t head, int values) {
  const char* a = static_cast<const char*>(row_address(cache_row(blocks, s, p, head)));
  const char* end = a + kv_row_bytes(s.kv, values);
  for (const char* l = a; l < end; l += 64) __builtin_prefetch(l);
  __builtin_prefetch(end - 1);
}

// The arithmetic every path below computes, bit for bit (so a row's output never depends on the
// path, the batch or the chunking): q · k in 8 lanes, lane j = fma-chain over d = j, j + 8, ... in
// order, the lanes added as ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)), times the scale;
// the softmax of softmax_paged_rows; out[d] = fma-chain over the positions in order of p_j v_j[d].
template <typename Row>
inline float dot_lanes(const float* q, Row k, int D) {
  float l[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (int d = 0; d < D; d++) l[d & 7] = std::fma(q[d], at(k, d), l[d & 7]);
  return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// Every new row of sequence sq for the query heads of kv head hk: per (row, head) the scores of
// its positions lo .. pos (scores_of), their softmax, then its output (values_of). scores: >= past
// + n_rows floats.
template <typename K, typename Scores, typename Values>
__attribute__((always_inline)) inline void head_rows(float* out, const float* q, const PagedAttentionShape& s,
                                                     const PagedSequence& sq, int hk, float* scores, Scores scores_of,
                                                     Values values_of) {
  const int D = s.D, group = s.Hq / s.Hkv;
  const K* const* kb = reinterpret_cast<const K* const*>(sq.k_blocks);
  const K* const* vb = reinterpret_cast<const K* const*>(sq.v_blocks);
  const size_t head = (size_t)hk * D;
  for (int t = 0; t < sq.n_rows; t++) {
    const int pos = sq.past + t, lo = s.window > 0 ? std::max(0, pos - s.window + 1) : 0, n = pos - lo + 1;
    for (int h = hk * group; h < (hk + 1) * group; h++) {
      scores_of(q + (size_t)(sq.row0 + t) * s.ldq + (size_t)h * D, kb, head, lo, n, scores);
      softmax_paged_rows(scores, 1, n, lo, pos, s.window);
      values_of(scores, vb, head, lo, n, out + (size_t)(sq.row0 + t) * s.ldo + (size_t)h * D);
    }
  }
}

// The portable path (inlined into the SIMD clones below, so the FMAs are the CPU's).
template <typename K>
__attribute__((always_inline)) inline void kv_head_rows(float* out, const float* q, const PagedAttentionShape& s,
                                                        const PagedSequence& sq, int hk, float* scores) {
  const int D = s.D;
  head_rows<K>(
      out, q, s, sq, hk, scores,
      [&](const float* qh, const K* const* kb, size_t head, int lo, int n, float* sc) __attribute__((always_inline)) {
        for (int p = 0; p < n; p++) sc[p] = s.scale * dot_lanes(qh, cache_row(kb, s, lo + p, head), D);
      },
      [&](const float* w, const K* const* vb, size_t head, int lo, int n, float* oh) __attribute__((always_inline)) {
        for (int d = 0; d < D; d++) oh[d] = 0.0f;
        for (int p = 0; p < n; p++) {
          const KvRow<K> v = cache_row(vb, s, lo + p, head);
          for (int d = 0; d < D; d++) oh[d] = std::fma(w[p], at(v, d), oh[d]);
        }
      });
}

MINDLLM_SIMD_CLONES void kv_head_rows_f32(float* out, const float* q, const PagedAttentionShape& s,
                                          const PagedSequence& sq, int hk, float* scores) {
  kv_head_rows<float>(out, q, s, sq, hk, scores);
}
MINDLLM_SIMD_CLONES void kv_head_rows_bf16(float* out, const float* q, const PagedAttentionShape& s,
                                           const PagedSequence& sq, int hk, float* scores) {
  kv_head_rows<uint16_t>(out, q, s, sq, hk, scores);
}
MINDLLM_SIMD_CLONES void kv_head_rows_q8(float* out, const float* q, const PagedAttentionShape& s,
                                         const PagedSequence& sq, int hk, float* scores) {
  kv_head_rows<Q8>(out, q, s, sq, hk, scores);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define MINDLLM_AVX2 __attribute__((target("avx2,fma,f16c")))

// Elements d .. d + 7 of a row (d a multiple of 8) as at() gives them.
MINDLLM_AVX2 inline __m256 load8(const float* r, int d) { return _mm256_loadu_ps(r + d); }
MINDLLM_AVX2 inline __m256 load8(const uint16_t* r, int d) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + d)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
// q8_0: the scale of the block holding element d0, in 8 lanes; elements d .. d + 7 of that block
// times it (the products at() gives: exact, an fp16 times an int8). The loops below convert each
// block's scale once for its four chunks of 8.
MINDLLM_AVX2 inline __m256 q8_scale(Q8Row r, int d0) {
  uint16_t h;
  std::memcpy(&h, r.b + (size_t)(d0 / kKvQ8Block) * kQ8Bytes, sizeof(h));
  return _mm256_set1_ps(_cvtsh_ss(h));
}
MINDLLM_AVX2 inline __m256 q8_widen(Q8Row r, int d, __m256 scale) {
  const uint8_t* q = r.b + (size_t)(d / kKvQ8Block) * kQ8Bytes + 2 + d % kKvQ8Block;
  return _mm256_mul_ps(scale,
                       _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)))));
}
MINDLLM_AVX2 inline __m256 load8(Q8Row r, int d) { return q8_widen(r, d, q8_scale(r, d)); }

// The lane sums of a[0..8) (dot_lanes' tree), one position per output lane: b_j = l_j + l_{j+4}
// (the two 128-bit halves), then (b0 + b1) + (b2 + b3) by two horizontal adds, which leave the
// positions in the order 0, 2, 4, 6, 1, 3, 5, 7.
MINDLLM_AVX2 inline __m256 reduce8(const __m256* a) {
  __m256 b[4];
  for (int j = 0; j < 4; j++)
    b[j] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * j], a[2 * j + 1], 0x20),
                         _mm256_permute2f128_ps(a[2 * j], a[2 * j + 1], 0x31));
  const __m256 c = _mm256_hadd_ps(_mm256_hadd_ps(b[0], b[1]), _mm256_hadd_ps(b[2], b[3]));
  return _mm256_permutevar8x32_ps(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// scores[0..n) = scale · q · k_p for p = lo .. lo + n - 1, eight positions per pass (a short last
// pass repeats its last key and drops the extra lanes: each lane is its own position's sum).
template <typename K>
MINDLLM_AVX2 void scores_avx2(const float* qh, const K* const* kb, const PagedAttentionShape& s, size_t head, int lo,
                              int n, float* scores) {
  const __m256 scale = _mm256_set1_ps(s.scale);
  for (int p0 = 0; p0 < n; p0 += 8) {
    for (int p = p0 + kAhead; p < std::min(p0 + kAhead + 8, n); p++) prefetch_slice(kb, s, lo + p, head, s.D);
    KvRow<K> k[8];
    for (int j = 0; j < 8; j++) k[j] = cache_row(kb, s, lo + std::min(p0 + j, n - 1), head);
    __m256 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
    if constexpr (std::is_same_v<K, Q8>) {
      for (int d0 = 0; d0 < s.D; d0 += kKvQ8Block) {  // per key, its block's 4 chunks in order
        __m256 qv[4];
        for (int c = 0; c < 4; c++) qv[c] = _mm256_loadu_ps(qh + d0 + 8 * c);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
          const __m256 sc = q8_scale(k[j], d0);
          for (int c = 0; c < 4; c++) acc[j] = _mm256_fmadd_ps(qv[c], q8_widen(k[j], d0 + 8 * c, sc), acc[j]);
        }
      }
    } else {
      for (int d = 0; d < s.D; d += 8) {
        const __m256 qv = _mm256_loadu_ps(qh + d);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(qv, load8(k[j], d), acc[j]);
      }
    }
    const __m256 r = _mm256_mul_ps(scale, reduce8(acc));
    if (p0 + 8 <= n) {
      _mm256_storeu_ps(scores + p0, r);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, r);
      std::copy(tmp, tmp + (n - p0), scores + p0);
    }
  }
}

// For R rows r: oh_r[0 .. 8 NV) = sum over p = p0 .. p1 - 1 of w_r[p] v_(lo + p), continuing the
// sums already in oh_r (or from 0: fresh), the accumulators in registers; each value chunk is
// loaded once for the R rows. Per row the same FMA chain whatever R and the ranges.
template <typename K, int NV, int R>
MINDLLM_AVX2 __attribute__((always_inline)) inline void values_rows(const float* const* w, const K* const* vb,
                                                                    const PagedAttentionShape& s, size_t head, int lo,
                                                                    int p0, int p1, float* const* oh, bool fresh) {
  __m256 acc[R][NV];
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NV; j++) acc[r][j] = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(oh[r] + 8 * j);
  for (int p = p0; p < p1; p++) {
    if (p + kAhead < p1) prefetch_slice(vb, s, lo + p + kAhead, head, 8 * NV);
    __m256 wp[R];
    for (int r = 0; r < R; r++) wp[r] = _mm256_broadcast_ss(w[r] + p);
    const KvRow<K> v = cache_row(vb, s, lo + p, head);
    [[maybe_unused]] __m256 sc[2];  // q8_0: the scales of the (at most 2) blocks of these 64 values
    if constexpr (std::is_same_v<K, Q8>)
      for (int b = 0; b < (NV + 3) / 4; b++) sc[b] = q8_scale(v, kKvQ8Block * b);
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++) {
      __m256 vj;
      if constexpr (std::is_same_v<K, Q8>) vj = q8_widen(v, 8 * j, sc[j / 4]);
      else vj = load8(v, 8 * j);
      for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(wp[r], vj, acc[r][j]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(oh[r] + 8 * j, acc[r][j]);
}

// values_rows over the whole head, 64 dimensions at a time.
template <typename K, int R>
MINDLLM_AVX2 __attribute__((always_inline)) inline void values_head(const float* const* w, const K* const* vb,
                                                                    const PagedAttentionShape& s, size_t head, int lo,
                                                                    int p0, int p1, float* const* oh, bool fresh) {
  for (int d0 = 0; d0 < s.D; d0 += 64) {
    const size_t hd = head + d0;
    float* o[R];
    for (int r = 0; r < R; r++) o[r] = oh[r] + d0;
    switch (std::min(8, (s.D - d0) / 8)) {
      case 1: values_rows<K, 1, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 2: values_rows<K, 2, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 3: values_rows<K, 3, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 4: values_rows<K, 4, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 5: values_rows<K, 5, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 6: values_rows<K, 6, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      case 7: values_rows<K, 7, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
      default: values_rows<K, 8, R>(w, vb, s, hd, lo, p0, p1, o, fresh); break;
    }
  }
}

template <typename K>
MINDLLM_AVX2 void values_row_avx2(const float* w, const K* const* vb, const PagedAttentionShape& s, size_t head, int lo,
                                  int n, float* oh) {
  values_head<K, 1>(&w, vb, s, head, lo, 0, n, &oh, true);
}

template <typename K>
void kv_head_rows_avx2(float* out, const float* q, const PagedAttentionShape& s, const PagedSequence& sq, int hk,
                       float* scores) {
  head_rows<K>(
      out, q, s, sq, hk, scores,
      [&](const float* qh, const K* const* kb, size_t head, int lo, int n, float* sc) {
        scores_avx2(qh, kb, s, head, lo, n, sc);
      },
      [&](const float* w, const K* const* vb, size_t head, int lo, int n, float* oh) {
        values_row_avx2(w, vb, s, head, lo, n, oh);
      });
}

// Prefill on AVX-512 (32 vector registers): kRows query rows of a head at once, each key and value
// chunk loaded and widened once for them; per row the arithmetic above, so the same bits.
#define MINDLLM_AVX512VL __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))

// scores_avx2 for R rows against the keys lo .. lo + n - 1, n a multiple of 8.
template <typename K, int R>
MINDLLM_AVX512VL void scores_rows(const float* const* qh, const K* const* kb, const PagedAttentionShape& s, size_t head,
                                  int lo, int n, float* const* sc) {
  const __m256 scale = _mm256_set1_ps(s.scale);
  for (int p0 = 0; p0 < n; p0 += 8) {
    KvRow<K> k[8];
    for (int j = 0; j < 8; j++) k[j] = cache_row(kb, s, lo + p0 + j, head);
    __m256 acc[R][8];
    for (int r = 0; r < R; r++)
      for (int j = 0; j < 8; j++) acc[r][j] = _mm256_setzero_ps();
    if constexpr (std::is_same_v<K, Q8>) {
      for (int d0 = 0; d0 < s.D; d0 += kKvQ8Block)  // per key, its block's 4 chunks in order
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
          const __m256 sc = q8_scale(k[j], d0);
          for (int c = 0; c < 4; c++) {
            const __m256 kv = q8_widen(k[j], d0 + 8 * c, sc);
            for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(_mm256_loadu_ps(qh[r] + d0 + 8 * c), kv, acc[r][j]);
          }
        }
    } else {
      for (int d = 0; d < s.D; d += 8) {
        __m256 qv[R];
        for (int r = 0; r < R; r++) qv[r] = _mm256_loadu_ps(qh[r] + d);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
          const __m256 kv = load8(k[j], d);
          for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(qv[r], kv, acc[r][j]);
        }
      }
    }
    for (int r = 0; r < R; r++) _mm256_storeu_ps(sc[r] + p0, _mm256_mul_ps(scale, reduce8(acc[r])));
  }
}

// kv_head_rows_avx2 for a sequence without a window, kRows rows at a time (the keys all rows
// see together, then each row's own), the last n_rows % kRows rows alone. scores: kRows x (past +
// n_rows) floats.
template <typename K>
MINDLLM_AVX512VL void kv_head_rows_avx512(float* out, const float* q, const PagedAttentionShape& s,
                                          const PagedSequence& sq, int hk, float* scores) {
  constexpr int R = kRows;
  const int D = s.D, group = s.Hq / s.Hkv, stride = sq.past + sq.n_rows;
  const K* const* kb = reinterpret_cast<const K* const*>(sq.k_blocks);
  const K* const* vb = reinterpret_cast<const K* const*>(sq.v_blocks);
  const size_t head = (size_t)hk * D;
  int t0 = 0;
  for (; t0 + R <= sq.n_rows; t0 += R)
    for (int h = hk * group; h < (hk + 1) * group; h++) {
      const float* qh[R];
      float *sc[R], *oh[R];
      int n[R];
      for (int r = 0; r < R; r++) {
        const size_t row = sq.row0 + t0 + r;
        n[r] = sq.past + t0 + r + 1, qh[r] = q + row * s.ldq + (size_t)h * D;
        sc[r] = scores + (size_t)r * stride, oh[r] = out + row * s.ldo + (size_t)h * D;
      }
      const int joint = n[0] / 8 * 8;  // the keys every row sees, whole passes
      scores_rows<K, R>(qh, kb, s, head, 0, joint, sc);
      for (int r = 0; r < R; r++) {
        scores_avx2(qh[r], kb, s, head, joint, n[r] - joint, sc[r] + joint);
        softmax_paged_rows(sc[r], 1, n[r], 0, n[r] - 1, 0);
      }
      values_head<K, R>(sc, vb, s, head, 0, 0, n[0], oh, true);
      for (int r = 1; r < R; r++) values_head<K, 1>(&sc[r], vb, s, head, 0, n[0], n[r], &oh[r], false);
    }
  if (t0 < sq.n_rows) {
    const PagedSequence rest{sq.row0 + t0, sq.n_rows - t0, sq.past + t0, sq.k_blocks, sq.v_blocks};
    kv_head_rows_avx2<K>(out, q, s, rest, hk, scores);
  }
}

bool attention_avx512(int D) {
  static const bool cpu = [] {
    if (env_flag("MINDLLM_NO_AVX512")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
  }();
  return cpu && D % 8 == 0;
}

bool attention_avx2(int D) {
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return cpu && D % 8 == 0;
}
#else
bool attention_avx2(int) { return false; }
bool attention_avx512(int) { return false; }
#endif

}  // namespace

// bf16 and q8_0 rows are the weights' formats (kernels/cpu/quant.h), byte for byte.
void kv_encode_row(KvType t, const float* x, int n, uint8_t* out) {
  static_assert(kKvQ8Block == kQuantBlock && kQ8Bytes == 34, "the K/V cache's q8_0 is the weights' q8_0");
  if (t == KvType::f32) std::memcpy(out, x, sizeof(float) * n);
  else quantize_row(t == KvType::bf16 ? QuantType::bf16 : QuantType::q8_0, x, n, out);
}

void kv_decode_row(KvType t, const uint8_t* in, int n, float* out) {
  if (t == KvType::f32) std::memcpy(out, in, sizeof(float) * n);
  else dequantize_row(t == KvType::bf16 ? QuantType::bf16 : QuantType::q8_0, in, n, out);
}

void attention_paged_forward(float* out, const float* q, const PagedAttentionShape& s) {
  PROFILE("attention_paged");
  if (s.kv == KvType::q8_0)
    MINDLLM_CHECK(s.D % kKvQ8Block == 0 && s.ldc % kKvQ8Block == 0,
                  "attention_paged_forward: q8_0 K/V rows need D and ldc multiples of 32");
  const int jobs = s.n_seqs * s.Hkv;
  int longest = 0;
  for (int i = 0; i < s.n_seqs; i++) longest = std::max(longest, s.seqs[i].past + s.seqs[i].n_rows);
  const bool avx2 = !s.portable && attention_avx2(s.D), avx512 = avx2 && s.window == 0 && attention_avx512(s.D);
  const size_t need = (size_t)longest * (avx512 ? kRows : 1);
  OmpExceptionTrap trap;  // out of memory for the scratch: thrown after the region
#pragma omp parallel if (jobs > 1)
  {
    // Scores of one row (kRows rows on AVX-512); grows to the longest context seen, then no allocation.
    static thread_local std::vector<float> scores;
    const bool ok = trap.run([&] {
      if (scores.size() < need) scores.resize(std::max(need, 2 * scores.size()));
    });
#pragma omp for schedule(dynamic)
    for (int j = 0; j < jobs; j++) {
      if (!ok) continue;
      const PagedSequence& sq = s.seqs[j / s.Hkv];
      const int hk = j % s.Hkv;
      float* sc = scores.data();
#if defined(__x86_64__) && defined(__GNUC__)
      if (avx512 && sq.n_rows >= kRows) {
        if (s.kv == KvType::bf16) kv_head_rows_avx512<uint16_t>(out, q, s, sq, hk, sc);
        else if (s.kv == KvType::q8_0) kv_head_rows_avx512<Q8>(out, q, s, sq, hk, sc);
        else kv_head_rows_avx512<float>(out, q, s, sq, hk, sc);
        continue;
      }
      if (avx2) {
        if (s.kv == KvType::bf16) kv_head_rows_avx2<uint16_t>(out, q, s, sq, hk, sc);
        else if (s.kv == KvType::q8_0) kv_head_rows_avx2<Q8>(out, q, s, sq, hk, sc);
        else kv_head_rows_avx2<float>(out, q, s, sq, hk, sc);
        continue;
      }
#endif
      if (s.kv == KvType::bf16) kv_head_rows_bf16(out, q, s, sq, hk, sc);
      else if (s.kv == KvType::q8_0) kv_head_rows_q8(out, q, s, sq, hk, sc);
      else kv_head_rows_f32(out, q, s, sq, hk, sc);
    }
  }
  trap.rethrow();
}

}  // namespace mindllm::cpu
