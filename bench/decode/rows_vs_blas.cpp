// The inference engine's fp32 linear (kernels/cpu/linear_rows.h) against OpenBLAS's cblas_sgemm
// (linear_forward, what the engine used before) for N = 1..512 rows, on GPT-2 124M's MLP up
// projection [3072, 768] in both weight layouts, 16 copies of the matrix so every call reads it
// from memory. Prints ms per call, GB/s of weights and GFLOP/s for each, and the ratio of the CPU
// time per call (process CPU time: what a loaded machine changes least; wall ms are printed too).
// Arguments: the row counts to run (default 1 2 4 5 8 12 16 64 512), optionally after OxI (another
// matrix shape, e.g. 768x3072: GPT-2's MLP down projection). Build
// (from the repo root):
//   c++ -O3 -fopenmp -std=gnu++20 -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp
//     bench/decode/rows_vs_blas.cpp src/kernels/cpu/linear_rows.cpp src/kernels/cpu/linear.cpp
//     src/core/profile.cpp /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a -lgfortran -o /tmp/rows_vs_blas
//   OMP_NUM_THREADS=1 /tmp/rows_vs_blas
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_rows.h"

using namespace mindllm;
using namespace mindllm::cpu;

namespace {
double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
}  // namespace

int main(int argc, char** argv) {
  int O = 3072, I = 768, first = 1;
  const int copies = 16;
  int o = 0, i = 0;
  if (argc > 1 && std::sscanf(argv[1], "%dx%d", &o, &i) == 2) O = o, I = i, first = 2;
  std::vector<int> rows;
  for (int a = first; a < argc; a++) rows.push_back(std::atoi(argv[a]));
  if (rows.empty()) rows = {1, 2, 4, 5, 8, 12, 16, 64, 512};
  Rng rng(1);
  std::vector<std::vector<float>> w(copies, std::vector<float>((size_t)O * I));
  for (auto& m : w)
    for (auto& v : m) v = rng.normal() * 0.02f;
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out})
    for (int N : rows) {
      std::vector<float> x((size_t)N * I), out((size_t)N * O);
      for (auto& v : x) v = rng.normal();
      double best[2] = {1e30, 1e30}, cpu[2] = {1e30, 1e30};
      for (int rep = 0; rep < 3; rep++)
        for (int k = 0; k < 2; k++) {
          const double c0 = cpu_seconds();
          const auto t0 = std::chrono::steady_clock::now();
          for (int c = 0; c < copies; c++) {
            if (k == 0) linear_forward_rows(out.data(), x.data(), w[c].data(), nullptr, N, I, O, layout);
            else linear_forward(out.data(), x.data(), w[c].data(), nullptr, N, I, O, layout);
          }
          const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / copies;
          best[k] = std::min(best[k], dt);
          cpu[k] = std::min(cpu[k], (cpu_seconds() - c0) / copies);
        }
      const double bytes = 4.0 * O * I, flops = 2.0 * N * O * I;
      std::printf(
          "%s N=%3d  rows %7.3f ms (%5.1f GB/s, %5.1f GFLOP/s)  blas %7.3f ms (%5.1f GB/s, %5.1f GFLOP/s)  "
          "rows/blas speed %.2fx (cpu ms %.3f / %.3f: %.2fx)\n",
          layout == WeightLayout::out_in ? "out_in" : "in_out", N, best[0] * 1e3, bytes / best[0] / 1e9,
          flops / best[0] / 1e9, best[1] * 1e3, bytes / best[1] / 1e9, flops / best[1] / 1e9, best[1] / best[0],
          cpu[0] * 1e3, cpu[1] * 1e3, cpu[1] / cpu[0]);
    }
}
