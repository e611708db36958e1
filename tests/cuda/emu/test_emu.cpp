// The CPU emulator itself (tests/cuda/emu/README.md): barriers and shuffles give the GPU's
// results, and each class of mistake it promises to report is reported. Built only with
// -DMINDLLM_CUDA_EMU=ON, into mindllm_cuda_tests. Kernels are launched through emu::launch
// directly (this file is C++, not translated).
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

namespace {

// Each block: out[block * threads + t] = sum over the block of (t + 1) via warp butterflies and
// a shared array, the usual two-level reduction.
__global__ void block_sums(int* out) {
  __shared__ int part[32];
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  int v = t + 1 + (int)blockIdx.x;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  int r = lane < (int)(blockDim.x >> 5) ? part[lane] : 0;
  for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  out[blockIdx.x * blockDim.x + t] = r;
}

__global__ void mismatched_barriers(int*) {
  if (threadIdx.x == 0) __syncthreads();
  else __syncwarp();
}

__global__ void writes_one(float* p) { p[threadIdx.x] = 1.0f; }

__global__ void uses_dynamic_smem(float* p) {
  float* s = reinterpret_cast<float*>(emu::dynamic_smem());
  s[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  p[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

template <typename T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

TEST(Emu, BarriersAndShufflesGiveTheBlockSum) {
  const int blocks = 3, threads = 96;
  int* d = device_alloc<int>(blocks * threads);
  emu::launch(block_sums, blocks, threads)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<int> h(blocks * threads);
  ASSERT_EQ(cudaMemcpy(h.data(), d, h.size() * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < blocks; b++)
    for (int t = 0; t < threads; t++) EXPECT_EQ(h[b * threads + t], threads * (threads + 1) / 2 + threads * b);
  cudaFree(d);
}

TEST(Emu, FreshMemoryIsPoisoned) {
  float* d = device_alloc<float>(4);
  std::vector<float> h(4, 0.0f);
  ASSERT_EQ(cudaMemcpy(h.data(), d, 16, cudaMemcpyDeviceToHost), cudaSuccess);
  for (float x : h) EXPECT_TRUE(x != x || x > 1e38f);  // NaN (0xFF bytes) or 3.4e38 (0x7F)
  cudaFree(d);
}

TEST(Emu, DynamicSharedMemoryBeyond48KiBNeedsTheAttribute) {
  float* d = device_alloc<float>(64);
  emu::launch(uses_dynamic_smem, 1, 64, 64 << 10)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  ASSERT_EQ(cudaFuncSetAttribute(uses_dynamic_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10),
            cudaSuccess);
  emu::launch(uses_dynamic_smem, 1, 64, 64 << 10)(d);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> h(64);
  ASSERT_EQ(cudaMemcpy(h.data(), d, 256, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int t = 0; t < 64; t++) EXPECT_EQ(h[t], 63 - t);
  EXPECT_EQ(cudaFuncSetAttribute(uses_dynamic_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 1 << 20),
            cudaErrorInvalidValue);
  cudaGetLastError();
  cudaFree(d);
}

TEST(Emu, BadLaunchConfigurationIsALaunchError) {
  float* d = device_alloc<float>(8);
  emu::launch(writes_one, 1, 2048)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  emu::launch(writes_one, dim3(1, 70000), 8)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read once, then cleared
  cudaFree(d);
}

TEST(Emu, CopiesMustStayInsideTheirAllocationAndDirection) {
  float* d = device_alloc<float>(8);
  std::vector<float> h(16, 0.0f);
  EXPECT_EQ(cudaMemcpy(d, h.data(), 16 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), d, 8 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(d + 4, 0, 8 * sizeof(float)), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, h.data(), 8 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaFree(d + 1), cudaErrorInvalidDevicePointer);
  cudaGetLastError();
  cudaFree(d);
}

using EmuDeathTest = ::testing::Test;

TEST(EmuDeathTest, MismatchedBarriersAreADeadlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(emu::launch(mismatched_barriers, 1, 64)(nullptr), "deadlock in block");
}

TEST(EmuDeathTest, AHostPointerArgumentIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> host(32);
  EXPECT_DEATH(emu::launch(writes_one, 1, 32)(host.data()), "not inside a device allocation");
}

TEST(EmuCublasLt, LayoutsThatDisagreeWithTheOperationAreInvalid) {
  cublasLtMatmulDesc_t op;
  ASSERT_EQ(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  cublasLtMatrixLayout_t a, b, c;
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, 4, 3, 4), CUBLAS_STATUS_SUCCESS);  // A 4x3
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&b, CUDA_R_32F, 4, 5, 4), CUBLAS_STATUS_SUCCESS);  // B 4x5: k differs
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, 4, 5, 4), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, 4, 5, 3), CUBLAS_STATUS_INVALID_VALUE);  // ld < rows
  cublasLtHandle_t h;
  ASSERT_EQ(cublasLtCreate(&h), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulPreference_t pref;
  ASSERT_EQ(cublasLtMatmulPreferenceCreate(&pref), CUBLAS_STATUS_SUCCESS);
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(h, op, a, b, c, c, pref, 1, &r, &found), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(found, 0);
  // Transposing A makes it 3x4 · 4x5: agrees only if D is 3x5.
  cublasOperation_t t = CUBLAS_OP_T;
  ASSERT_EQ(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), CUBLAS_STATUS_SUCCESS);
  cublasLtMatrixLayout_t d;
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&d, CUDA_R_32F, 3, 5, 3), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasLtMatmulAlgoGetHeuristic(h, op, a, b, d, d, pref, 1, &r, &found), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(found, 1);
  for (auto l : {a, b, c, d}) cublasLtMatrixLayoutDestroy(l);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(h);
}

}  // namespace
