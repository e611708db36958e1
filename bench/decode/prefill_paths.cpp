// Prefill paths of the quantised linear (kernels/cpu/quant.h) on a Qwen2-0.5B MLP shape
// ([2 x 4864, 896], 8 copies): int8 dot tiles, bf16 / f16 broadcast tiles and bf16 on AMX tiles
// (where the CPU has them) against dequantise + BLAS GEMM, and fp32 BLAS, for N activation rows.
// Build (from the repo root):
//   c++ -O3 -fopenmp -std=gnu++20 -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp \
//     bench/decode/prefill_paths.cpp src/kernels/cpu/quant*.cpp src/core/dtype.cpp \
//     src/kernels/cpu/linear.cpp src/core/profile.cpp -lopenblas -o /tmp/prefill_paths
//   OMP_NUM_THREADS=1 /tmp/prefill_paths 128
#include <chrono>
#include <cstdio>
#include <vector>
#include <omp.h>
#include "kernels/cpu/quant.h"
#include "kernels/cpu/linear.h"
#include "core/rng.h"
using namespace mindllm;
using namespace mindllm::cpu;
int main(int argc, char** argv) {
  int O = 4864 * 2, I = 896, N = argc > 1 ? atoi(argv[1]) : 1;
  Rng rng(1);
  std::vector<float> w((size_t)O * I), x((size_t)N * I), out((size_t)N * O);
  for (auto& v : w) v = rng.normal() * 0.02f;
  for (auto& v : x) v = rng.normal();
  // replicate matrices to exceed cache: 8 copies
  const int copies = 8;
  for (int v = 0; v < 5; v++) {
    const QuantType t = v == 0 ? QuantType::q8_0 : v == 1 ? QuantType::q4_0 : v == 4 ? QuantType::f16 : QuantType::bf16;
    const bool amx = v == 3;  // bf16 on the AMX tiles
    if (amx && !amx_bf16_fits(I)) continue;
    size_t rb = quant_row_bytes(t, I);
    std::vector<std::vector<uint8_t>> q(copies, std::vector<uint8_t>(rb * O));
    for (auto& qq : q) {
      for (int o = 0; o < O; o++) quantize_row(t, &w[(size_t)o * I], I, qq.data() + rb * o);
      {  // the engine's layout
        std::vector<uint8_t> packed(qq.size());
        if (amx) pack_rows_amx(qq.data(), O, I, packed.data());
        else pack_rows(t, qq.data(), O, I, packed.data());
        qq.swap(packed);
      }
    }
    QuantScratch s;
    for (QuantPrefill p : {QuantPrefill::dot, QuantPrefill::dequant_gemm}) {
      if (N == 1 && p == QuantPrefill::dequant_gemm) continue;
      double best = 1e9;
      for (int rep = 0; rep < 5; rep++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < copies; c++)
          linear_forward_quant(out.data(), x.data(), QuantMatrix{t, O, I, q[c].data(), true, amx}, nullptr, N, s, p);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      printf("%s%s N=%d %s: %.3f ms/matrix, %.2f GB/s, %.1f GFLOP/s\n", quant_type_name(t), amx ? "-amx" : "", N,
             p == QuantPrefill::dot ? "dot" : "deq+gemm", best / copies * 1e3, rb * O / (best / copies) / 1e9,
             2.0 * N * O * I / (best / copies) / 1e9);
    }
  }
  std::vector<std::vector<float>> wf(copies, w);
  double best = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < copies; c++)
      linear_forward(out.data(), x.data(), wf[c].data(), nullptr, N, I, O, WeightLayout::out_in);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  printf("f32 blas N=%d: %.3f ms/matrix, %.2f GB/s %.1f GFLOP/s\n", N, best / copies * 1e3,
         4.0 * O * I / (best / copies) / 1e9, 2.0 * N * O * I / (best / copies) / 1e9);
}
