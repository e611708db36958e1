// Shared helpers for the GPU tests: every CUDA op is run on fresh random inputs next to its CPU
// twin (src/kernels/cpu), outputs are poisoned (NaN) first so unwritten elements show, and each
// op runs twice to check that its reductions give the same bytes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/device.h"

#define SKIP_WITHOUT_GPU() \
  if (!::mindllm::cuda::available()) GTEST_SKIP() << "skipped: no GPU"

namespace mindllm::cudatest {

using cuda::bf16;
using cuda::DeviceBuffer;

// Tolerances (max |gpu - cpu| / max |cpu|): fp32 kernels, and bf16 kernels against the CPU run
// on the same bf16-rounded inputs.
constexpr double kF32Tol = 1e-5;
constexpr double kBf16Tol = 1e-2;

inline std::vector<float> random_normal(size_t n, Rng& rng, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

// Rounds every value to bf16 (so CPU and GPU see the same inputs on bf16 paths).
inline std::vector<float> round_bf16(std::vector<float> v) {
  for (auto& x : v) x = bf16_to_float(float_to_bf16(x));
  return v;
}

inline std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> r(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    __nv_bfloat16_raw raw;
    raw.x = float_to_bf16(v[i]);
    r[i] = bf16(raw);
  }
  return r;
}

inline std::vector<float> to_float(const std::vector<bf16>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    __nv_bfloat16_raw raw = v[i];
    r[i] = bf16_to_float(raw.x);
  }
  return r;
}

// A device copy of host data.
template <typename T>
DeviceBuffer<T> dev(const std::vector<T>& host) {
  return DeviceBuffer<T>(host);
}
// A device buffer of n NaNs (bytes 0xFF).
template <typename T>
DeviceBuffer<T> poisoned(size_t n) {
  DeviceBuffer<T> b(n);
  b.fill_bytes(0xFF);
  return b;
}

// max |got - want| / max |want| (1 if want is ~0); a NaN anywhere in got gives +inf.
inline double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double mag = 0.0, err = 0.0;
  for (size_t i = 0; i < want.size(); i++) mag = std::max(mag, std::fabs((double)want[i]));
  for (size_t i = 0; i < got.size(); i++) {
    double d = std::fabs((double)got[i] - (double)want[i]);
    if (std::isnan(d)) return INFINITY;
    err = std::max(err, d);
  }
  return err / (mag > 1e-30 ? mag : 1.0);
}

inline bool same_bytes(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }
template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && same_bytes(a.data(), b.data(), a.size() * sizeof(T));
}

// Records the worst error of a test as a gtest property (scripts/gpu-check.sh prints it).
inline void record_err(double e) {
  static thread_local std::string last_test;
  static thread_local double worst = 0.0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "";
  if (name != last_test) last_test = name, worst = 0.0;
  if (!(e <= worst)) worst = e;  // NaN/inf stick
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", worst);
  ::testing::Test::RecordProperty("max_rel_err", buf);
}

// Float64 softmax of query row t of head h in batch b: p[j] for its visible keys j in [lo, t]
// (lo = the window's first key; p elsewhere untouched). q and k point at the q and k buffers
// with s's strides. Returns lo and sets lse = log Σ exp(scale · q_t·k_j).
inline int ref_softmax_row(std::vector<double>& p, double& lse, const float* q, const float* k,
                           const cpu::AttentionShape& s, int b, int h, int t) {
  const int lo = cpu::first_key(s, b, t);  // window and packed segment (s.seg_start on the host)
  const float* qr = q + ((size_t)b * s.T + t) * s.ldq + (size_t)h * s.D;
  double mx = -INFINITY, sum = 0.0;
  p.resize(s.T);
  for (int j = lo; j <= t; j++) {
    const float* kr = k + ((size_t)b * s.T + j) * s.ldk + (size_t)(h / (s.Hq / s.Hkv)) * s.D;
    double dot = 0.0;
    for (int d = 0; d < s.D; d++) dot += (double)qr[d] * kr[d];
    p[j] = dot * s.scale;
    mx = std::max(mx, p[j]);
  }
  for (int j = lo; j <= t; j++) sum += std::exp(p[j] - mx);
  for (int j = lo; j <= t; j++) p[j] = std::exp(p[j] - mx) / sum;
  lse = mx + std::log(sum);
  return lo;
}

}  // namespace mindllm::cudatest

// EXPECT that a GPU result (host vector of float) is within `tol` of the CPU result.
#define EXPECT_CLOSE(got, want, tol)                                  \
  do {                                                                \
    double _e = ::mindllm::cudatest::rel_err((got), (want));          \
    ::mindllm::cudatest::record_err(_e);                              \
    EXPECT_LE(_e, (tol)) << #got " vs " #want ": max rel err " << _e; \
  } while (0)
