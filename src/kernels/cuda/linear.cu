#include "kernels/cuda/linear.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kernels/cuda/common.cuh"

namespace mindllm::cuda {

namespace {

template <typename T>
constexpr cudaDataType_t data_type();
template <>
constexpr cudaDataType_t data_type<float>() {
  return CUDA_R_32F;
}
template <>
constexpr cudaDataType_t data_type<bf16>() {
  return CUDA_R_16BF;
}

// Largest power of two (at most 256) dividing the address: cuBLASLt picks kernels by alignment,
// and our operands are often offsets into flat buffers (q, k, v inside one qkv row).
uint32_t alignment(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && (a % al)) al >>= 1;
  return al;
}

// The cuBLASLt descriptors and the heuristic's algorithm for one GEMM problem, made on its first
// call and kept for the process (a training step repeats the same few dozen problems; creating
// six descriptors and asking the heuristic costs tens of microseconds of host time per call).
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// Everything a plan depends on: types, transposes, shapes, leading dimensions, the epilogue and
// the operands' alignments (the heuristic chooses kernels by them; the pointers themselves are
// passed per call, the bias pointer too).
using PlanKey = std::array<int64_t, 16>;

struct PrefDeleter {
  void operator()(cublasLtMatmulPreference_t p) const { cublasLtMatmulPreferenceDestroy(p); }
};

// Column-major D[m,n] = op(A)[m,k] · op(B)[k,n] + beta · D (+ bias[m] broadcast over columns),
// fp32 compute and scale. A is stored [m,k] (or [k,m] when transa), B [k,n] (or [n,k]).
// Row-major callers pass their matrices transposed (a row-major X[r,c] is a column-major X^T).
// When cuBLASLt has no algorithm: false (nothing queued) if `may_fail`, else an Error naming the shape.
bool matmul(void* D, cudaDataType_t dt, int ldd, const void* A, cudaDataType_t at, bool transa, int lda, const void* B,
            cudaDataType_t bt, bool transb, int ldb, int m, int n, int k, float beta, const void* bias,
            bool may_fail = false) {
  if (m <= 0 || n <= 0) return true;
  if (k <= 0) {  // an empty product (cuBLASLt rejects empty shapes): D = beta · D, beta 0 or 1 here
    if (beta == 0.0f) {
      const size_t elem = dt == CUDA_R_32F ? 4 : 2;
      MINDLLM_CUDA_CHECK(cudaMemset2DAsync(D, (size_t)ldd * elem, 0, (size_t)m * elem, n, stream()));
    }
    return true;
  }
  Context& ctx = context();
  const uint32_t align[4] = {alignment(A), alignment(B), alignment(D), alignment(D)};
  const PlanKey key{dt, at, bt, transa,          transb,   lda,      ldb,      ldd,
                    m,  n,  k,  bias != nullptr, align[0], align[1], align[2], bias ? alignment(bias) : 0};
  static std::map<PlanKey, std::unique_ptr<Plan>> plans;
  std::unique_ptr<Plan>& slot = plans[key];
  if (!slot) {
    auto s = std::make_unique<Plan>();
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&s->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (bias) {
      cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      MINDLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      MINDLLM_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
      cudaDataType_t bias_type = dt;
      MINDLLM_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
    }
    MINDLLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->a, at, transa ? k : m, transa ? m : k, lda));
    MINDLLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->b, bt, transb ? n : k, transb ? k : n, ldb));
    MINDLLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->c, dt, m, n, ldd));
    MINDLLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->d, dt, m, n, ldd));

    cublasLtMatmulPreference_t raw = nullptr;
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw));
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PrefDeleter> pref(raw);
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &ctx.workspace_bytes, sizeof(ctx.workspace_bytes)));
    // Split-K reductions only through the workspace in a fixed order, never "in place" into D, and
    // with fp32 partial sums (the compute type): the output-type scheme would round each split's
    // partial sum to bf16 before adding them.
    uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                              sizeof(schemes)));
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
      MINDLLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw, align_attr[i], &align[i], sizeof(align[i])));

    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    // No algorithm comes back as CUBLAS_STATUS_NOT_SUPPORTED (or success with none found).
    const cublasStatus_t hs =
        cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, s->op, s->a, s->b, s->c, s->d, raw, 1, &heur, &found);
    if (hs != CUBLAS_STATUS_SUCCESS && hs != CUBLAS_STATUS_NOT_SUPPORTED)
      throw_cuda_error(cublasLtGetStatusString(hs), "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
    s->found = hs == CUBLAS_STATUS_SUCCESS && found > 0;
    if (s->found) s->algo = heur.algo;
    slot = std::move(s);
  }
  const Plan& p = *slot;
  if (!p.found && may_fail) return false;
  if (!p.found)
    internal_error("cuBLASLt has no algorithm for a " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                   std::to_string(k) + " matmul (types " + std::to_string((int)at) + "/" + std::to_string((int)dt) +
                   ")");
  if (bias)  // the plan may have been made for another bias of the same alignment
    MINDLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.0f;
  MINDLLM_CUBLAS_CHECK(cublasLtMatmul(ctx.cublaslt, p.op, &alpha, A, p.a, B, p.b, &beta, D, p.c, D, p.d, &p.algo,
                                      ctx.workspace, ctx.workspace_bytes, ctx.stream));
  return true;
}

