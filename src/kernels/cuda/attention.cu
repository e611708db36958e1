#include "kernels/cuda/attention.h"

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps per query row
constexpr int kMaxHeadDim = 256;

using cpu::first_key;  // the first key row t of sequence b sees (window, packed segment)

// Row (b, h, t) of the scores: P[s] = dot(a_row, rows[s]) for s in [lo, t], one warp per key
// position (lanes split D, butterfly sum). a_row is in shared memory (fp32).
template <typename T>
__device__ void row_dots(float* P, const float* a_row, const T* rows, int ld, int lo, int t, int D, float scale) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int s = lo + warp; s <= t; s += nwarps) {
    const T* r = rows + (size_t)s * ld;
    float acc = 0.0f;
    for (int d = lane; d < D; d += 32) acc += a_row[d] * to_float(r[d]);
    acc = warp_sum(acc);
    if (lane == 0) P[s] = scale * acc;
  }
}

// grid (T, Hq, B). probs row = softmax of the scaled scores over [lo, t], 0 elsewhere; then
// out[t] = sum_s P[s] v[s].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(T* out, float* probs, const T* q, const T* k, const T* v, AttentionShape s) {
  __shared__ float qrow[kMaxHeadDim];
  __shared__ float red[32];
  const int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, T_ = s.T, D = s.D;
  const int hk = h / (s.Hq / s.Hkv);
  const T* qr = q + ((size_t)b * T_ + t) * s.ldq + (size_t)h * D;
  const T* kb = k + (size_t)b * T_ * s.ldk + (size_t)hk * D;
  const T* vb = v + (size_t)b * T_ * s.ldv + (size_t)hk * D;
  float* P = probs + (((size_t)b * s.Hq + h) * T_ + t) * T_;
  const int lo = first_key(s, b, t);

  for (int d = threadIdx.x; d < D; d += blockDim.x) qrow[d] = to_float(qr[d]);
  __syncthreads();
  row_dots(P, qrow, kb, s.ldk, lo, t, D, s.scale);
  __syncthreads();  // P[lo..t] written by lane 0s, visible to the block

  float mx = -FLT_MAX;
  for (int j = lo + threadIdx.x; j <= t; j += blockDim.x) mx = fmaxf(mx, P[j]);
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int j = lo + threadIdx.x; j <= t; j += blockDim.x) {
    float e = expf(P[j] - mx);
    P[j] = e;
    sum += e;
  }
  const float inv = 1.0f / block_sum(sum, red);
  for (int j = threadIdx.x; j < T_; j += blockDim.x) P[j] = (j >= lo && j <= t) ? P[j] * inv : 0.0f;
  __syncthreads();

  T* o = out + ((size_t)b * T_ + t) * s.ldo + (size_t)h * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = lo; j <= t; j++) acc += P[j] * to_float(vb[(size_t)j * s.ldv + d]);
    o[d] = from_float<T>(acc);
  }
}

// grid (T, Hq, B), query row t of head h: dP[s] = dO[t]·v[s]; dS = P (dP - sum_s P dP) into
// scratch (0 outside [lo, t]); dq[t] = scale sum_s dS[s] k[s].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_backward_query_kernel(T* dq, float* dS_all, const T* dout, const float* probs, const T* k, const T* v,
                                    AttentionShape s) {
  __shared__ float drow[kMaxHeadDim];
  __shared__ float red[32];
  const int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, T_ = s.T, D = s.D;
  const int hk = h / (s.Hq / s.Hkv);
  const T* dor = dout + ((size_t)b * T_ + t) * s.ldo + (size_t)h * D;
  const T* kb = k + (size_t)b * T_ * s.ldk + (size_t)hk * D;
  const T* vb = v + (size_t)b * T_ * s.ldv + (size_t)hk * D;
  const size_t row = (((size_t)b * s.Hq + h) * T_ + t) * T_;
  const float* P = probs + row;
  float* dS = dS_all + row;
  const int lo = first_key(s, b, t);

  for (int d = threadIdx.x; d < D; d += blockDim.x) drow[d] = to_float(dor[d]);
  __syncthreads();
  row_dots(dS, drow, vb, s.ldv, lo, t, D, 1.0f);
  __syncthreads();
  float dot = 0.0f;
  for (int j = lo + threadIdx.x; j <= t; j += blockDim.x) dot += P[j] * dS[j];
  dot = block_sum(dot, red);
  for (int j = threadIdx.x; j < T_; j += blockDim.x) dS[j] = (j >= lo && j <= t) ? P[j] * (dS[j] - dot) : 0.0f;
  __syncthreads();

  T* dqr = dq + ((size_t)b * T_ + t) * s.ldq + (size_t)h * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = lo; j <= t; j++) acc += dS[j] * to_float(kb[(size_t)j * s.ldk + d]);
    dqr[d] = from_float<T>(s.scale * acc);
  }
}

