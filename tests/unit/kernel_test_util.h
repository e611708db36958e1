// Shared helpers for the CPU kernel tests: deterministic random fills, float64 copies, error
// measures, central finite differences in float64, and a scoped OpenMP thread count.
#pragma once

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/rng.h"

namespace mindllm::test {

inline std::vector<float> random_normal(size_t n, Rng& rng, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

inline std::vector<float> random_uniform(size_t n, Rng& rng, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

inline double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// max |got - want| over all elements (NaN in `got` gives +inf).
inline double max_abs_err(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double m = 0.0;
  for (size_t i = 0; i < got.size() && i < want.size(); i++) {
    double d = std::fabs((double)got[i] - want[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// max |got - want| relative to the magnitude of `want` (its max |.|; 1 if it is ~0).
inline double rel_err(const std::vector<float>& got, const std::vector<double>& want) {
  double mag = max_abs(want);
  return max_abs_err(got, want) / (mag > 1e-30 ? mag : 1.0);
}

// got - base elementwise, in double: the part a kernel accumulated onto a nonzero start.
inline std::vector<float> minus(const std::vector<float>& got, const std::vector<float>& base) {
  std::vector<float> d(got.size());
  for (size_t i = 0; i < got.size(); i++) d[i] = got[i] - base[i];
  return d;
}

// base + delta in double: the expected value of an accumulated gradient.
inline std::vector<double> plus(const std::vector<float>& base, const std::vector<double>& delta) {
  std::vector<double> r(base.size());
  for (size_t i = 0; i < base.size(); i++) r[i] = base[i] + delta[i];
  return r;
}

inline bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

// Central differences in float64 of a scalar loss(x) with respect to every element of x.
template <typename Loss>
std::vector<double> finite_diff(Loss loss, std::vector<double> x, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); i++) {
    double x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(x);
    x[i] = x0 - h;
    double lm = loss(x);
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// Sets the OpenMP thread count for a scope and restores it.
struct ScopedThreads {
  int saved;
  explicit ScopedThreads(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved); }
};

// Tolerances: a float32 kernel against a float64 reference, and against float64 numeric
// gradients (the finite differences themselves are accurate to ~1e-9 here).
constexpr double kFwdTol = 1e-5;
constexpr double kBwdTol = 1e-5;
constexpr double kFdTol = 1e-4;

}  // namespace mindllm::test

#define EXPECT_REL_LE(got, want, tol)                                                       \
  do {                                                                                      \
    double _e = ::mindllm::test::rel_err((got), (want));                                    \
    EXPECT_LE(_e, (tol)) << #got " vs " #want ": max rel err " << _e;                       \
    if (std::getenv("MINDLLM_TEST_VERBOSE")) std::printf("  [err] %-40s %.3g\n", #got, _e); \
  } while (0)
