#include "kernels/cpu/linear_rows.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <omp.h>

#include "core/profile.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MINDLLM_ROWS_AVX2 1
#define MINDLLM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace mindllm::cpu {

namespace {

constexpr int kRun = 48;  // output features per work item: 192 bytes of an output row
constexpr int kTile = 4;  // activation rows per register tile

// Activation rows per pass over a run's weight rows (out_in): about 256 KiB of them, so they stay
// in L2 while every weight row of the run meets them.
int rows_per_pass(int I) { return std::max(kTile, (int)((256u << 10) / (4u * (unsigned)I)) / kTile * kTile); }

// Portable C++: one multiply-add chain per element in order of i.
void rows_scalar(float* out, const float* in, const float* w, const float* bias, int N, int I, int O, int o0, int o1,
                 WeightLayout layout) {
  for (int n = 0; n < N; n++) {
    const float* x = in + (size_t)n * I;
    for (int o = o0; o < o1; o++) {
      float s = 0.0f;
      if (layout == WeightLayout::out_in) {
        const float* wr = w + (size_t)o * I;
        for (int i = 0; i < I; i++) s += x[i] * wr[i];
      } else {
        for (int i = 0; i < I; i++) s += x[i] * w[(size_t)i * O + o];
      }
      out[(size_t)n * O + o] = bias ? s + bias[o] : s;
    }
  }
}

#ifdef MINDLLM_ROWS_AVX2

MINDLLM_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out_in: out[r][c] = dot(x row r, W row c) (+ bias[c]) for R activation rows x C weight rows.
// Every element: 8 lanes of FMAs over i, hsum8, scalar FMAs over the tail: the same for any R, C.
template <int R, int C>
MINDLLM_AVX2 void dot_tile(const float* x, int I, const float* w, const float* bias, float* out, size_t ldo) {
  __m256 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
  const int I8 = I & ~7;
  for (int i = 0; i < I8; i += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; c++) wv[c] = _mm256_loadu_ps(w + (size_t)c * I + i);
    for (int r = 0; r < R; r++) {
      const __m256 xv = _mm256_loadu_ps(x + (size_t)r * I + i);
      for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      float s = hsum8(acc[r][c]);
      for (int i = I8; i < I; i++) s = std::fma(x[(size_t)r * I + i], w[(size_t)c * I + i], s);
      out[(size_t)r * ldo + c] = bias ? s + bias[c] : s;
    }
}

using DotFn = void (*)(const float*, int, const float*, const float*, float*, size_t);
template <int R>
constexpr DotFn dot_fn(int c) {
  return c == 1 ? &dot_tile<R, 1> : c == 2 ? &dot_tile<R, 2> : c == 3 ? &dot_tile<R, 3> : &dot_tile<R, 4>;
}
DotFn dot_pick(int r, int c) {
  return r == 1 ? dot_fn<1>(c) : r == 2 ? dot_fn<2>(c) : r == 3 ? dot_fn<3>(c) : dot_fn<4>(c);
}

MINDLLM_AVX2 void run_out_in(float* out, const float* in, const float* w, const float* bias, int N, int I, int O,
                             int o0, int o1) {
  const int C = N == 1 ? 4 : 3, pass = rows_per_pass(I);
  for (int n0 = 0; n0 < N; n0 += pass) {
    const int n1 = std::min(N, n0 + pass);
    for (int o = o0; o < o1;) {
      const int c = std::min(C, o1 - o);
      for (int n = n0; n < n1;) {
        const int r = std::min(kTile, n1 - n);
        dot_pick(r, c)(in + (size_t)n * I, I, w + (size_t)o * I, bias ? bias + o : nullptr, out + (size_t)n * O + o, O);
        n += r;
      }
      o += c;
    }
  }
}

// in_out: acc[r][8v..8v+8) += x[r][i] * W[i][8v..] for i in [i0, i1), starting from zero (first
// pass) or from what `out` holds (the chain continues: an fp32 store and load are exact).
template <int R, int V>
MINDLLM_AVX2 void axpy_tile(const float* x, int I, const float* w, int O, int i0, int i1, float* out) {
  __m256 acc[R][V];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++)
      acc[r][v] = i0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out + (size_t)r * O + 8 * v);
  for (int i = i0; i < i1; i++) {
    __m256 wv[V];
    for (int v = 0; v < V; v++) wv[v] = _mm256_loadu_ps(w + (size_t)i * O + 8 * v);
    for (int r = 0; r < R; r++) {
      const __m256 xb = _mm256_set1_ps(x[(size_t)r * I + i]);
      for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) _mm256_storeu_ps(out + (size_t)r * O + 8 * v, acc[r][v]);
}

