// The op-case table (tests/ops/op_cases.h) on the CPU: every case's outputs and gradients against
// float64, and in gradient mode the gradients of the small cases against central finite
// differences of the float64 forward.
#include <gtest/gtest.h>

#include "../ops/op_cases.h"

using namespace mindllm;
using namespace mindllm::ops;

namespace {

Ref to_double(const Tensors& in) {
  Ref r;
  for (const auto& [k, v] : in.f) r[k] = test::to_double(v);
  return r;
}

class OpsTable : public ::testing::TestWithParam<int> {};

TEST_P(OpsTable, CpuMatchesFloat64AndFiniteDifferences) {
  const OpCase c = op_cases()[GetParam()];
  const Tensors in = case_inputs(c);
  const Ref in64 = to_double(in);
  std::visit(
      [&](const auto& o) {
        Out got = o.template run<CpuBackend>(in);
        Ref want = o.reference(in64, in);
        for (const auto& [name, w] : want) {
          ASSERT_TRUE(got.count(name)) << name;
          // An output that is also an input accumulates onto it.
          auto full = in.f.count(name) ? test::plus(in.f.at(name), w) : w;
          expect_close(got.at(name), full, tolerance(c, name, Mode::cpu_vs_f64), tolerance_floor(c), "output " + name);
        }
        for (const auto& [name, g] : got) EXPECT_TRUE(want.count(name)) << "no reference for " << name;

        // Gradient mode: finite differences where the inputs are small.
        size_t n = 0;
        for (const auto& [g, x] : o.grads()) n += in.f.at(x).size();
        if (n == 0 || n > 4096) return;
        for (const auto& [g, x] : o.grads()) {
          Ref probe = in64;
          auto fd = test::finite_diff(
              [&](const std::vector<double>& v) {
                probe[x] = v;
                return o.loss64(probe, in);
              },
              in64.at(x));
          auto added = in.f.count(g) ? test::minus(got.at(g), in.f.at(g)) : got.at(g);
          expect_close(added, fd, test::kFdTol, tolerance_floor(c), "gradient " + g + " by finite differences");
        }
      },
      c);
}

INSTANTIATE_TEST_SUITE_P(Table, OpsTable, ::testing::Range(0, (int)op_cases().size()),
                         [](const ::testing::TestParamInfo<int>& i) { return case_name(op_cases()[i.param]); });

TEST(OpsTable, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const auto& c : op_cases()) EXPECT_TRUE(names.insert(case_name(c)).second) << case_name(c);
}

}  // namespace
