// embedding_backward's determinism (its shapes against float64 and finite differences are in the
// op table, tests/ops).
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/embedding.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

TEST(EmbeddingKernel, BackwardSameBytesForAnyThreadCount) {
  // Many repeated ids (vocab 5): a racy or thread-order-dependent scatter-add would show here.
  const int B = 4, T = 63, C = 70, V = 5;
  Rng rng(11);
  std::vector<int32_t> tok((size_t)B * T);
  for (auto& t : tok) t = (int32_t)rng.below(V);
  auto dout = random_normal((size_t)B * T * C, rng);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    std::vector<float> dwte((size_t)V * C, 0.25f), dwpe((size_t)T * C, 0.25f);
    cpu::embedding_backward(dwte.data(), dwpe.data(), dout.data(), tok.data(), B, T, C);
    dwte.insert(dwte.end(), dwpe.begin(), dwpe.end());
    return dwte;
  };
  auto a = run(2), b = run(2), c = run(1), d = run(3);
  EXPECT_TRUE(same_bytes(a, b));
  EXPECT_TRUE(same_bytes(a, c));
  EXPECT_TRUE(same_bytes(a, d));
}

}  // namespace