using AxpyFn = void (*)(const float*, int, const float*, int, int, int, float*);
template <int R>
constexpr AxpyFn axpy_fn(int v) {
  return v == 1   ? &axpy_tile<R, 1>
         : v == 2 ? &axpy_tile<R, 2>
         : v == 3 ? &axpy_tile<R, 3>
         : v == 4 ? &axpy_tile<R, 4>
         : v == 5 ? &axpy_tile<R, 5>
                  : &axpy_tile<R, 6>;
}
AxpyFn axpy_pick(int r, int v) {
  return r == 1 ? axpy_fn<1>(v) : r == 2 ? axpy_fn<2>(v) : r == 3 ? axpy_fn<3>(v) : axpy_fn<4>(v);
}

// in_out over the output columns [o0, o1) (one thread's share, a whole number of runs): blocks of
// 8 (decode) or 16 (batches) rows of W outermost, each across the whole column range, so that W
// streams from memory row by row (sequential streams) and each block is met by every tile of
// activation rows while it is in cache.
MINDLLM_AVX2 void run_in_out(float* out, const float* in, const float* w, const float* bias, int N, int I, int O,
                             int o0, int o1) {
  const int V = N == 1 ? 6 : 3, iblock = N <= kTile ? 8 : 16;
  const int o8 = o0 + (o1 - o0) / 8 * 8;  // columns [o8, o1): scalar FMA chains (the same arithmetic)
  for (int i0 = 0; i0 < I; i0 += iblock) {
    const int i1 = std::min(I, i0 + iblock);
    for (int n = 0; n < N;) {
      const int r = std::min(kTile, N - n);
      const float* x = in + (size_t)n * I;
      float* y = out + (size_t)n * O;
      for (int o = o0; o < o8;) {
        const int v = std::min(V, (o8 - o) / 8);
        axpy_pick(r, v)(x, I, w + o, O, i0, i1, y + o);
        o += 8 * v;
      }
      for (int rr = 0; rr < r; rr++)
        for (int o = o8; o < o1; o++) {
          float acc = i0 == 0 ? 0.0f : y[(size_t)rr * O + o];
          for (int i = i0; i < i1; i++) acc = std::fma(x[(size_t)rr * I + i], w[(size_t)i * O + o], acc);
          y[(size_t)rr * O + o] = acc;
        }
      n += r;
    }
  }
  if (bias)
    for (int n = 0; n < N; n++)
      for (int o = o0; o < o1; o++) out[(size_t)n * O + o] += bias[o];
}

bool use_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}

#endif  // MINDLLM_ROWS_AVX2

}  // namespace

namespace {

void rows_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                  WeightLayout layout, bool avx2) {
  if (N <= 0 || O <= 0) return;
  const int runs = (O + kRun - 1) / kRun;
#ifdef MINDLLM_ROWS_AVX2
  if (avx2 && layout == WeightLayout::in_out) {
    // Each thread one contiguous range of runs: W is read row by row across it.
#pragma omp parallel if (runs > 1)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int r0 = (int)((int64_t)runs * t / nt), r1 = (int)((int64_t)runs * (t + 1) / nt);
      if (r0 < r1) run_in_out(out, inp, weight, bias, N, I, O, r0 * kRun, std::min(O, r1 * kRun));
    }
    return;
  }
#endif
#pragma omp parallel for schedule(static) if (runs > 1)
  for (int k = 0; k < runs; k++) {
    const int o0 = k * kRun, o1 = std::min(O, o0 + kRun);
#ifdef MINDLLM_ROWS_AVX2
    if (avx2) {
      run_out_in(out, inp, weight, bias, N, I, O, o0, o1);
      continue;
    }
#endif
    rows_scalar(out, inp, weight, bias, N, I, O, o0, o1, layout);
  }
}

}  // namespace

void linear_forward_rows(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                         WeightLayout layout) {
  PROFILE("linear_rows");
#ifdef MINDLLM_ROWS_AVX2
  rows_forward(out, inp, weight, bias, N, I, O, layout, use_avx2());
#else
  rows_forward(out, inp, weight, bias, N, I, O, layout, false);
#endif
}

void linear_forward_rows_portable(float* out, const float* inp, const float* weight, const float* bias, int N, int I,
                                  int O, WeightLayout layout) {
  rows_forward(out, inp, weight, bias, N, I, O, layout, false);
}

}  // namespace mindllm::cpu
