// Linear layer on the GPU: cuBLASLt GEMMs with fp32 accumulation. Row-major; N = B*T rows.
// Same math and accumulate semantics as kernels/cpu/linear.h.
#pragma once
#include "kernels/cpu/linear.h"
#include "kernels/cuda/device.h"

namespace mindllm::cuda {

using cpu::WeightLayout;

// out[N,O] = inp[N,I] · W + bias[O] (bias may be null; added by the GEMM's epilogue).
// fp32 overload: pure fp32 GEMM (no TF32), so it agrees with the CPU to ~1e-6.
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                    WeightLayout layout);
// bf16 overload: bf16 operands and output, fp32 accumulation; bias bf16.
void linear_forward(bf16* out, const bf16* inp, const bf16* weight, const bf16* bias, int N, int I, int O,
                    WeightLayout layout);

// dinp[N,I] = dout·W (overwritten, as on the CPU); accumulates (+=) dweight += dout^T·inp (in W's
// layout) and dbias[O] += column sums of dout (a deterministic kernel, not atomics). Any of dinp,
// dweight, dbias may be null.
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int I, int O, WeightLayout layout);
// Mixed precision: bf16 activations and weights; dinp bf16, the parameter gradients dweight and
// dbias fp32 (the GEMM writes fp32 directly, accumulating onto the fp32 gradient buffer).
void linear_backward(bf16* dinp, float* dweight, float* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                     int N, int I, int O, WeightLayout layout);

}  // namespace mindllm::cuda
