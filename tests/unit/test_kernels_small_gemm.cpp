// small_gemm (attention's block GEMM) and transpose against float64: every row/column tail of
// the 6 × 64 register tile, A stored plain and transposed, beta 0 (C not read: NaN there must not
// leak) and beta 1, padded leading dimensions, k = 0.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/small_gemm.h"
#include "kernel_test_util.h"

namespace mindllm {
namespace {

using test::random_normal;

struct GemmCase {
  int m, n, k;
  bool trans_a;
  float alpha, beta;
};

class SmallGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(SmallGemm, MatchesFloat64) {
  const GemmCase c = GetParam();
  const int pad = 3;
  const int lda = (c.trans_a ? c.m : c.k) + pad, ldb = c.n + pad, ldc = c.n + pad;
  const int a_rows = c.trans_a ? c.k : c.m;
  Rng rng(c.m * 1000 + c.n * 10 + c.k);
  auto A = random_normal((size_t)a_rows * lda + 1, rng), B = random_normal((size_t)c.k * ldb + 1, rng);
  auto C0 = random_normal((size_t)c.m * ldc, rng);
  if (c.beta == 0.0f) std::fill(C0.begin(), C0.end(), std::numeric_limits<float>::quiet_NaN());
  auto C = C0;
  cpu::small_gemm(c.trans_a, c.m, c.n, c.k, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  for (int i = 0; i < c.m; i++) {
    for (int j = 0; j < ldc; j++) {
      const float got = C[(size_t)i * ldc + j];
      if (j >= c.n) {  // padding is never written
        const float was = C0[(size_t)i * ldc + j];
        ASSERT_TRUE(got == was || (std::isnan(got) && std::isnan(was))) << "padding at " << i << "," << j;
        continue;
      }
      double want = 0, mag = 0;
      for (int p = 0; p < c.k; p++) {
        const double a = c.trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
        want += a * B[(size_t)p * ldb + j];
        mag += std::fabs(a * B[(size_t)p * ldb + j]);
      }
      want *= c.alpha;
      if (c.beta != 0.0f) want += (double)c.beta * C0[(size_t)i * ldc + j];
      ASSERT_NEAR(got, want, 1e-5 * (std::fabs(c.alpha) * mag + std::fabs(want) + 1e-3)) << i << "," << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SmallGemm,
                         ::testing::Values(GemmCase{64, 64, 64, false, 1.0f, 0.0f},   // attention's full block
                                           GemmCase{64, 64, 64, true, 0.125f, 1.0f},  // dK += scale dS^T Q
                                           GemmCase{13, 70, 9, false, 1.0f, 1.0f},    // every row tail, 4+ vectors
                                           GemmCase{13, 70, 9, true, -0.5f, 0.0f}, GemmCase{1, 1, 1, false, 2.0f, 0.0f},
                                           GemmCase{5, 17, 33, true, 1.0f, 1.0f},    // one lane past a vector
                                           GemmCase{7, 48, 64, false, 1.0f, 0.0f},   // 3 full vectors
                                           GemmCase{6, 200, 3, false, 1.0f, 0.0f},   // several column tiles
                                           GemmCase{11, 80, 130, true, 1.0f, 1.0f},  // head dim 80
                                           GemmCase{4, 5, 0, false, 1.0f, 0.0f},     // k = 0: C = 0
                                           GemmCase{4, 5, 0, true, 1.0f, 1.0f}));    // k = 0: C unchanged

TEST(Transpose, AnyShapeAndStrides) {
  Rng rng(5);
  for (auto [rows, cols] : {std::pair{1, 1}, std::pair{17, 5}, std::pair{256, 64}, std::pair{33, 80}}) {
    const int ld_src = cols + 2, ld_dst = rows + 1;
    auto src = random_normal((size_t)rows * ld_src, rng);
    std::vector<float> dst((size_t)cols * ld_dst, -7.0f);
    cpu::transpose(dst.data(), ld_dst, src.data(), ld_src, rows, cols);
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < ld_dst; i++)
        ASSERT_EQ(dst[(size_t)j * ld_dst + i], i < rows ? src[(size_t)i * ld_src + j] : -7.0f) << rows << "x" << cols;
  }
}

}  // namespace
}  // namespace mindllm
