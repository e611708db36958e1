// Single-threaded fp32 GEMM for the small blocks inside attention (a few dozen to a few hundred
// rows and columns, one call per block): C[m × n] = alpha · op(A) · B + beta · C, row-major, where
// op(A) is A [m × k] (lda) or, with trans_a, the transpose of A stored [k × m] (lda). B is [k × n]
// (ldb). beta = 0 never reads C (it may hold garbage).
//
// On CPUs with AVX-512 a register-blocked kernel (6 rows × 64 columns of C in 24 registers, A
// broadcast from memory, no packing) runs at close to the core's FMA rate even at 64 × 64 × 64,
// where a BLAS call pays its packing and dispatch each time; other CPUs call cblas_sgemm.
#pragma once

namespace mindllm::cpu {

void small_gemm(bool trans_a, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc);

// dst [cols × rows] (ld_dst) = src [rows × cols] (ld_src) transposed.
void transpose(float* dst, int ld_dst, const float* src, int ld_src, int rows, int cols);

// dst [rows × cols] (ld_dst) = src [rows × cols] (ld_src). Operands whose rows lie far apart (one
// head's slice of a wide q/k/v row) are copied to contiguous rows first: rows a multiple of 4 KiB
// apart fall into the same few L1 sets and evict each other inside the kernel.
void copy_rows(float* dst, int ld_dst, const float* src, int ld_src, int rows, int cols);

}  // namespace mindllm::cpu
