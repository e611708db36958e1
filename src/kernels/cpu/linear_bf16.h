// Linear layer in mixed precision on the CPU: bf16 operands, fp32 accumulation, fp32 outputs and
// gradients (the arithmetic of the CUDA backend's bf16 path). The GEMMs run through oneDNN, which
// uses AMX or AVX512-BF16 where the CPU has them. Same shapes and accumulate semantics as
// linear.h; the fp32 activations and gradients are rounded to bf16 (nearest even) on the way in,
// the weights arrive already rounded (the model keeps a bf16 copy of its parameters).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cpu/linear.h"

namespace mindllm::cpu {

// True when this build and CPU can run bf16 GEMMs; otherwise false with the reason in *why.
bool bf16_gemm_available(std::string* why = nullptr);
// True when they run on AMX tiles. Without AMX, oneDNN 2.6's bf16 GEMMs are slower than the fp32
// path (dev-2c limited to AVX512-BF16: 0.6x; to AVX-512 with emulated bf16: 0.27x).
bool bf16_gemm_uses_amx();

// out[i] = bf16(in[i]), round to nearest even (core/dtype.h's float_to_bf16), in parallel.
void round_to_bf16(uint16_t* out, const float* in, size_t n);

// out[N,O] = bf16(inp) · W + bias (W bf16, in `layout`; bias fp32, may be null).
void linear_forward_bf16(float* out, const float* inp, const uint16_t* weight, const float* bias, int N, int I, int O,
                         WeightLayout layout);

// dinp = bf16(dout)·W (overwritten); accumulates (+=) dweight = bf16(dout)^T·bf16(inp) and
// dbias = sum of dout (fp32), as linear_backward. Any of dinp, dweight, dbias may be null.
void linear_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                          const uint16_t* weight, int N, int I, int O, WeightLayout layout);

}  // namespace mindllm::cpu