// grid (T, Hkv, B), key position j of kv head hk: gathers over the group's query heads and the
// query rows t in [j, hi] (hi from the window; rows of a later packed segment have P = dS = 0
// at j) in a fixed order:
//   dk[j] = scale sum_h sum_t dS[h,t,j] q[h,t],   dv[j] = sum_h sum_t P[h,t,j] dO[h,t].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_backward_kv_kernel(T* dk, T* dv, const float* dS_all, const float* probs, const T* dout, const T* q,
                                 AttentionShape s) {
  const int j = blockIdx.x, hk = blockIdx.y, b = blockIdx.z, T_ = s.T, D = s.D;
  const int group = s.Hq / s.Hkv;
  const int hi = (s.window > 0 && j + s.window - 1 < T_ - 1) ? j + s.window - 1 : T_ - 1;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float ak = 0.0f, av = 0.0f;
    for (int h = hk * group; h < (hk + 1) * group; h++) {
      const size_t base = ((size_t)b * s.Hq + h) * T_ * T_;
      const T* qh = q + (size_t)b * T_ * s.ldq + (size_t)h * D + d;
      const T* doh = dout + (size_t)b * T_ * s.ldo + (size_t)h * D + d;
      for (int t = j; t <= hi; t++) {
        const size_t pj = base + (size_t)t * T_ + j;
        ak += dS_all[pj] * to_float(qh[(size_t)t * s.ldq]);
        av += probs[pj] * to_float(doh[(size_t)t * s.ldo]);
      }
    }
    dk[((size_t)b * T_ + j) * s.ldk + (size_t)hk * D + d] = from_float<T>(s.scale * ak);
    dv[((size_t)b * T_ + j) * s.ldv + (size_t)hk * D + d] = from_float<T>(av);
  }
}

void check_shape(const AttentionShape& s) {
  MINDLLM_CHECK(s.D > 0 && s.D <= kMaxHeadDim, "cuda attention: head dim must be in 1..256");
  MINDLLM_CHECK(s.Hkv > 0 && s.Hq % s.Hkv == 0, "cuda attention: query heads must be a multiple of kv heads");
  MINDLLM_CHECK(s.T <= 65535 && s.Hq <= 65535 && s.B <= 65535, "cuda attention: grid too large");
}

template <typename T>
void forward(T* out, float* probs, const T* q, const T* k, const T* v, const AttentionShape& s) {
  if (s.B * s.T <= 0) return;
  check_shape(s);
  attention_forward_kernel<T><<<dim3(s.T, s.Hq, s.B), kThreads, 0, stream()>>>(out, probs, q, k, v, s);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward(T* dq, T* dk, T* dv, float* scratch, const T* dout, const float* probs, const T* q, const T* k,
              const T* v, const AttentionShape& s) {
  if (s.B * s.T <= 0) return;
  check_shape(s);
  attention_backward_query_kernel<T>
      <<<dim3(s.T, s.Hq, s.B), kThreads, 0, stream()>>>(dq, scratch, dout, probs, k, v, s);
  MINDLLM_CUDA_CHECK_LAUNCH();
  attention_backward_kv_kernel<T><<<dim3(s.T, s.Hkv, s.B), kThreads, 0, stream()>>>(dk, dv, scratch, probs, dout, q, s);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  forward(out, probs, q, k, v, s);
}
void attention_forward(bf16* out, float* probs, const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  forward(out, probs, q, k, v, s);
}
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout, const float* probs,
                        const float* q, const float* k, const float* v, const AttentionShape& s) {
  backward(dq, dk, dv, scratch, dout, probs, q, k, v, s);
}
void attention_backward(bf16* dq, bf16* dk, bf16* dv, float* scratch, const bf16* dout, const float* probs,
                        const bf16* q, const bf16* k, const bf16* v, const AttentionShape& s) {
  backward(dq, dk, dv, scratch, dout, probs, q, k, v, s);
}

}  // namespace mindllm::cuda
