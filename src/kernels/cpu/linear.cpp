#include "kernels/cpu/linear.h"

#include "core/profile.h"

#include <cblas.h>

#include <cstdlib>
#include <cstring>
#include <vector>

// OpenBLAS picks its GEMM kernel from the CPU model when it initialises. Releases older than the
// CPU (Debian 12 ships 0.3.21) fall back to a generic SSE3 kernel ("Prescott") on newer Xeons,
// 5-8x slower than the AVX-512 one. Unless the user set OPENBLAS_CORETYPE, choose by CPU
// features instead. This runs before OpenBLAS's own constructor: OpenBLAS is linked statically
// and constructors with a priority run before those without one.
#if defined(__x86_64__)
__attribute__((constructor(101))) static void choose_openblas_core() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) setenv("OPENBLAS_CORETYPE", "Haswell", 0);
}
#endif

namespace mindllm::cpu {

const char* blas_info() { return openblas_get_config(); }

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                    WeightLayout layout) {
  PROFILE("linear_fwd");
  float beta = 0.0f;
  if (bias) {
    broadcast_bias(out, bias, N, O);
    beta = 1.0f;
  }
  if (layout == WeightLayout::out_in)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, inp, I, weight, I, beta, out, O);
  else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, O, I, 1.0f, inp, I, weight, O, beta, out, O);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int I, int O, WeightLayout layout) {
  PROFILE("linear_bwd");
  if (dinp) {
    // dinp[N,I] = dout[N,O] · W[O,I]   (W^T for the [I,O] layout)
    if (layout == WeightLayout::out_in)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, dout, O, weight, I, 0.0f, dinp, I);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, I, O, 1.0f, dout, O, weight, O, 0.0f, dinp, I);
  }
  if (dweight) {
    if (layout == WeightLayout::out_in)  // dW[O,I] += dout^T[O,N] · inp[N,I]
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dweight, I);
    else  // dW[I,O] += inp^T[I,N] · dout[N,O]
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I, O, N, 1.0f, inp, I, dout, O, 1.0f, dweight, O);
  }
  if (dbias) bias_backward(dbias, dout, N, O);
}

void broadcast_bias(float* out, const float* bias, int N, int O) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) std::memcpy(out + (size_t)n * O, bias, sizeof(float) * O);
}

void bias_backward(float* dbias, const float* dout, int N, int O) {
#pragma omp parallel for schedule(static)
  for (int o0 = 0; o0 < O; o0 += 64) {
    int o1 = o0 + 64 < O ? o0 + 64 : O;
    float acc[64] = {0};
    for (int n = 0; n < N; n++) {
      const float* row = dout + (size_t)n * O;
      for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
    }
    for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
  }
}

}  // namespace mindllm::cpu
