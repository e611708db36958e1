// Edge cases of the GPU linear layer that the op table (tests/ops, run in test_ops_table.cpp)
// does not reach: a bias 4 bytes into a buffer and null gradient pointers.
#include "cuda_test_util.h"
#include "kernels/cpu/linear.h"
#include "kernels/cuda/linear.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::WeightLayout;

TEST(CudaLinear, MisalignedBiasAndNullGradients) {
  SKIP_WITHOUT_GPU();
  const int N = 37, I = 65, O = 131;
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
    Rng rng(N * 7 + I + (int)layout);
    auto x = random_normal((size_t)N * I, rng), w = random_normal((size_t)I * O, rng, 0.2f), b = random_normal(O, rng),
         dy = random_normal((size_t)N * O, rng), gx0 = random_normal((size_t)N * I, rng);
    std::vector<float> out((size_t)N * O), gx = gx0;
    cpu::linear_forward(out.data(), x.data(), w.data(), b.data(), N, I, O, layout);
    cpu::linear_backward(gx.data(), nullptr, nullptr, dy.data(), x.data(), w.data(), N, I, O, layout);

    // A bias 4 bytes into a buffer (as in a flat parameter buffer): no BIAS epilogue.
    std::vector<float> b1(O + 1, 0.0f);
    for (int o = 0; o < O; o++) b1[o + 1] = b[o];
    auto dx = dev(x), dw = dev(w), db1 = dev(b1), ddy = dev(dy);
    auto dout = poisoned<float>((size_t)N * O);
    cuda::linear_forward(dout.data(), dx.data(), dw.data(), db1.data() + 1, N, I, O, layout);
    EXPECT_CLOSE(dout.download(), out, kF32Tol);

    // Null parameter gradients are skipped.
    auto dgx = dev(gx0);
    cuda::linear_backward(dgx.data(), nullptr, nullptr, ddy.data(), dx.data(), dw.data(), N, I, O, layout);
    EXPECT_CLOSE(dgx.download(), gx, kF32Tol);
  }
}

}  // namespace
}  // namespace mindllm
