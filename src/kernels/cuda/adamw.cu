#include "kernels/cuda/adamw.h"

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr size_t kChunk = size_t{1} << 16;  // sum_of_squares chunk (as the CPU's)

struct AdamWConsts {
  float b1, b2, step_size, bc2_sqrt, eps, decay, grad_scale;
  const float* device_scale;  // when set, the gradient scale is read here (a NaN skips the update)
};

// The CPU's constants: bias corrections in double, then float, so both sides use the same values.
AdamWConsts consts(const AdamWParams& p, float grad_scale, const float* device_scale = nullptr) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(p.beta1), p.step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(p.beta2), p.step);
  return {p.beta1,
          p.beta2,
          static_cast<float>(p.lr / bc1),
          static_cast<float>(std::sqrt(bc2)),
          p.eps,
          1.0f - p.lr * p.weight_decay,
          grad_scale,
          device_scale};
}

// Resolves a device-side gradient scale; false when the update is to be skipped.
__device__ __forceinline__ bool resolve_scale(AdamWConsts& c) {
  if (!c.device_scale) return true;
  c.grad_scale = *c.device_scale;
  return isfinite(c.grad_scale);
}

__device__ __forceinline__ void adamw_one(float* params, const float* grads, float* m, float* v, bf16* pb, size_t i,
                                          const AdamWConsts& c, float decay) {
  float g = grads[i] * c.grad_scale;
  float mi = c.b1 * m[i] + (1.0f - c.b1) * g;
  float vi = c.b2 * v[i] + (1.0f - c.b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
  float pi = params[i] * decay - c.step_size * (mi / denom);
  params[i] = pi;
  if (pb) pb[i] = __float2bfloat16_rn(pi);
}

__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, bf16* pb, size_t n, AdamWConsts c) {
  if (!resolve_scale(c)) return;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    adamw_one(params, grads, m, v, pb, i, c, c.decay);
}

__global__ void adamw_spans_kernel(float* params, const float* grads, float* m, float* v, bf16* pb,
                                   const AdamWSpan* spans, AdamWConsts c) {
  if (!resolve_scale(c)) return;
  const AdamWSpan s = spans[blockIdx.x];
  const float decay = s.decay ? c.decay : 1.0f;
  for (size_t i = threadIdx.x; i < s.n; i += blockDim.x) adamw_one(params, grads, m, v, pb, s.offset + i, c, decay);
}

// Block b sums chunks b, b + gridDim.x, ... (each in a fixed tree) in order into partials[b].
__global__ void squares_partial_kernel(double* partials, const float* x, size_t n, size_t nchunks) {
  __shared__ double red[32];
  double acc = 0.0;
  for (size_t ch = blockIdx.x; ch < nchunks; ch += gridDim.x) {
    const size_t lo = ch * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
    double s = 0.0;
    for (size_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
    acc += block_sum(s, red);
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// scale = clip / (sqrt(sum_sq) + 1e-6) capped at 1 (1 without clipping), in double as the CPU
// trainer computes it; NaN when the gradients or the loss are not finite.
__global__ void clip_scale_kernel(float* scale, const double* sum_sq, const double* loss, float clip) {
  const double ss = *sum_sq;
  if (!isfinite(ss) || (loss && !isfinite(*loss))) {
    *scale = NAN;
    return;
  }
  const double norm = sqrt(ss);
  *scale = clip > 0 ? static_cast<float>(fmin(1.0, clip / (norm + 1e-6))) : 1.0f;
}

__global__ void squares_final_kernel(double* out, const double* partials, int count) {
  __shared__ double red[32];
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

static void update(float* params, const float* grads, float* m, float* v, size_t n, bf16* params_bf16,
                   const AdamWConsts& c) {
  if (n == 0) return;
  adamw_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(params, grads, m, v, params_bf16, n, c);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

static void update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                         bf16* params_bf16, const AdamWConsts& c) {
  if (count == 0) return;
  MINDLLM_CHECK(count <= 0x7fffffffu, "cuda adamw: too many spans");
  adamw_spans_kernel<<<(unsigned)count, kThreads, 0, stream()>>>(params, grads, m, v, params_bf16, spans, c);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale, bf16* params_bf16) {
  update(params, grads, m, v, n, params_bf16, consts(p, grad_scale));
}

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  const float* grad_scale, bf16* params_bf16) {
  update(params, grads, m, v, n, params_bf16, consts(p, 1.0f, grad_scale));
}

void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, float grad_scale, bf16* params_bf16) {
  update_spans(params, grads, m, v, spans, count, params_bf16, consts(p, grad_scale));
}

void adamw_update_spans(float* params, const float* grads, float* m, float* v, const AdamWSpan* spans, size_t count,
                        const AdamWParams& p, const float* grad_scale, bf16* params_bf16) {
  update_spans(params, grads, m, v, spans, count, params_bf16, consts(p, 1.0f, grad_scale));
}

void clip_scale(float* scale, const double* sum_sq, const double* loss, float clip) {
  clip_scale_kernel<<<1, 1, 0, stream()>>>(scale, sum_sq, loss, clip);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

void sum_of_squares(double* out, const float* x, size_t n) {
  Context& ctx = context();
  const size_t nchunks = (n + kChunk - 1) / kChunk;
  // The grid depends on n only (not on the GPU), so any GPU adds in the same order.
  const int blocks = static_cast<int>(nchunks < (size_t)kReducePartials ? (nchunks ? nchunks : 1) : kReducePartials);
  squares_partial_kernel<<<blocks, kThreads, 0, ctx.stream>>>(ctx.partials, x, n, nchunks);
  MINDLLM_CUDA_CHECK_LAUNCH();
  squares_final_kernel<<<1, kThreads, 0, ctx.stream>>>(out, ctx.partials, blocks);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

double sum_of_squares(const float* x, size_t n) {
  Context& ctx = context();
  sum_of_squares(ctx.result, x, n);
  double r = 0.0;
  MINDLLM_CUDA_CHECK(cudaMemcpyAsync(&r, ctx.result, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
  synchronize();
  return r;
}

}  // namespace mindllm::cuda
