// Decode GEMV against the memory-read roofline, in one run (issue 20): every matrix of one
// decoded token of a model shape (GPT-2 124M or Qwen2-0.5B: q|k|v, attention output, MLP, output
// projection), random weights in q8_0 / q4_0 / q4_k / bf16 / f16, multiplied by one activation row through
// linear_forward_quant (packed, bf16 in the AMX layout where AMX runs, in one 2 MiB-aligned huge-page arena: as the
// engine holds them), alternated with a pure read of as many bytes from such an arena (8-lane fp32 sums, as
// stream.c's "read"); best of the repetitions for each. Prints GB/s, the fraction of the read
// rate and the tokens/s the GEMVs alone would allow. Build (repo root, after scripts/build.sh):
//   c++ -O2 -fopenmp -std=gnu++20 -Isrc -I/usr/include/x86_64-linux-gnu/openblas-openmp \
//     bench/decode/gemv.cpp src/kernels/cpu/quant.cpp src/kernels/cpu/quant_avx2.cpp src/kernels/cpu/quant_k.cpp \
//     src/kernels/cpu/quant_avx512.cpp src/kernels/cpu/quant_amx.cpp src/core/dtype.cpp src/kernels/cpu/linear.cpp
//     src/core/profile.cpp -lopenblas -o /tmp/gemv
//   OMP_NUM_THREADS=1 /tmp/gemv gpt2-124m      # or qwen2-0.5b; OMP_NUM_THREADS=2 for two threads
// (MINDLLM_BENCH_CPU_TIME=1 with one thread: CPU time instead of wall time, for a loaded machine)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "core/huge_pages.h"
#include "core/rng.h"
#include "kernels/cpu/quant.h"

using namespace mindllm;
using namespace mindllm::cpu;

namespace {

// Wall seconds, or with one thread this process's CPU seconds (MINDLLM_BENCH_CPU_TIME=1): on a
// shared machine the time it ran, not the time it waited for a core.
double now() {
  static const bool cpu = std::getenv("MINDLLM_BENCH_CPU_TIME") && omp_get_max_threads() == 1;
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

__attribute__((target("avx2"))) float read_sum(const float* a, size_t n) {
  float total = 0.0f;
#pragma omp parallel reduction(+ : total)
  {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
#pragma omp for schedule(static)
    for (size_t i = 0; i < n / 32; i++) {
      const float* p = a + 32 * i;
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p)), s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + 8));
      s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + 16)), s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + 24));
    }
    float v[8];
    _mm256_storeu_ps(v, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (float f : v) total += f;
  }
  return total;
}

// [O, I] of every matrix one token multiplies by.
std::vector<std::pair<int, int>> token_matrices(const std::string& shape) {
  std::vector<std::pair<int, int>> m;
  if (shape == "qwen2-0.5b") {
    for (int l = 0; l < 24; l++) m.insert(m.end(), {{896 + 2 * 128, 896}, {896, 896}, {2 * 4864, 896}, {896, 4864}});
    m.push_back({151936, 896});
  } else {
    for (int l = 0; l < 12; l++) m.insert(m.end(), {{3 * 768, 768}, {768, 768}, {3072, 768}, {768, 3072}});
    m.push_back({50257, 768});
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shape = argc > 1 ? argv[1] : "gpt2-124m";
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  const auto mats = token_matrices(shape);
  Rng rng(1);
  printf("%s, %d threads, kernels %s\n", shape.c_str(), omp_get_max_threads(), quant_kernel_name());
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0, QuantType::q4_k, QuantType::bf16, QuantType::f16}) {
    std::vector<QuantType> types;  // q4_k rows that are not whole 256s are q4_0 (model/quant_weights.h)
    std::vector<size_t> offset;
    size_t bytes = 0;
    for (auto [O, I] : mats) {
      types.push_back(t == QuantType::q4_k && !quant_row_fits(t, I) ? QuantType::q4_0 : t);
      offset.push_back(bytes);
      bytes += (quant_row_bytes(types.back(), I) * O + 63) / 64 * 64;
    }
    HugeBuffer arena = huge_alloc(bytes), read_arena = huge_alloc(bytes);  // as the engine holds weights
    std::vector<QuantMatrix> ws;
    for (size_t m = 0; m < mats.size(); m++) {  // the engine's layout
      const auto [O, I] = mats[m];
      const QuantType t = types[m];
      std::vector<float> w((size_t)I);
      std::vector<uint8_t> plain(quant_row_bytes(t, I) * O);
      for (int o = 0; o < O; o++) {
        for (auto& v : w) v = rng.normal() * 0.02f;
        quantize_row(t, w.data(), I, plain.data() + quant_row_bytes(t, I) * o);
      }
      const bool amx = t == QuantType::bf16 && amx_bf16_fits(I);
      if (amx) pack_rows_amx(plain.data(), O, I, arena.get() + offset[m]);
      else pack_rows(t, plain.data(), O, I, arena.get() + offset[m]);
      ws.push_back(QuantMatrix{t, O, I, arena.get() + offset[m], true, amx});
    }
    float* fa = reinterpret_cast<float*>(read_arena.get());
    std::fill(fa, fa + bytes / 4, 1.0f);
    std::vector<float> x(8192), out(160000);
    for (auto& v : x) v = rng.normal();
    QuantScratch s;
    double best = 1e9, best_read = 1e9;
    float sink = 0.0f;
    for (int rep = 0; rep < reps; rep++) {
      double t0 = now();
      sink += read_sum(fa, bytes / 4);
      best_read = std::min(best_read, now() - t0);
      t0 = now();
      for (size_t i = 0; i < mats.size(); i++) linear_forward_quant(out.data(), x.data(), ws[i], nullptr, 1, s);
      best = std::min(best, now() - t0);
    }
    printf("%-5s %7.1f MB/token: GEMV %.2f GB/s = %3.0f%% of read %.2f GB/s (%.1f tokens/s; read limit %.1f)%s\n",
           quant_type_name(t), bytes / 1e6, bytes / best / 1e9, 100 * best_read / best, bytes / best_read / 1e9,
           1 / best, 1 / best_read, sink == 0.5f ? " " : "");
  }
}
