#include "kernels/cuda/norm.h"

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kRowThreads = 256;

// One block per row. mean == null: RMSNorm (no centring, no bias).
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    norm_forward_kernel(T* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                        const T* __restrict__ inp, const T* __restrict__ weight, const T* __restrict__ bias, int C,
                        float eps) {
  __shared__ float shared[32];
  const int n = blockIdx.x;
  const T* x = inp + (size_t)n * C;
  float m = 0.0f;
  if (mean) {
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += to_float(x[c]);
    m = block_sum(s, shared) / C;
  }
  float v = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float d = to_float(x[c]) - m;
    v += d * d;
  }
  const float r = rsqrtf(block_sum(v, shared) / C + eps);
  T* y = out + (size_t)n * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float o = (to_float(x[c]) - m) * r * to_float(weight[c]);
    if (bias) o += to_float(bias[c]);
    y[c] = from_float<T>(o);
  }
  if (threadIdx.x == 0) {
    if (mean) mean[n] = m;
    rstd[n] = r;
  }
}

// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w. One block
// per row.
template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    norm_backward_input_kernel(T* dinp, const T* dout, const T* __restrict__ inp, const T* __restrict__ weight,
                               const float* __restrict__ mean, const float* __restrict__ rstd, int C) {
  __shared__ float shared[32];
  const int n = blockIdx.x;
  const T* x = inp + (size_t)n * C;
  const T* dy = dout + (size_t)n * C;
  const float m = mean ? mean[n] : 0.0f, r = rstd[n];
  float s1 = 0.0f, s2 = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float dxhat = to_float(dy[c]) * to_float(weight[c]);
    s1 += dxhat;
    s2 += dxhat * (to_float(x[c]) - m) * r;
  }
  const float mean_dxhat = mean ? block_sum(s1, shared) / C : 0.0f;
  const float mean_dxhat_xhat = block_sum(s2, shared) / C;
  T* dx = dinp + (size_t)n * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float xhat = (to_float(x[c]) - m) * r;
    float g = r * (to_float(dy[c]) * to_float(weight[c]) - mean_dxhat - xhat * mean_dxhat_xhat);
    dx[c] = from_float<T>(to_float(dx[c]) + g);
  }
}

// dweight[c] += sum_n dout[n,c] * xhat[n,c]; dbias[c] += sum_n dout[n,c]. A block owns 32
// channels; its 32x16 threads take rows ty, ty + 16, ...; the 16 partials are added in order.
template <typename T>
__global__ void norm_backward_params_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                            const T* __restrict__ dout, const T* __restrict__ inp,
                                            const float* __restrict__ mean, const float* __restrict__ rstd, int N,
                                            int C) {
  __shared__ float pw[16][33], pb[16][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * 32 + tx;
  float aw = 0.0f, ab = 0.0f;
  if (c < C)
    for (int n = ty; n < N; n += 16) {
      size_t i = (size_t)n * C + c;
      float dy = to_float(dout[i]);
      float xhat = (to_float(inp[i]) - (mean ? mean[n] : 0.0f)) * rstd[n];
      aw += dy * xhat;
      ab += dy;
    }
  pw[ty][tx] = aw;
  pb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && c < C) {
    float sw = 0.0f, sb = 0.0f;
    for (int j = 0; j < 16; j++) sw += pw[j][tx], sb += pb[j][tx];
    dweight[c] += sw;
    if (dbias) dbias[c] += sb;
  }
}

template <typename T>
void forward(T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, int N, int C, float eps) {
  if (N <= 0) return;
  norm_forward_kernel<T><<<N, kRowThreads, 0, stream()>>>(out, mean, rstd, inp, weight, bias, C, eps);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(T* dinp, float* dweight, float* dbias, const T* dout, const T* inp, const T* weight, const float* mean,
              const float* rstd, int N, int C) {
  if (N <= 0) return;
  if (dinp) {
    norm_backward_input_kernel<T><<<N, kRowThreads, 0, stream()>>>(dinp, dout, inp, weight, mean, rstd, C);
    MINDLLM_CUDA_CHECK_LAUNCH();
  }
  if (dweight) {
    norm_backward_params_kernel<T>
        <<<(C + 31) / 32, dim3(32, 16), 0, stream()>>>(dweight, dbias, dout, inp, mean, rstd, N, C);
    MINDLLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight, const float* bias,
                       int N, int C, float eps) {
  forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void layernorm_forward(bf16* out, float* mean, float* rstd, const bf16* inp, const bf16* weight, const bf16* bias,
                       int N, int C, float eps) {
  forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C) {
  backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
void layernorm_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                        const float* mean, const float* rstd, int N, int C) {
  backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
  forward<float>(out, nullptr, rstd, inp, weight, nullptr, N, C, eps);
}
void rmsnorm_forward(bf16* out, float* rstd, const bf16* inp, const bf16* weight, int N, int C, float eps) {
  forward<bf16>(out, nullptr, rstd, inp, weight, nullptr, N, C, eps);
}
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  backward<float>(dinp, dweight, nullptr, dout, inp, weight, nullptr, rstd, N, C);
}
void rmsnorm_backward(bf16* dinp, float* dweight, const bf16* dout, const bf16* inp, const bf16* weight,
                      const float* rstd, int N, int C) {
  backward<bf16>(dinp, dweight, nullptr, dout, inp, weight, nullptr, rstd, N, C);
}

}  // namespace mindllm::cuda
