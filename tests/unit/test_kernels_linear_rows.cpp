// The inference engine's linear layers (kernels/cpu/linear_rows.h for fp32, kernels/cpu/quant.h's
// int8 / bf16 tiles): against float64, and a row's result the same bits whatever the number of
// rows in the call (1..64), the thread count and the other rows — what lets the server's greedy
// output equal `mindllm generate`'s.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kernel_test_util.h"
#include "kernels/cpu/linear_rows.h"
#include "kernels/cpu/quant.h"

using namespace mindllm;
using namespace mindllm::test;
using cpu::WeightLayout;

namespace {

using RowsFn = void (*)(float*, const float*, const float*, const float*, int, int, int, WeightLayout);

struct Kernel {
  const char* name;
  RowsFn fn;
};
const Kernel kKernels[] = {{"dispatched", cpu::linear_forward_rows}, {"portable", cpu::linear_forward_rows_portable}};

std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& W, const float* bias, int N, int I,
                              int O, WeightLayout layout) {
  std::vector<double> out((size_t)N * O);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) {
      double s = bias ? bias[o] : 0.0;
      for (int i = 0; i < I; i++)
        s += (double)x[(size_t)n * I + i] * W[layout == WeightLayout::out_in ? (size_t)o * I + i : (size_t)i * O + o];
      out[(size_t)n * O + o] = s;
    }
  return out;
}

struct Shape {
  int N, I, O;
};

TEST(LinearRows, MatchesFloat64Reference) {
  Rng rng(17);
  // I: a tail of I % 8, more than one block of W rows; O: runs of 48 and tails, and more than one
  // copied block of 768 columns; N: every in_out path (1 tile, 2 tiles, 4-row tiles, copied W).
  for (Shape s : {Shape{1, 64, 5}, Shape{1, 37, 100}, Shape{3, 300, 50}, Shape{5, 96, 97}, Shape{6, 100, 130},
                  Shape{7, 150, 1700}, Shape{9, 20, 48}, Shape{40, 150, 900}, Shape{70, 300, 61}})
    for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out})
      for (bool with_bias : {false, true})
        for (const Kernel& k : kKernels) {
          SCOPED_TRACE(std::string(k.name) + " N=" + std::to_string(s.N) + " I=" + std::to_string(s.I) +
                       " O=" + std::to_string(s.O) + (layout == WeightLayout::out_in ? " out_in" : " in_out") +
                       (with_bias ? " bias" : ""));
          auto x = random_normal((size_t)s.N * s.I, rng), W = random_normal((size_t)s.O * s.I, rng, 0.3f);
          auto b = random_normal(s.O, rng);
          std::vector<float> out((size_t)s.N * s.O, NAN);
          k.fn(out.data(), x.data(), W.data(), with_bias ? b.data() : nullptr, s.N, s.I, s.O, layout);
          EXPECT_REL_LE(out, reference(x, W, with_bias ? b.data() : nullptr, s.N, s.I, s.O, layout), kFwdTol);
        }
}

// Row r of an M-row call == the same input row alone, to the bit, for M = 1..64 and 1 or 2
// threads. `run(out, in, M)` computes M rows. *compared counts the batches compared.
template <typename Run>
void expect_rows_invariant(int I, int O, Rng& rng, Run run, int* compared) {
  const int kMax = 64;
  const std::vector<float> x = random_normal((size_t)kMax * I, rng);
  std::vector<float> alone((size_t)kMax * O);
  {
    ScopedThreads t(1);
    for (int r = 0; r < kMax; r++) run(alone.data() + (size_t)r * O, x.data() + (size_t)r * I, 1);
  }
  for (int threads : {1, 2}) {
    ScopedThreads t(threads);
    for (int M = 1; M <= kMax; M++) {
      // Rows [kMax - M, kMax): the rows that are compared sit at every position of the batch.
      std::vector<float> out((size_t)M * O);
      run(out.data(), x.data() + (size_t)(kMax - M) * I, M);
      ASSERT_EQ(std::memcmp(out.data(), alone.data() + (size_t)(kMax - M) * O, out.size() * sizeof(float)), 0)
          << "M=" << M << " threads=" << threads;
      ++*compared;
    }
  }
}

TEST(LinearRows, RowIsTheSameBitsInAnyBatch) {
  Rng rng(23);
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out})
    for (const Kernel& k : kKernels) {
      SCOPED_TRACE(std::string(k.name) + (layout == WeightLayout::out_in ? " out_in" : " in_out"));
      const int I = 132, O = 101;  // a tail of I % 8 = 4, runs of 48 plus 5, several in_out passes
      const auto W = random_normal((size_t)O * I, rng, 0.3f), b = random_normal(O, rng);
      int compared = 0;
      expect_rows_invariant(
          I, O, rng, [&](float* out, const float* in, int M) { k.fn(out, in, W.data(), b.data(), M, I, O, layout); },
          &compared);
      EXPECT_EQ(compared, 2 * 64);  // M = 1..64 at 1 and 2 threads
    }
}

// The AVX2 kernel's paths by row count (one or two register tiles of up to 6 rows per strip of W
// for decode batches, kTile-row tiles up to 31 rows, W copied into strips from 32 rows) on a shape
// where they all reach their edges: I = 150 (blocks of 8, 16 and 64 rows of W, and a tail), O =
// 1700 (both threads' shares wider than one copied block of 768 columns, columns past the last
// multiple of 8).
TEST(LinearRows, RowIsTheSameBitsInAnyBatchOnEveryTilePath) {
  Rng rng(31);
  const int I = 150, O = 1700;
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
    SCOPED_TRACE(layout == WeightLayout::out_in ? "out_in" : "in_out");
    const auto W = random_normal((size_t)O * I, rng, 0.3f), b = random_normal(O, rng);
    int compared = 0;
    expect_rows_invariant(
        I, O, rng,
        [&](float* out, const float* in, int M) {
          cpu::linear_forward_rows(out, in, W.data(), b.data(), M, I, O, layout);
        },
        &compared);
    EXPECT_EQ(compared, 2 * 64);
  }
}

TEST(QuantLinear, RowIsTheSameBitsInAnyBatch) {
  Rng rng(29);
  const int I = 32 * 3, O = 45;
  for (cpu::QuantType t : {cpu::QuantType::q8_0, cpu::QuantType::q4_0, cpu::QuantType::bf16}) {
    SCOPED_TRACE(cpu::quant_type_name(t));
    const auto wf = random_normal((size_t)O * I, rng, 0.1f), b = random_normal(O, rng);
    const size_t rb = cpu::quant_row_bytes(t, I);
    std::vector<uint8_t> wq(rb * O);
    for (int o = 0; o < O; o++) cpu::quantize_row(t, wf.data() + (size_t)o * I, I, wq.data() + o * rb);
    const cpu::QuantMatrix w{t, O, I, wq.data()};
    cpu::QuantScratch scratch;
    int compared = 0;
    expect_rows_invariant(
        I, O, rng,
        [&](float* out, const float* in, int M) {
          cpu::linear_forward_quant(out, in, w, b.data(), M, scratch, cpu::QuantPrefill::dot);
        },
        &compared);
    EXPECT_EQ(compared, 2 * 64);  // M = 1..64 at 1 and 2 threads
  }
}

}  // namespace
