#include "kernels/cuda/device.h"

#include <mutex>

namespace mindllm::cuda {

void throw_cuda_error(const char* what, const char* expr, const char* file, int line) {
  const char* base = file;
  for (const char* p = file; *p; p++)
    if (*p == '/') base = p + 1;
  internal_error(std::string("CUDA error: ") + what + " (" + expr + " at " + base + ":" + std::to_string(line) + ")");
}

int device_count() {
  // Probed once: without a driver or device the runtime answers with an error, which here
  // means "no GPU" rather than a failure. The error is cleared so later checks don't see it.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

bool available() { return device_count() > 0; }

std::string device_description() {
  if (!available()) return "no GPU";
  int dev = 0;
  MINDLLM_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  MINDLLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.multiProcessorCount) + " SMs)";
}

size_t free_memory() {
  context();
  size_t free_b = 0, total_b = 0;
  MINDLLM_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return free_b;
}

Context& context() {
  static Context* ctx = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    if (!available()) internal_error("CUDA backend used, but no GPU is available");
    auto* c = new Context();
    int dev = 0;
    MINDLLM_CUDA_CHECK(cudaGetDevice(&dev));
    MINDLLM_CUDA_CHECK(cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, dev));
    MINDLLM_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    MINDLLM_CUBLAS_CHECK(cublasLtCreate(&c->cublaslt));
    // 32 MiB: what cuBLAS recommends for Hopper; the same size every run, so the same algorithms
    // (and the same bytes) every run.
    c->workspace_bytes = size_t{32} << 20;
    MINDLLM_CUDA_CHECK(cudaMalloc(&c->workspace, c->workspace_bytes));
    MINDLLM_CUDA_CHECK(cudaMalloc(&c->partials, sizeof(double) * (kReducePartials + 1)));
    c->result = c->partials + kReducePartials;
    ctx = c;
  });
  return *ctx;
}

void synchronize() { MINDLLM_CUDA_CHECK(cudaStreamSynchronize(stream())); }

Arena::~Arena() {
  if (base_) cudaFree(base_);
}

Arena& Arena::operator=(Arena&& o) noexcept {
  std::swap(base_, o.base_);
  std::swap(planned_, o.planned_);
  return *this;
}

size_t Arena::reserve(size_t bytes, size_t align) {
  MINDLLM_CHECK(!base_, "cuda::Arena::reserve after allocate()");
  MINDLLM_CHECK(align && (align & (align - 1)) == 0, "cuda::Arena::reserve: alignment must be a power of two");
  size_t off = (planned_ + align - 1) & ~(align - 1);
  planned_ = off + bytes;
  return off;
}

void Arena::allocate() {
  MINDLLM_CHECK(!base_, "cuda::Arena::allocate called twice");
  if (planned_ == 0) return;
  cudaError_t e = cudaMalloc(&base_, planned_);
  if (e != cudaSuccess) {
    cudaGetLastError();
    base_ = nullptr;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    internal_error("CUDA: cannot allocate the " + std::to_string(planned_ >> 20) + " MiB arena (" +
                   std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) +
                   " MiB): " + cudaGetErrorString(e));
  }
}

}  // namespace mindllm::cuda
