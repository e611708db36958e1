// Causal attention on the CPU: the same bytes for any thread count (its shapes against float64
// and finite differences are in the op table, tests/ops).
#include <gtest/gtest.h>

#include "../ops/op_cases.h"
#include "kernel_test_util.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

TEST(AttentionKernel, SameBytesForAnyThreadCount) {
  const ops::AttentionOp c{2, 37, 4, 2, 64, 0, false, true};
  const ops::Tensors in = ops::case_inputs(c);
  auto run = [&](int threads) {
    ScopedThreads st(threads);
    return c.run<ops::CpuBackend>(in);
  };
  const auto a = run(2), b = run(2), one = run(1);
  for (const auto& [name, v] : a) {
    EXPECT_TRUE(same_bytes(v, b.at(name))) << name;
    EXPECT_TRUE(same_bytes(v, one.at(name))) << name;
  }
}

}  // namespace
