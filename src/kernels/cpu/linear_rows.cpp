#include "kernels/cpu/linear_rows.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <omp.h>

#include "core/error.h"
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
// in_out: up to kFewRows rows (decode batches) in one or two register tiles per strip of W; from
// kManyRows rows (prefill), W copied in blocks of kPackRows x kPackCols (192 KiB, in L2) as strips
// of kStrip columns (run_in_out).
constexpr int kFewRows = 8, kManyRows = 32;
constexpr int kPackRows = 64, kPackCols = 768, kStrip = 24;

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

// in_out: acc[r][8v..8v+8) += x[r][k] * W[k][8v..] for k in [0, n) (x: R rows ldx apart, W: n rows
// ldw apart), starting from zero (`first`) or from what `out` holds (the chain continues: an fp32
// store and load are exact).
template <int R, int V>
MINDLLM_AVX2 inline __attribute__((always_inline)) void axpy_tile(const float* x, int ldx, const float* w, size_t ldw,
                                                                  float* out, size_t ldo, int n, bool first) {
  __m256 acc[R][V];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) acc[r][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(out + r * ldo + 8 * v);
  for (int k = 0; k < n; k++) {
    __m256 wv[V];
    for (int v = 0; v < V; v++) wv[v] = _mm256_loadu_ps(w + k * ldw + 8 * v);
    for (int r = 0; r < R; r++) {
      const __m256 xb = _mm256_set1_ps(x[(size_t)r * ldx + k]);
      for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(xb, wv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) _mm256_storeu_ps(out + r * ldo + 8 * v, acc[r][v]);
}

// `strips` strips of 8V columns side by side, each met by a tile of R rows and then (R2 > 0) one of
// the next R2 rows while it is in L1: one call per block of W rows, not one per strip.
template <int R, int V, int R2 = 0>
MINDLLM_AVX2 void axpy_strips(const float* x, int ldx, const float* w, size_t ldw, float* out, size_t ldo, int n,
                              bool first, int strips) {
  for (int s = 0; s < strips; s++, w += 8 * V, out += 8 * V) {
    axpy_tile<R, V>(x, ldx, w, ldw, out, ldo, n, first);
    if constexpr (R2 > 0) axpy_tile<R2, V>(x + (size_t)R * ldx, ldx, w, ldw, out + R * ldo, ldo, n, first);
  }
}

using AxpyFn = void (*)(const float*, int, const float*, size_t, float*, size_t, int, bool, int);
// Tiles of r rows (2 x 4 for r = 7, 8), v vectors wide: r x v <= 12 accumulators.
template <int V>
AxpyFn axpy_pick_v(int r) {
  if constexpr (V > 2) MINDLLM_CHECK(r <= 4, "linear_rows: a tile of more than 12 accumulators");
  switch (r) {
    case 1: return &axpy_strips<1, V>;
    case 2: return &axpy_strips<2, V>;
    case 3: return &axpy_strips<3, V>;
    case 4: return &axpy_strips<4, V>;
    case 5: return &axpy_strips < 5, V <= 2 ? V : 2 > ;
    case 6: return &axpy_strips < 6, V <= 2 ? V : 2 > ;
    case 7: return &axpy_strips < 4, V <= 2 ? V : 2, 3 > ;
    default: return &axpy_strips < 4, V <= 2 ? V : 2, 4 > ;
  }
}
AxpyFn axpy_pick(int r, int v) {
  switch (v) {
    case 1: return axpy_pick_v<1>(r);
    case 2: return axpy_pick_v<2>(r);
    case 3: return axpy_pick_v<3>(r);
    case 4: return axpy_pick_v<4>(r);
    case 5: return axpy_pick_v<5>(r);
    default: return axpy_pick_v<6>(r);
  }
}

// Columns [o8, o1) of rows [0, r), W rows [i0, i1): scalar FMA chains (the same arithmetic).
MINDLLM_AVX2 void axpy_tail(const float* x, int I, const float* w, int O, int i0, int i1, float* y, int r, int o8,
                            int o1) {
  for (int rr = 0; rr < r; rr++)
    for (int o = o8; o < o1; o++) {
      float acc = i0 == 0 ? 0.0f : y[(size_t)rr * O + o];
      for (int i = i0; i < i1; i++) acc = std::fma(x[(size_t)rr * I + i], w[(size_t)i * O + o], acc);
      y[(size_t)rr * O + o] = acc;
    }
}

// Floats from one strip to the next: n rows of kStrip, plus a cache line so that the strips do
// not all start in the same L1 set (n * 96 bytes is often a multiple of 4 KiB).
size_t strip_stride(int n) { return (size_t)n * kStrip + 16; }

// W's rows [i0, i0 + n) x columns [c0, c1) into strips of kStrip columns: strip s holds n rows of
// kStrip floats, contiguous, strip_stride(n) floats apart (the first (c1 - c0) - s * kStrip of them in the last strip).
MINDLLM_AVX2 void pack_strips(float* buf, const float* w, int O, int i0, int n, int c0, int c1) {
  for (int k = 0; k < n; k++) {
    const float* src = w + (size_t)(i0 + k) * O;
    float* dst = buf + (size_t)k * kStrip;
    for (int c = c0; c < c1; c += 8) {  // c1 - c0: a multiple of 8
      const int s = (c - c0) / kStrip;
      _mm256_storeu_ps(dst + s * strip_stride(n) + (c - c0 - s * kStrip), _mm256_loadu_ps(src + c));
    }
  }
}

// in_out over the output columns [o0, o1) (one thread's share, a whole number of runs), W read in
// place in blocks of `ib` rows. Decode batches (N <= kFewRows): per block, each strip of 8V
// columns meets the activation rows in one or two register tiles of R rows while it is in L1, so
// W is read from memory once, row by row. Up to kManyRows: tiles of kTile rows, each across the
// whole column range of a block (the block stays in L2).
MINDLLM_AVX2 void in_out_direct(float* out, const float* in, const float* w, int N, int I, int O, int o0, int o8,
                                int o1) {
  const bool few = N <= kFewRows;
  const int R = few ? N : kTile;             // few: one tile of N rows, or two of 4 + (N - 4)
  const int V = N == 1 ? 6 : R > 4 ? 2 : 3;  // R x V <= 12 accumulators
  const int strips = (o8 - o0) / (8 * V), v_rest = (o8 - o0) / 8 - strips * V;  // then a narrower strip
  const int ib = few ? 8 : 16;
  for (int i0 = 0; i0 < I; i0 += ib) {
    const int n = std::min(I - i0, ib);
    for (int t0 = 0; t0 < N; t0 += R) {
      const int r = std::min(R, N - t0);
      const float* x = in + (size_t)t0 * I + i0;
      const float* wb = w + (size_t)i0 * O + o0;
      float* y = out + (size_t)t0 * O + o0;
      axpy_pick(r, V)(x, I, wb, O, y, O, n, i0 == 0, strips);
      if (v_rest) axpy_pick(r, v_rest)(x, I, wb + 8 * V * strips, O, y + 8 * V * strips, O, n, i0 == 0, 1);
    }
    axpy_tail(in, I, w, O, i0, i0 + n, out, N, o8, o1);
  }
}

// More rows (prefill chunks): W's rows are 4 x O bytes apart, often a multiple of 4 KiB (GPT-2:
// O = 768, 2304, 3072), so a strip of W read in place is met by the tiles from a few L1/L2 sets and
// evicted between them. Like BLAS, blocks of kPackRows x kPackCols of W are first copied (rows read
// in order) into contiguous strips of kStrip columns, which every tile of kTile rows then reads from
// cache, its accumulators in registers for the block's kPackRows rows.
MINDLLM_AVX2 void in_out_packed(float* out, const float* in, const float* w, int N, int I, int O, int o0, int o8,
                                int o1) {
  thread_local std::vector<float> buf;
  buf.resize(strip_stride(kPackRows) * (kPackCols / kStrip));
  for (int c0 = o0; c0 < o8; c0 += kPackCols) {
    const int c1 = std::min(o8, c0 + kPackCols);
    for (int i0 = 0; i0 < I; i0 += kPackRows) {
      const int n = std::min(I - i0, kPackRows);
      pack_strips(buf.data(), w, O, i0, n, c0, c1);
      for (int c = c0, s = 0; c < c1; c += kStrip, s++) {
        const AxpyFn tile = axpy_pick(kTile, std::min(kStrip, c1 - c) / 8);
        const float* ws = buf.data() + s * strip_stride(n);
        for (int r0 = 0; r0 < N; r0 += kTile) {
          const float* x = in + (size_t)r0 * I + i0;
          float* y = out + (size_t)r0 * O + c;
          if (N - r0 >= kTile) tile(x, I, ws, kStrip, y, O, n, i0 == 0, 1);
          else axpy_pick(N - r0, std::min(kStrip, c1 - c) / 8)(x, I, ws, kStrip, y, O, n, i0 == 0, 1);
        }
      }
    }
  }
  axpy_tail(in, I, w, O, 0, I, out, N, o8, o1);
}

MINDLLM_AVX2 void run_in_out(float* out, const float* in, const float* w, const float* bias, int N, int I, int O,
                             int o0, int o1) {
  const int o8 = o0 + (o1 - o0) / 8 * 8;  // columns [o8, o1): scalar FMA chains (axpy_tail)
  if (N < kManyRows) in_out_direct(out, in, w, N, I, O, o0, o8, o1);
  else in_out_packed(out, in, w, N, I, O, o0, o8, o1);
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
