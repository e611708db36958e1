#include "kernels/cuda/embedding.h"

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kBuckets = 64;  // token-id buckets of the backward pass (more parallel blocks)

template <typename T>
__global__ void embedding_forward_kernel(T* __restrict__ out, const int32_t* __restrict__ tokens,
                                         const T* __restrict__ wte, const T* __restrict__ wpe, int T_, int C,
                                         int pos_offset, const int32_t* __restrict__ positions) {
  const int i = blockIdx.x;
  const T* e = wte + (size_t)tokens[i] * C;
  const T* p = wpe ? wpe + (size_t)((positions ? positions[i] : i % T_) + pos_offset) * C : nullptr;
  T* o = out + (size_t)i * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = p ? from_float<T>(to_float(e[c]) + to_float(p[c])) : e[c];
}

// grid (channel tiles of 128, kBuckets): thread c of bucket k adds, in row order, the rows whose
// token falls in bucket k. Every block reads all token ids (a broadcast, cached).
template <typename T>
__global__ void embedding_backward_wte_kernel(float* __restrict__ dwte, const T* __restrict__ dout,
                                              const int32_t* __restrict__ tokens, int N, int C, int offset) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int bucket = blockIdx.y;
  if (c >= C) return;
  for (int i = 0; i < N; i++) {
    const int tok = tokens[i];
    if (tok % kBuckets != bucket) continue;
    float* e = dwte + (size_t)(tok + offset) * C + c;
    *e += to_float(dout[(size_t)i * C + c]);
  }
}

// dwpe[pos_offset + t, c] += dout[b, t, c] for b in order: one thread per (t, c).
template <typename T>
__global__ void embedding_backward_wpe_kernel(float* __restrict__ dwpe, const T* __restrict__ dout, int B, int T_,
                                              int C, int pos_offset) {
  const int t = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float* p = dwpe + (size_t)(t + pos_offset) * C + c;
  float acc = *p;
  for (int b = 0; b < B; b++) acc += to_float(dout[((size_t)b * T_ + t) * C + c]);
  *p = acc;
}

template <typename T>
void forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int T_, int C, int pos_offset,
             const int32_t* positions) {
  if (B * T_ <= 0) return;
  embedding_forward_kernel<T><<<B * T_, 256, 0, stream()>>>(out, tokens, wte, wpe, T_, C, pos_offset, positions);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(float* dwte, float* dwpe, const T* dout, const int32_t* tokens, int B, int T_, int C, int pos_offset,
              const int32_t* positions) {
  if (B * T_ <= 0) return;
  dim3 grid((C + 127) / 128, kBuckets);
  embedding_backward_wte_kernel<T><<<grid, 128, 0, stream()>>>(dwte, dout, tokens, B * T_, C, 0);
  MINDLLM_CUDA_CHECK_LAUNCH();
  if (dwpe && positions) {  // rows at arbitrary positions: summed as the token rows are
    embedding_backward_wte_kernel<T><<<grid, 128, 0, stream()>>>(dwpe, dout, positions, B * T_, C, pos_offset);
    MINDLLM_CUDA_CHECK_LAUNCH();
  } else if (dwpe) {
    embedding_backward_wpe_kernel<T><<<dim3((C + 127) / 128, T_), 128, 0, stream()>>>(dwpe, dout, B, T_, C, pos_offset);
    MINDLLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B, int T, int C,
                       int pos_offset, const int32_t* positions) {
  forward(out, tokens, wte, wpe, B, T, C, pos_offset, positions);
}
void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C,
                       int pos_offset, const int32_t* positions) {
  forward(out, tokens, wte, wpe, B, T, C, pos_offset, positions);
}
void embedding_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset, const int32_t* positions) {
  backward(dwte, dwpe, dout, tokens, B, T, C, pos_offset, positions);
}
void embedding_backward(float* dwte, float* dwpe, const bf16* dout, const int32_t* tokens, int B, int T, int C,
                        int pos_offset, const int32_t* positions) {
  backward(dwte, dwpe, dout, tokens, B, T, C, pos_offset, positions);
}

}  // namespace mindllm::cuda
