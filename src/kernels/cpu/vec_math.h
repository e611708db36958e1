// Vectorizable math for the elementwise kernels. The functions below are branch-free float
// arithmetic, so loops over them vectorize; MINDLLM_SIMD_CLONES compiles a kernel for AVX-512,
// AVX2+FMA and baseline x86-64, and the loader picks the best for the CPU at run time. The
// binary stays portable (MINDLLM_NATIVE is not needed for vector code).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(MINDLLM_NATIVE) && !defined(__SANITIZE_ADDRESS__)
#define MINDLLM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MINDLLM_SIMD_CLONES
#endif

namespace mindllm::cpu {

// exp(x) for x in [-87.3, 88.7] (clamped outside), max relative error 1e-7 (Cephes expf:
// x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, then scale by 2^n).
inline float vexp(float x) {
  x = std::min(std::max(x, -87.3f), 88.7f);
  // round(x / ln2) by the 1.5 * 2^23 trick (no call to floor, so the loop stays vectorizable)
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

// erf(x), Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
inline float verf(float x) {
  float a = std::min(std::max(x, -6.0f), 6.0f);
  float s = a < 0.0f ? -1.0f : 1.0f;
  a = a * s;
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  return s * (1.0f - p * t * vexp(-a * a));
}

// Sums f(i) for i in [0, n) in 16 double lanes added in a fixed order: vectorizable, and the same
// result whatever the vector width.
template <typename F>
inline double lane_sum(size_t n, F f) {
  constexpr size_t kLanes = 16;
  using T = decltype(f(size_t{0}));
  double acc[kLanes] = {0};
  size_t i = 0;
  // The 16 values first, then the 16 double additions: written as one loop, GCC does not
  // vectorize f (e.g. vexp) across the float -> double conversion (4.6x slower softmax sums).
  for (; i + kLanes <= n; i += kLanes) {
    T v[kLanes];
    for (size_t j = 0; j < kLanes; j++) v[j] = f(i + j);
    for (size_t j = 0; j < kLanes; j++) acc[j] += static_cast<double>(v[j]);
  }
  for (; i < n; i++) acc[i % kLanes] += static_cast<double>(f(i));
  double s = 0.0;
  for (size_t j = 0; j < kLanes; j++) s += acc[j];
  return s;
}

// Max of x[0..n) (n > 0) in 16 lanes.
inline float lane_max(const float* x, size_t n) {
  constexpr size_t kLanes = 16;
  float acc[kLanes];
  for (size_t j = 0; j < kLanes; j++) acc[j] = x[0];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; j++) acc[j] = std::max(acc[j], x[i + j]);
  for (; i < n; i++) acc[0] = std::max(acc[0], x[i]);
  float m = acc[0];
  for (size_t j = 1; j < kLanes; j++) m = std::max(m, acc[j]);
  return m;
}

}  // namespace mindllm::cpu

namespace mindllm::cpu {

// Runs f(begin, end) over [0, n) in chunks of `grain`, chunks spread over the OpenMP threads (no
// parallel region for a single chunk: a decode step runs many such small ops).
template <typename F>
inline void parallel_ranges(size_t n, size_t grain, F f) {
  const size_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (size_t c = 0; c < chunks; c++) f(c * grain, std::min(n, (c + 1) * grain));
}

}  // namespace mindllm::cpu
