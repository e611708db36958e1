#include "kernels/cuda/cross_entropy.h"

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kThreads = 512;

// Max and sum of exp(x - max) of one row (every thread gets both).
template <typename T>
__device__ void row_max_sum(const T* x, int V, float* red, float* mx_out, float* sum_out) {
  float mx = -FLT_MAX;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, to_float(x[i]));
  mx = block_max(mx, red);
  float s = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(to_float(x[i]) - mx);
  *mx_out = mx;
  *sum_out = block_sum(s, red);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    xent_forward_kernel(float* losses, const T* logits, const int32_t* targets, int V) {
  __shared__ float red[32];
  const int n = blockIdx.x, target = targets[n];
  if (target < 0) {
    if (threadIdx.x == 0) losses[n] = 0.0f;
    return;
  }
  const T* x = logits + (size_t)n * V;
  float mx, sum;
  row_max_sum(x, V, red, &mx, &sum);
  if (threadIdx.x == 0) losses[n] = target < V ? logf(sum) + mx - to_float(x[target]) : NAN;
}

// In place is safe: each thread reads and then writes only its own elements, after the
// block-wide max and sum (which synchronise) have read the whole row.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    xent_backward_kernel(T* dlogits, const T* logits, const int32_t* targets, float scale, int V) {
  __shared__ float red[32];
  const int n = blockIdx.x, target = targets[n];
  const T* x = logits + (size_t)n * V;
  T* d = dlogits + (size_t)n * V;
  if (target < 0) {
    for (int i = threadIdx.x; i < V; i += blockDim.x) d[i] = from_float<T>(0.0f);
    return;
  }
  float mx, sum;
  row_max_sum(x, V, red, &mx, &sum);
  const float f = scale / sum;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    float g = f * expf(to_float(x[i]) - mx);
    if (i == target) g -= scale;
    d[i] = from_float<T>(g);
  }
}

// One block: the row losses of counted targets summed in double in a fixed order (each thread a
// fixed stride, then the block tree), the mean rounded to float as the CPU model returns it, then
// weighted.
__global__ void __launch_bounds__(kThreads)
    xent_mean_kernel(double* acc, const float* losses, const int32_t* targets, int N, double weight) {
  __shared__ double red[32];
  double s = 0.0, c = 0.0;
  for (int i = threadIdx.x; i < N; i += blockDim.x)
    if (targets[i] >= 0) s += losses[i], c += 1.0;
  s = block_sum(s, red);
  c = block_sum(c, red);
  if (threadIdx.x == 0 && c > 0) *acc += weight * static_cast<double>(static_cast<float>(s / c));
}

}  // namespace

void cross_entropy_mean(double* acc, const float* losses, const int32_t* targets, int N, double weight) {
  if (N <= 0) return;
  xent_mean_kernel<<<1, kThreads, 0, stream()>>>(acc, losses, targets, N, weight);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
static void forward(float* losses, const T* logits, const int32_t* targets, int N, int V) {
  if (N <= 0) return;
  xent_forward_kernel<T><<<N, kThreads, 0, stream()>>>(losses, logits, targets, V);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
static void backward(T* dlogits, const T* logits, const int32_t* targets, float scale, int N, int V) {
  if (N <= 0) return;
  xent_backward_kernel<T><<<N, kThreads, 0, stream()>>>(dlogits, logits, targets, scale, V);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

void cross_entropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V) {
  forward(losses, logits, targets, N, V);
}
void cross_entropy_forward(float* losses, const bf16* logits, const int32_t* targets, int N, int V) {
  forward(losses, logits, targets, N, V);
}
void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, float scale, int N, int V) {
  backward(dlogits, logits, targets, scale, N, V);
}
void cross_entropy_backward(bf16* dlogits, const bf16* logits, const int32_t* targets, float scale, int N, int V) {
  backward(dlogits, logits, targets, scale, N, V);
}

}  // namespace mindllm::cuda
