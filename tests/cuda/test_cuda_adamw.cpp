// AdamW over the flat buffers and the deterministic sum of squares on the GPU against the CPU.
#include "cuda_test_util.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cuda/adamw.h"

namespace mindllm {
namespace {

using namespace cudatest;
using cpu::AdamWParams;
using cpu::AdamWSpan;

struct AdamState {
  std::vector<float> p, g, m, v;
};

AdamState random_state(size_t n, Rng& rng) {
  AdamState s{random_normal(n, rng), random_normal(n, rng), random_normal(n, rng, 0.01f), random_normal(n, rng, 0.01f)};
  for (auto& x : s.v) x = x * x;  // second moments are >= 0
  return s;
}

// The update's size is ~lr, far below the weights': compare the change as well as the result.
void expect_update_close(const std::vector<float>& got, const std::vector<float>& want,
                         const std::vector<float>& before) {
  EXPECT_CLOSE(got, want, kF32Tol);
  std::vector<float> dg(got.size()), dw(got.size());
  for (size_t i = 0; i < got.size(); i++) dg[i] = got[i] - before[i], dw[i] = want[i] - before[i];
  EXPECT_CLOSE(dg, dw, 1e-3);  // the subtraction alone costs ~1e-4 of a 1e-3 step
}

TEST(CudaAdamW, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const size_t n = 100003;
  for (int step : {1, 7}) {
    SCOPED_TRACE(::testing::Message() << "step=" << step);
    Rng rng(step);
    AdamState s = random_state(n, rng);
    AdamWParams hp{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step};
    AdamState c = s;
    cpu::adamw_update(c.p.data(), c.g.data(), c.m.data(), c.v.data(), n, hp, 0.5f);

    auto p = dev(s.p), g = dev(s.g), m = dev(s.m), v = dev(s.v);
    auto pb = poisoned<bf16>(n);
    cuda::adamw_update(p.data(), g.data(), m.data(), v.data(), n, hp, 0.5f, pb.data());
    expect_update_close(p.download(), c.p, s.p);
    EXPECT_CLOSE(m.download(), c.m, kF32Tol);
    EXPECT_CLOSE(v.download(), c.v, kF32Tol);
    EXPECT_CLOSE(to_float(pb.download()), c.p, kBf16Tol);  // the bf16 compute copy
  }
}

TEST(CudaAdamW, SpansWithAndWithoutDecay) {
  SKIP_WITHOUT_GPU();
  const size_t n = 70001;
  Rng rng(3);
  AdamState s = random_state(n, rng);
  // Tiny, large (one block loops) and unaligned spans; a gap the update must leave alone.
  std::vector<AdamWSpan> spans = {{0, 1000, true}, {1000, 1, false}, {1001, 50000, false}, {51001, 18000, true}};
  AdamWParams hp{3e-4f, 0.9f, 0.999f, 1e-8f, 0.1f, 2};
  AdamState c = s;
  cpu::adamw_update_spans(c.p.data(), c.g.data(), c.m.data(), c.v.data(), spans.data(), spans.size(), hp, 1.0f);

  std::vector<uint8_t> span_bytes(spans.size() * sizeof(AdamWSpan));
  std::memcpy(span_bytes.data(), spans.data(), span_bytes.size());
  auto dspans = dev(span_bytes);
  auto p = dev(s.p), g = dev(s.g), m = dev(s.m), v = dev(s.v);
  cuda::adamw_update_spans(p.data(), g.data(), m.data(), v.data(), reinterpret_cast<const AdamWSpan*>(dspans.data()),
                           spans.size(), hp, 1.0f);
  auto got = p.download();
  expect_update_close(got, c.p, s.p);
  EXPECT_CLOSE(m.download(), c.m, kF32Tol);
  EXPECT_CLOSE(v.download(), c.v, kF32Tol);
  for (size_t i = 69001; i < n; i++) ASSERT_EQ(got[i], s.p[i]) << "element outside every span changed at " << i;
}

TEST(CudaSumOfSquares, MatchesCpuAndIsDeterministic) {
  SKIP_WITHOUT_GPU();
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{3} * 65536 + 12345, size_t{1100} * 65536 + 7}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    Rng rng(n);
    auto x = random_normal(n, rng);
    double want = cpu::sum_of_squares(x.data(), n);
    auto dx = dev(x);
    double got = cuda::sum_of_squares(dx.data(), n);
    double err = std::fabs(got - want) / (want > 0 ? want : 1.0);
    record_err(err);
    EXPECT_LE(err, 1e-12) << got << " vs " << want;
    EXPECT_EQ(cuda::sum_of_squares(dx.data(), n), got) << "not deterministic";
    // The device-side overload leaves the same value in device memory.
    DeviceBuffer<double> out(1);
    cuda::sum_of_squares(out.data(), dx.data(), n);
    EXPECT_EQ(out.download()[0], got);
  }
}

}  // namespace
}  // namespace mindllm