// out[n, o] = bias[o]: the start of a GEMM that accumulates onto the bias (beta = 1), as the CPU
// does, where cuBLASLt's BIAS epilogue cannot be used.
template <typename T>
__global__ void broadcast_bias_kernel(T* __restrict__ out, const T* __restrict__ bias, int N, int O) {
  const size_t total = (size_t)N * O;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
    out[i] = bias[i % O];
}

// dbias[o] += sum over n of dout[n, o]. A block owns 32 columns; its 32x16 threads sum rows
// n = ty, ty + 16, ... per column, then the 16 partial sums are added in order: no atomics.
template <typename T>
__global__ void column_sum_kernel(float* __restrict__ dbias, const T* __restrict__ dout, int N, int O) {
  __shared__ float part[16][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int o = blockIdx.x * 32 + tx;
  float acc = 0.0f;
  if (o < O)
    for (int n = ty; n < N; n += 16) acc += to_float(dout[(size_t)n * O + o]);
  part[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && o < O) {
    float s = 0.0f;
    for (int j = 0; j < 16; j++) s += part[j][tx];
    dbias[o] += s;
  }
}

template <typename T>
void bias_backward(float* dbias, const T* dout, int N, int O) {
  if (O <= 0) return;
  column_sum_kernel<T><<<(O + 31) / 32, dim3(32, 16), 0, stream()>>>(dbias, dout, N, O);
  MINDLLM_CUDA_CHECK_LAUNCH();
}

template <typename T>
void forward(T* out, const T* inp, const T* weight, const T* bias, int N, int I, int O, WeightLayout layout) {
  // Column-major: out^T[O,N] = W'[O,I] · inp^T[I,N]. W [O,I] row-major is [I,O] column-major
  // (transposed here); W [I,O] row-major is [O,I] column-major as it is.
  const bool out_in = layout == WeightLayout::out_in;
  // The BIAS epilogue when cuBLASLt has an algorithm for it (and the bias is 16-byte aligned, which
  // some epilogue kernels assume); otherwise the bias is broadcast into out and the GEMM adds onto it.
  if (bias && alignment(bias) >= 16 &&
      matmul(out, data_type<T>(), O, weight, data_type<T>(), out_in, out_in ? I : O, inp, data_type<T>(), false, I, O,
             N, I, 0.0f, bias, /*may_fail=*/true))
    return;
  if (bias && N > 0 && O > 0) {
    broadcast_bias_kernel<T><<<grid_for((size_t)N * O, 256), 256, 0, stream()>>>(out, bias, N, O);
    MINDLLM_CUDA_CHECK_LAUNCH();
  }
  matmul(out, data_type<T>(), O, weight, data_type<T>(), out_in, out_in ? I : O, inp, data_type<T>(), false, I, O, N, I,
         bias ? 1.0f : 0.0f, nullptr);
}

template <typename T, typename G>
void backward(T* dinp, G* dweight, float* dbias, const T* dout, const T* inp, const T* weight, int N, int I, int O,
              WeightLayout layout) {
  const bool out_in = layout == WeightLayout::out_in;
  const cudaDataType_t t = data_type<T>();
  if (dinp)  // dinp^T[I,N] = W''[I,O] · dout^T[O,N]  (beta 0: dinp is not read)
    matmul(dinp, t, I, weight, t, !out_in, out_in ? I : O, dout, t, false, O, I, N, O, 0.0f, nullptr);
  if (dweight) {
    if (out_in)  // dW^T[I,O] += inp^T[I,N] · dout[N,O]
      matmul(dweight, data_type<G>(), I, inp, t, false, I, dout, t, true, O, I, O, N, 1.0f, nullptr);
    else  // dW^T[O,I] += dout^T[O,N] · inp[N,I]
      matmul(dweight, data_type<G>(), O, dout, t, false, O, inp, t, true, I, O, I, N, 1.0f, nullptr);
  }
  if (dbias) bias_backward(dbias, dout, N, O);
}

}  // namespace

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                    WeightLayout layout) {
  forward(out, inp, weight, bias, N, I, O, layout);
}

void linear_forward(bf16* out, const bf16* inp, const bf16* weight, const bf16* bias, int N, int I, int O,
                    WeightLayout layout) {
  forward(out, inp, weight, bias, N, I, O, layout);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int I, int O, WeightLayout layout) {
  backward(dinp, dweight, dbias, dout, inp, weight, N, I, O, layout);
}

void linear_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                     int N, int I, int O, WeightLayout layout) {
  backward(dinp, dweight, dbias, dout, inp, weight, N, I, O, layout);
}

}  // namespace mindllm::cuda
