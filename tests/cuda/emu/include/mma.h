// CPU emulation of the WMMA API (tests/cuda/emu). One lane of a warp, the last one the schedule
// runs (emu::fragment_lane), holds the whole tile (on a GPU each lane holds a part) and does the
// loads, products and stores; the other lanes' fragments stay unused. Kernels that only fill,
// load, multiply and store fragments (no per-element access) behave as on the GPU. The
// collective calls wait for the whole warp on entry; a load also on exit (nobody overwrites its
// source before it is read), a store not: a lane that reads what other lanes' parts of a store
// wrote needs a __syncwarp first, on a GPU and here (the other lanes run before the writer).
// Products are exact and summed in fp32 in k order (tensor cores: exact products, fp32 sums in an
// unspecified order).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  T x[rows * cols];  // row-major tile
};

namespace detail {
// The documented requirements: a 256-bit aligned pointer, ldm a multiple of 16 bytes.
template <typename T>
void check(const T* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32)
    emu::fail("wmma::%s: pointer %p is not 32-byte aligned (block %u,%u,%u thread %u)", what, (const void*)p,
              blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x);
  if ((ldm * sizeof(T)) % 16)
    emu::fail("wmma::%s: ldm %u is not a multiple of 16 bytes (block %u,%u,%u)", what, ldm, blockIdx.x, blockIdx.y,
              blockIdx.z);
}
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename L, typename V>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, const V& v) {
  for (int i = 0; i < f.num_elements; i++) f.x[i] = T(v);
}

// matrix_a / matrix_b: the layout is the fragment's.
template <typename Use, int M, int N, int K, typename T, typename L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const T* p, unsigned ldm) {
  static_assert(std::is_same_v<L, row_major> || std::is_same_v<L, col_major>);
  detail::check(p, ldm, "load_matrix_sync");
  emu::warp_barrier();  // every lane has arrived (and written what it stored before)
  using F = fragment<Use, M, N, K, T, L>;
  if (emu::lane_id() == emu::fragment_lane())
    for (int r = 0; r < F::rows; r++)
      for (int c = 0; c < F::cols; c++)
        f.x[r * F::cols + c] = std::is_same_v<L, row_major> ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
  emu::warp_barrier();  // every lane has read before any lane writes there again
}

template <int M, int N, int K, typename T>
void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  detail::check(p, ldm, "load_matrix_sync");
  emu::warp_barrier();
  if (emu::lane_id() == emu::fragment_lane())
    for (int r = 0; r < M; r++)
      for (int c = 0; c < N; c++)
        f.x[r * N + c] = layout == mem_row_major ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm];
  emu::warp_barrier();
}

template <int M, int N, int K, typename T>
void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  detail::check(p, ldm, "store_matrix_sync");
  emu::warp_barrier();
  if (emu::lane_id() == emu::fragment_lane())
    for (int r = 0; r < M; r++)
      for (int c = 0; c < N; c++)
        (layout == mem_row_major ? p[(size_t)r * ldm + c] : p[r + (size_t)c * ldm]) = f.x[r * N + c];
}

template <int M, int N, int K, typename TA, typename LA, typename LB, typename TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TA, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  emu::warp_barrier();
  if (emu::lane_id() != emu::fragment_lane()) return;
  fragment<accumulator, M, N, K, TC> out;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; k++) s += (float)a.x[i * K + k] * (float)b.x[k * N + j];
      out.x[i * N + j] = s;
    }
  d = out;
}

}  // namespace nvcuda::wmma
