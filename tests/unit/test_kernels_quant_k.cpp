// q4_k weights (kernels/cpu/quant.h, quant_k.cpp): the block layout, the linear against a float64
// reference, AVX2 == portable bitwise (batch invariance on the packed layout: test_kernels_quant.cpp's
// QuantLinear.PackedRowIsTheSameBitsInAnyBatch). Byte equality with ggml's quantiser is
// tests/reference/test_quant_q4k.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "kernel_test_util.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/quant_impl.h"

namespace mindllm::cpu {
namespace {

using test::random_normal;

std::vector<uint8_t> quantize_rows(const std::vector<float>& wf, int O, int I) {
  const size_t rb = quant_row_bytes(QuantType::q4_k, I);
  std::vector<uint8_t> wq(rb * O);
  for (int o = 0; o < O; o++) quantize_row(QuantType::q4_k, wf.data() + (size_t)o * I, I, wq.data() + o * rb);
  return wq;
}

TEST(Q4kFormat, BlockLayout) {
  EXPECT_EQ(quant_row_bytes(QuantType::q4_k, 512), 288u);
  EXPECT_FALSE(quant_row_fits(QuantType::q4_k, 896));
  EXPECT_TRUE(quant_row_fits(QuantType::q4_k, 768));
  QuantType t;
  ASSERT_TRUE(quant_type_from_name("q4_k", &t));
  EXPECT_EQ(t, QuantType::q4_k);
  // Each value decodes as d sc_j q - dmin m_j from the block's own fields.
  Rng rng(1);
  std::vector<float> x = random_normal(256, rng, 0.2f);
  for (int l = 0; l < 32; l++) x[64 + l] += 1.0f;  // sub-block 2: all positive (min 0)
  std::vector<uint8_t> b(144);
  quantize_row(QuantType::q4_k, x.data(), 256, b.data());
  uint8_t sc[8], m[8];
  quant_detail::q4k_scales(b.data() + 4, sc, m);
  const float d = half_to_float(static_cast<uint16_t>(b[0] | b[1] << 8));
  const float dmin = half_to_float(static_cast<uint16_t>(b[2] | b[3] << 8));
  EXPECT_EQ(*std::max_element(sc, sc + 8), 63);  // d = the largest scale / 63
  EXPECT_EQ(m[2], 0);
  std::vector<float> y(256);
  dequantize_row(QuantType::q4_k, b.data(), 256, y.data());
  for (int i = 0; i < 256; i++) {
    const int j = i / 32, l = i % 32, q = (b[16 + 32 * (j / 2) + l] >> (4 * (j & 1))) & 0xf;
    EXPECT_EQ(y[i], d * sc[j] * q - dmin * m[j]) << i;
  }
}

// The error per weight: within one step d sc_j of its sub-block (the least-squares fit trades a
// little of the range for the bulk), zeros stay near zero.
TEST(Q4kFormat, RoundTripErrorWithinAStep) {
  Rng rng(7);
  const int n = 256 * 6;
  std::vector<float> x = random_normal(n, rng, 0.05f);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero super-block
  for (int i = 512; i < 768; i++) x[i] = -std::fabs(x[i]);
  std::vector<uint8_t> q(quant_row_bytes(QuantType::q4_k, n));
  std::vector<float> y(n);
  quantize_row(QuantType::q4_k, x.data(), n, q.data());
  dequantize_row(QuantType::q4_k, q.data(), n, y.data());
  for (int s = 0; s < n / 32; s++) {
    float lo = 0, hi = 0;
    for (int k = 0; k < 32; k++) lo = std::min(lo, x[32 * s + k]), hi = std::max(hi, x[32 * s + k]);
    for (int k = 0; k < 32; k++) EXPECT_LE(std::fabs(y[32 * s + k] - x[32 * s + k]), (hi - lo) / 15 * 1.2 + 1e-6);
  }
  for (int i = 256; i < 512; i++) EXPECT_EQ(y[i], 0.0f);
}

// float64 reference: the dequantised weights times the activations as the kernel quantises them
// (q8_0 per 32, half to even, fp16-rounded scales).
std::vector<double> reference(const std::vector<uint8_t>& wq, int O, int I, const std::vector<float>& in, int N) {
  std::vector<float> wf((size_t)O * I);
  const size_t rb = quant_row_bytes(QuantType::q4_k, I);
  for (int o = 0; o < O; o++) dequantize_row(QuantType::q4_k, wq.data() + o * rb, I, wf.data() + (size_t)o * I);
  std::vector<double> x(in.size());
  for (size_t b = 0; b < x.size() / 32; b++) {
    float amax = 0;
    for (int k = 0; k < 32; k++) amax = std::max(amax, std::fabs(in[32 * b + k]));
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    const double d = half_to_float(float_to_half(amax / 127.0f));
    for (int k = 0; k < 32; k++) x[32 * b + k] = d * std::nearbyint(in[32 * b + k] * id);
  }
  std::vector<double> out((size_t)N * O);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) {
      double s = 0;
      for (int i = 0; i < I; i++) s += (double)wf[(size_t)o * I + i] * x[(size_t)n * I + i];
      out[(size_t)n * O + o] = s;
    }
  return out;
}

TEST(Q4kLinear, MatchesFloat64Reference) {
  Rng rng(11);
  for (auto [N, I, O] : {std::tuple{1, 256, 37}, std::tuple{5, 512, 40}, std::tuple{3, 768, 16}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " I=" + std::to_string(I) + " O=" + std::to_string(O));
    const std::vector<float> wf = random_normal((size_t)O * I, rng, 0.1f), in = random_normal((size_t)N * I, rng);
    std::vector<uint8_t> wq = quantize_rows(wf, O, I), wp(wq.size());
    pack_rows(QuantType::q4_k, wq.data(), O, I, wp.data());
    const std::vector<double> want = reference(wq, O, I, in, N);
    QuantScratch s;
    for (bool packed : {false, true}) {
      std::vector<float> out((size_t)N * O);
      const QuantMatrix w{QuantType::q4_k, O, I, packed ? wp.data() : wq.data(), packed};
      linear_forward_quant(out.data(), in.data(), w, nullptr, N, s, QuantPrefill::dot);
      EXPECT_REL_LE(out, want, 1e-5);  // exact integer sums: only the fp32 accumulation differs
    }
    // against the unquantised product: the 4-bit error itself
    std::vector<double> exact((size_t)N * O);
    for (int n = 0; n < N; n++)
      for (int o = 0; o < O; o++) {
        double v = 0;
        for (int i = 0; i < I; i++) v += (double)wf[(size_t)o * I + i] * in[(size_t)n * I + i];
        exact[(size_t)n * O + o] = v;
      }
    std::vector<float> out((size_t)N * O);
    linear_forward_quant(out.data(), in.data(), QuantMatrix{QuantType::q4_k, O, I, wp.data(), true}, nullptr, N, s);
    EXPECT_REL_LE(out, exact, 0.1);
  }
}

// The AVX2 kernel (packed groups, 1-2 activation rows per tile) and the VNNI decode against the
// portable one: bitwise.
TEST(Q4kLinear, Avx2MatchesScalar) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
    GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU";
  using namespace quant_detail;
  Rng rng(3);
  const int I = 256 * 3, O = 21, N = 7, nb = I / 32;  // two packed groups and 5 plain rows
  std::vector<float> in = random_normal((size_t)N * I, rng);
  std::vector<int8_t> qs((size_t)N * I);
  std::vector<float> d((size_t)N * nb);
  std::vector<int32_t> sum((size_t)N * nb);
  for (int n = 0; n < N; n++)
    quantize_act_scalar(in.data() + n * I, nb, qs.data() + n * I, d.data() + n * nb, sum.data() + n * nb);
  const ActQ8 x{qs.data(), d.data(), sum.data(), nb};
  std::vector<float> wf = random_normal((size_t)O * I, rng, 0.1f);
  for (int i = 0; i < I; i++) wf[i] = -std::fabs(wf[i]) * 30;  // row 0: negative only, large
  std::vector<uint8_t> wq = quantize_rows(wf, O, I), wp(wq.size());
  pack_rows(QuantType::q4_k, wq.data(), O, I, wp.data());
  for (bool packed : {false, true}) {
    const QuantMatrix w{QuantType::q4_k, O, I, packed ? wp.data() : wq.data(), packed};
    for (int rows : {1, 2, 3, N}) {
      std::vector<float> a((size_t)rows * O), b((size_t)rows * O);
      dot_rows_scalar(w, 0, O, x, rows, a.data(), O);
      dot_rows_avx2(w, 0, O, x, rows, b.data(), O);
      EXPECT_EQ(a, b) << (packed ? "packed" : "plain") << " rows " << rows;
      if (rows == 1 && packed && int8_vnni_available()) {  // the AVX-512 VNNI decode
        int8_gemv_avx512(w, 0, O, x, b.data());
        EXPECT_EQ(a, b) << "VNNI decode";
      }
    }
  }
#else
  GTEST_SKIP() << "not x86-64";
#endif
}

TEST(Q4kFormat, PackedRowsDequantiseAsPlain) {
  Rng rng(43);
  for (int O : {8, 13, 24}) {
    const int I = 512;
    std::vector<uint8_t> wq = quantize_rows(random_normal((size_t)O * I, rng), O, I), wp(wq.size());
    pack_rows(QuantType::q4_k, wq.data(), O, I, wp.data());
    EXPECT_NE(wq, wp);
    std::vector<float> a(I), b(I);
    for (int o = 0; o < O; o++) {
      dequantize_matrix_row(QuantMatrix{QuantType::q4_k, O, I, wq.data()}, o, a.data());
      dequantize_matrix_row(QuantMatrix{QuantType::q4_k, O, I, wp.data(), true}, o, b.data());
      EXPECT_EQ(a, b) << "O=" << O << " row " << o;
    }
  }
}

}  // namespace
}  // namespace mindllm::cpu
