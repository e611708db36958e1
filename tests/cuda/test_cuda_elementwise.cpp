// The residual add and the fp32 <-> bf16 casts on the GPU (the ops of the op table, tests/ops,
// run in tests/cuda/test_ops_table.cpp).
#include "cuda_test_util.h"
#include "kernels/cuda/activation.h"

namespace mindllm {
namespace {

using namespace cudatest;

TEST(CudaElementwise, AddScaledAndCasts) {
  SKIP_WITHOUT_GPU();
  const size_t n = 100003;
  Rng rng(5);
  auto y0 = random_normal(n, rng), x = random_normal(n, rng);
  for (float alpha : {1.0f, 0.7f}) {
    std::vector<float> want(n);
    for (size_t i = 0; i < n; i++) want[i] = y0[i] + alpha * x[i];
    auto dy = dev(y0), dx = dev(x);
    cuda::add_scaled(dy.data(), dx.data(), alpha, n);
    EXPECT_CLOSE(dy.download(), want, kF32Tol);
    auto by = dev(to_bf16(y0)), bx = dev(to_bf16(x));
    cuda::add_scaled(by.data(), bx.data(), alpha, n);
    EXPECT_CLOSE(to_float(by.download()), want, kBf16Tol);
  }
  // fp32 -> bf16 rounds to nearest even exactly as core/dtype.h does; bf16 -> fp32 is exact.
  auto dx = dev(x);
  auto b = poisoned<bf16>(n);
  cuda::convert(b.data(), dx.data(), n);
  auto got = b.download();
  auto want = to_bf16(x);
  EXPECT_TRUE(same_bytes(got, want)) << "fp32 -> bf16 differs from float_to_bf16";
  auto f = poisoned<float>(n);
  cuda::convert(f.data(), b.data(), n);
  EXPECT_TRUE(same_bytes(f.download(), round_bf16(x)));
}

}  // namespace
}  // namespace mindllm
