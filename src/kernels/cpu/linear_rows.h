// The fp32 linear layer of the inference engine (model/engine.cpp): out[N,O] = in[N,I] · W + bias
// with every output element summed in one fixed order, whatever N, whatever the other rows of the
// call and whatever the thread count. So a row's result is the same bits when it is decoded alone
// (`mindllm generate`) and when the server batches it with other sequences' decode tokens and
// prompt chunks: the server's greedy output equals generate's.
//
// cblas_sgemm gives neither that guarantee nor speed for decode batches of 1-8 rows: OpenBLAS
// packs (copies) the whole weight matrix on every call, more time than the multiply itself. Here
// each weight row is read once per tile of up to 4 activation rows, straight from the matrix.
//   out_in (W [O, I]): element (n, o) = 8 fp32 lanes of FMAs over i (lane i % 8), summed in a fixed
//                      tree, then the I % 8 tail by scalar FMAs, then + bias.
//   in_out (W [I, O], GPT-2's Conv1D): element (n, o) = one FMA chain over i = 0 .. I-1, then + bias.
// Threads split the output features in runs of 48 (192 bytes of each output row: no false
// sharing). AVX2 + FMA where the CPU has them, else portable C++ (its own fixed order).
// Training keeps the BLAS GEMMs of linear.h.
#pragma once

#include "kernels/cpu/linear.h"

namespace mindllm::cpu {

void linear_forward_rows(float* out, const float* inp, const float* weight, const float* bias, int N, int I, int O,
                         WeightLayout layout);
// The portable C++ kernel alone (what runs without AVX2/FMA), for the tests.
void linear_forward_rows_portable(float* out, const float* inp, const float* weight, const float* bias, int N, int I,
                                  int O, WeightLayout layout);

}  // namespace mindllm::cpu
