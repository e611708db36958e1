// Linear layer on the CPU (BLAS GEMM). Row-major; N = B*T rows.
#pragma once

namespace mindllm::cpu {

// The BLAS library and the CPU kernel it uses (for --version and benchmark logs).
const char* blas_info();

// How a weight matrix is stored: [out, in] (torch nn.Linear) or [in, out] (GPT-2's Conv1D).
enum class WeightLayout { out_in, in_out };

// out[N,O] = inp[N,I] · W + bias[O] (bias may be null). W is [O,I] (out_in) or [I,O] (in_out).
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                    WeightLayout layout);

// Gradients: dinp[N,I] = dout·W (overwritten: no zeroed buffer or extra pass over it), while the
// parameter gradients accumulate: dweight += dout^T·inp (in W's layout), dbias[O] += sum over
// rows of dout. Any of dinp, dweight, dbias may be null (skipped).
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int I, int O, WeightLayout layout);

// out[n, :] = bias for every row n (the start of a GEMM that accumulates onto the bias).
void broadcast_bias(float* out, const float* bias, int N, int O);

// dbias[O] += column sums of dout[N,O], in a fixed order per column (deterministic for any
// thread count). Shared by the fp32 and bf16 linear layers.
void bias_backward(float* dbias, const float* dout, int N, int O);

}  // namespace mindllm::cpu
