// The CUDA backend's device plumbing: is there a GPU, error checks that throw mindllm::Error,
// the per-process context every op runs on (one stream, one cuBLASLt handle and its workspace),
// and a memory arena planned before the first training step.
//
// Every op in src/kernels/cuda has the signature of its CPU twin in src/kernels/cpu (namespace
// mindllm::cuda, same argument order) with device pointers, and runs asynchronously on
// context().stream. bf16 overloads take `bf16*` activations/weights and accumulate in fp32.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mindllm::cuda {

using bf16 = __nv_bfloat16;

// Number of usable GPUs: 0 (not an error) when there is no device or no driver.
int device_count();
// True when at least one GPU can run kernels.
bool available();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" or "no GPU".
std::string device_description();
// Bytes of device memory free now (creates the CUDA context first, so its share is already gone).
size_t free_memory();

[[noreturn]] void throw_cuda_error(const char* what, const char* expr, const char* file, int line);

// Checks a CUDA runtime call; a failure throws mindllm::Error (internal) with the CUDA message.
#define MINDLLM_CUDA_CHECK(expr)                                                                    \
  do {                                                                                              \
    cudaError_t _mindllm_e = (expr);                                                                \
    if (_mindllm_e != cudaSuccess)                                                                  \
      ::mindllm::cuda::throw_cuda_error(cudaGetErrorString(_mindllm_e), #expr, __FILE__, __LINE__); \
  } while (0)
// After a kernel launch: reports a bad launch configuration at once.
#define MINDLLM_CUDA_CHECK_LAUNCH() MINDLLM_CUDA_CHECK(cudaGetLastError())
// Checks a cuBLAS(Lt) call.
#define MINDLLM_CUBLAS_CHECK(expr)                                                                       \
  do {                                                                                                   \
    cublasStatus_t _mindllm_s = (expr);                                                                  \
    if (_mindllm_s != CUBLAS_STATUS_SUCCESS)                                                             \
      ::mindllm::cuda::throw_cuda_error(cublasLtGetStatusString(_mindllm_s), #expr, __FILE__, __LINE__); \
  } while (0)

// Per-process state of the backend, created on first use on the current device and kept until
// exit (never freed: the driver reclaims it, and a destructor running after the driver shut
// down would fail). Everything here is allocated once, so the step loop allocates nothing.
struct Context {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  void* workspace = nullptr;  // cuBLASLt workspace
  size_t workspace_bytes = 0;
  double* partials = nullptr;  // kReducePartials doubles for deterministic reductions
  double* result = nullptr;    // one double (device) for sum_of_squares' host return
  int sm_count = 0;
};
constexpr int kReducePartials = 1024;
Context& context();
inline cudaStream_t stream() { return context().stream; }
// Waits for all work queued on the context's stream; rethrows an asynchronous kernel error.
void synchronize();

// One device allocation carved into pieces planned up front (llm.c style): reserve() every buffer
// of a training step, then allocate() once. No cudaMalloc after that, so the step loop cannot
// fragment memory or fail half way for lack of it.
class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&& o) noexcept { *this = std::move(o); }
  Arena& operator=(Arena&& o) noexcept;

  // Plans `bytes` at an offset aligned to `align` (a power of two); returns the offset. Only
  // before allocate().
  size_t reserve(size_t bytes, size_t align = 256);
  template <typename T>
  size_t reserve_n(size_t count) {
    return reserve(count * sizeof(T), 256);
  }
  // The single cudaMalloc (throws with the byte count when the GPU has too little memory).
  void allocate();
  bool allocated() const { return base_ != nullptr; }
  size_t bytes() const { return planned_; }
  template <typename T>
  T* at(size_t offset) const {
    MINDLLM_CHECK(base_ && offset <= planned_, "cuda::Arena::at before allocate() or out of range");
    return reinterpret_cast<T*>(static_cast<char*>(base_) + offset);
  }

 private:
  void* base_ = nullptr;
  size_t planned_ = 0;
};

// A typed device array with its own allocation (tests and one-off setup; the training step uses
// the Arena). Copies are synchronous.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n) MINDLLM_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  T* data() const { return p_; }
  size_t size() const { return n_; }
  // Copies go through the context's stream (a non-blocking stream does not wait for the legacy
  // default stream that plain cudaMemcpy uses), then wait.
  void upload(const std::vector<T>& host) {
    MINDLLM_CHECK(host.size() == n_, "cuda::DeviceBuffer::upload: size mismatch");
    if (n_) MINDLLM_CUDA_CHECK(cudaMemcpyAsync(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice, stream()));
    synchronize();
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) MINDLLM_CUDA_CHECK(cudaMemcpyAsync(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, stream()));
    synchronize();
    return host;
  }
  // Every byte set to `byte` (0xFF makes float and bf16 NaN: poison for unwritten elements).
  void fill_bytes(int byte) {
    if (n_) MINDLLM_CUDA_CHECK(cudaMemsetAsync(p_, byte, n_ * sizeof(T), stream()));
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace mindllm::cuda
