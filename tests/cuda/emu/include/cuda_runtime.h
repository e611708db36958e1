// CPU emulation of the parts of the CUDA runtime that mindllm uses, so that the CUDA kernels and
// the GPU model path can *execute* on a machine without a GPU (tests/cuda/emu/README.md).
//
// Not a simulator of a GPU's timing or of its memory model: every block runs alone, its threads
// as fibers on one OS thread, switched at barriers (__syncthreads, __syncwarp, warp shuffles,
// WMMA's collective calls). What it does check, and real GPUs do not always report:
//   - launch configurations (block and grid limits, dynamic shared memory beyond 48 KiB without
//     cudaFuncSetAttribute, beyond the opt-in limit at all);
//   - pointer arguments of kernels that are not inside a cudaMalloc'ed allocation (a host
//     pointer, or a dangling one);
//   - memcpy/memset ranges that leave their allocation, copies whose direction is wrong;
//   - threads of one block or warp waiting at different barriers (a deadlock on a GPU);
//   - WMMA pointers that are not 32-byte aligned and leading dimensions not a multiple of 16 bytes.
// Fresh device memory and each block's dynamic shared memory are filled with 0xFF bytes (NaN as
// float or bf16; MINDLLM_EMU_POISON=7f makes it 3.4e38, which fmaxf does not ignore), so reading
// what no kernel wrote shows.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- types --------------------------------------------------------------------------------

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorNoDevice = 100,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

// Only what mindllm's sources use; a missing name is a compile error that says what to add.
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_16BF = 14,
};
using cudaDataType = cudaDataType_t;

// A vector type with the GPU's alignment (a misaligned vector access is an error there; here the
// compiler's aligned moves usually fault the same way).
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

struct CUstream_st;
using cudaStream_t = CUstream_st*;
constexpr unsigned cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int major;
  int minor;
  int multiProcessorCount;
};

// ---- runtime API --------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMemset2DAsync(void* p, size_t pitch, int value, size_t width, size_t height, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);

namespace emu {
cudaError_t set_function_attribute(const void* fn, cudaFuncAttribute attr, int value);
}
template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  return emu::set_function_attribute(reinterpret_cast<const void*>(fn), attr, value);
}

// ---- device code ----------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a function-local static is exactly one block's shared memory.
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __trap() ::emu::trap(__FILE__, __LINE__)

// The running thread's coordinates: set by the scheduler before it resumes a thread's fiber.
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {
[[noreturn]] void trap(const char* file, int line);
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Barriers: the calling thread's fiber waits until every (live) thread of its block / warp waits.
void block_barrier();
void warp_barrier();
// The calling thread's lane and a 32 x 8-byte exchange area of its warp (for shuffles).
int lane_id();
// The lane that holds a warp's WMMA fragments: the last one the schedule runs.
int fragment_lane();
uint64_t* warp_slots();
unsigned char* dynamic_smem();

template <typename T>
T shfl(T v, int src_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  uint64_t* slots = warp_slots();
  std::memcpy(&slots[lane_id()], &v, sizeof(T));
  warp_barrier();
  T r;
  std::memcpy(&r, &slots[src_lane & 31], sizeof(T));
  warp_barrier();  // nobody overwrites a slot before every lane has read
  return r;
}
}  // namespace emu

inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp_barrier(); }
template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) {
  return emu::shfl(v, emu::lane_id() ^ lane_mask);
}

// The device math functions that host C++ lacks, and CUDA's global min/max.
using std::isfinite;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  return a < b ? a : b;
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// ---- kernel launches ------------------------------------------------------------------------
// tests/cuda/emu/translate.py rewrites `kernel<<<grid, block, smem, stream>>>(args)` into
// `::emu::launch(kernel, grid, block, smem, stream)(args)`.

namespace emu {
struct LaunchConfig {
  dim3 grid, block;
  size_t smem = 0;
  const void* fn = nullptr;
};
// Checks the configuration (a bad one sets the error cudaGetLastError returns, as a launch
// does), then runs every block: body(ctx) once per thread.
void run(const LaunchConfig& cfg, void (*body)(void*), void* ctx);
// Whether [p, p + bytes) lies inside one live cudaMalloc allocation.
bool is_device(const void* p, size_t bytes = 1);
void bad_pointer_argument(const void* fn, int index, const void* p);

template <typename... P>
struct Launcher {
  void (*fn)(P...);
  LaunchConfig cfg;
  template <typename... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);  // converted once, as a launch does
    check(args, std::index_sequence_for<P...>{});
    struct Ctx {
      void (*fn)(P...);
      std::tuple<std::decay_t<P>...>* args;
    } ctx{fn, &args};
    run(
        cfg,
        [](void* c) {
          auto* x = static_cast<Ctx*>(c);
          std::apply(x->fn, *x->args);
        },
        &ctx);
  }
  template <typename Tuple, size_t... I>
  void check(const Tuple& t, std::index_sequence<I...>) const {
    (check_one((int)I, std::get<I>(t)), ...);
  }
  template <typename T>
  void check_one(int i, const T& v) const {
    if constexpr (std::is_pointer_v<T>)
      if (v != nullptr && !is_device(v)) bad_pointer_argument(cfg.fn, i, v);
  }
};

template <typename... P>
Launcher<P...> launch(void (*fn)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t = nullptr) {
  return Launcher<P...>{fn, LaunchConfig{grid, block, smem, reinterpret_cast<const void*>(fn)}};
}
}  // namespace emu
