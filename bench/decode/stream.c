/* A STREAM-like memory bandwidth probe for the decode roofline (bench/decode/run.py).
 * Batch-1 decoding reads every weight once per token, so the kernel that matters is a pure read:
 * "read" sums a float array (as a GEMV streams its weight rows); copy and triad (STREAM's) are
 * printed alongside. Arrays of 256 MiB each, far past the last-level cache; each kernel runs
 * 7 times and the best time counts (as STREAM reports). Usage: stream [threads]
 * Build: cc -O3 -march=native -fopenmp stream.c -o stream */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define N (64L * 1024 * 1024) /* floats per array: 256 MiB */

int main(int argc, char** argv) {
  if (argc > 1) omp_set_num_threads(atoi(argv[1]));
  /* 2 MiB aligned and advised to transparent huge pages, as mindllm's quantised weights are
   * (model/quant_weights.h): the read rate without 4 KiB TLB misses is the roofline. */
  const size_t huge = 2 << 20;
  float *a = aligned_alloc(huge, N * sizeof(float)), *b = aligned_alloc(huge, N * sizeof(float)),
        *c = aligned_alloc(huge, N * sizeof(float));
  if (!a || !b || !c) return 1;
  madvise(a, N * sizeof(float), MADV_HUGEPAGE), madvise(b, N * sizeof(float), MADV_HUGEPAGE);
  madvise(c, N * sizeof(float), MADV_HUGEPAGE);
#pragma omp parallel for schedule(static)
  for (long i = 0; i < N; i++) a[i] = 1.0f + (i & 7), b[i] = 2.0f, c[i] = 0.0f;
  double best[3] = {1e30, 1e30, 1e30}, sink = 0;
  for (int rep = 0; rep < 7; rep++) {
    double t = omp_get_wtime(), s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (long i = 0; i < N; i++) s += a[i];
    t = omp_get_wtime() - t, sink += s;
    if (t < best[0]) best[0] = t;
    t = omp_get_wtime();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < N; i++) c[i] = a[i];
    t = omp_get_wtime() - t;
    if (t < best[1]) best[1] = t;
    t = omp_get_wtime();
#pragma omp parallel for schedule(static)
    for (long i = 0; i < N; i++) a[i] = b[i] + 3.0f * c[i];
    t = omp_get_wtime() - t;
    if (t < best[2]) best[2] = t;
  }
  const double bytes = N * sizeof(float);
  printf("threads %d read %.2f GB/s copy %.2f GB/s triad %.2f GB/s (checksum %g)\n", omp_get_max_threads(),
         bytes / best[0] / 1e9, 2 * bytes / best[1] / 1e9, 3 * bytes / best[2] / 1e9, sink);
  free(a), free(b), free(c);
  return 0;
}
