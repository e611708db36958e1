// The ten GEMM shapes of one layer step of the bench/train_cpu model (forward, dX and dW of the
// fused QKV / gate|up / down projections and the LM head), timed with mindllm's OpenBLAS, best
// of 5. Pair with gemm_shapes.py (PyTorch/MKL, same shapes). Build against mindllm's library so
// the same OpenBLAS kernel is chosen:
//   g++ -O2 -std=c++20 bench/train_cpu/gemm_shapes.cpp -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp \
//     build/libmindllm_lib.a /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a -fopenmp -o /tmp/gemm_shapes
//   OMP_NUM_THREADS=2 /tmp/gemm_shapes; OMP_NUM_THREADS=2 python3 bench/train_cpu/gemm_shapes.py
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "kernels/cpu/linear.h"

int main() {
  struct Shape {
    const char* name;
    int M, N, K;
    bool ta, tb;
  };
  const int T = 2048, C = 512, H = 1408, V = 8192;
  const Shape shapes[] = {{"qkv fwd NT", T, 3 * C, C, 0, 1},   {"gateup fwd NT", T, 2 * H, C, 0, 1},
                          {"down fwd NT", T, C, H, 0, 1},      {"head fwd NT", T, V, C, 0, 1},
                          {"gateup dX NN", T, C, 2 * H, 0, 0}, {"down dX NN", T, H, C, 0, 0},
                          {"head dX NN", T, C, V, 0, 0},       {"gateup dW TN", 2 * H, C, T, 1, 0},
                          {"down dW TN", C, H, T, 1, 0},       {"head dW TN", V, C, T, 1, 0}};
  std::vector<float> a((size_t)T * V, 0.01f), b((size_t)T * V, 0.02f), c((size_t)T * V);
  double total = 0;
  std::printf("%s\n", mindllm::cpu::blas_info());
  for (const Shape& s : shapes) {
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
      auto t0 = std::chrono::steady_clock::now();
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.M, s.N, s.K,
                  1.0f, a.data(), s.ta ? s.M : s.K, b.data(), s.tb ? s.K : s.N, 0.0f, c.data(), s.N);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("%-14s %7.1f GFLOP/s %8.2f ms\n", s.name, 2.0 * s.M * s.N * s.K / best / 1e9, best * 1e3);
    total += best;
  }
  std::printf("total %.1f ms\n", total * 1e3);
}
