// The inference weight formats (kernels/cpu/quant.h): ggml's q8_0 / q4_0 blocks byte for byte,
// bf16, and the quantised linear against float64 references.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>

#include <cmath>
#include <numeric>

#include "core/dtype.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/quant_impl.h"
#include "kernel_test_util.h"

namespace mindllm::cpu {
namespace {

using test::random_normal;

float half_at(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8)); }

TEST(QuantFormat, RowBytes) {
  EXPECT_EQ(quant_row_bytes(QuantType::q8_0, 64), 68u);
  EXPECT_EQ(quant_row_bytes(QuantType::q4_0, 64), 36u);
  EXPECT_EQ(quant_row_bytes(QuantType::bf16, 5), 10u);
  EXPECT_FALSE(quant_row_fits(QuantType::q4_0, 48));
  EXPECT_TRUE(quant_row_fits(QuantType::bf16, 48));
  EXPECT_EQ(quant_row_bytes(QuantType::f16, 7), 14u);
  EXPECT_TRUE(quant_row_fits(QuantType::f16, 3));
  QuantType t;
  EXPECT_TRUE(quant_type_from_name("f16", &t));
  EXPECT_EQ(t, QuantType::f16);
  EXPECT_FALSE(quant_type_from_name("fp16", &t));
}

// f16 rows are IEEE half precision as GGUF F16 stores them: core/dtype.h's conversion, little-endian.
TEST(QuantFormat, F16RowIsIeeeHalf) {
  const std::vector<float> x = {1.0f, -2.5f, 65504.0f, 1e-8f, 0.1f};
  std::vector<uint8_t> b(10);
  quantize_row(QuantType::f16, x.data(), 5, b.data());
  EXPECT_EQ(b[0] | b[1] << 8, 0x3c00);  // 1.0
  EXPECT_EQ(b[2] | b[3] << 8, 0xc100);  // -2.5
  EXPECT_EQ(b[4] | b[5] << 8, 0x7bff);  // the largest half
  for (int i = 0; i < 5; i++) EXPECT_EQ(b[2 * i] | b[2 * i + 1] << 8, float_to_half(x[i])) << i;
}

// The q8_0 block of ggml: fp16 d = max|x|/127, then round(x / d) (half away from zero).
TEST(QuantFormat, Q8_0BlockIsGgmls) {
  std::vector<float> x(32);
  for (int k = 0; k < 32; k++) x[k] = (k - 12) * 0.25f;  // max |x| = 19 * 0.25 at k = 31
  std::vector<uint8_t> b(34);
  quantize_row(QuantType::q8_0, x.data(), 32, b.data());
  const double d = 19 * 0.25 / 127.0;
  EXPECT_EQ(half_at(b.data()), half_to_float(float_to_half(static_cast<float>(d))));
  for (int k = 0; k < 32; k++) EXPECT_EQ(static_cast<int8_t>(b[2 + k]), (int)std::lround(x[k] / (float)d)) << k;
  EXPECT_EQ(static_cast<int8_t>(b[2 + 31]), 127);
}

// The q4_0 block of ggml: d = -m/8 for the signed value m of largest magnitude, q = min(15,
// trunc(x/d + 8.5)); byte j holds weight j in its low nibble and weight j+16 in its high nibble.
TEST(QuantFormat, Q4_0BlockIsGgmls) {
  std::vector<float> x(32);
  for (int k = 0; k < 32; k++) x[k] = 0.1f * (k % 7) - 0.2f;
  x[20] = -1.6f;  // the extreme: d = 0.2, so x = -1.6 -> q = 0 and x = +1.4 -> 15
  x[3] = 1.4f;
  std::vector<uint8_t> b(18);
  quantize_row(QuantType::q4_0, x.data(), 32, b.data());
  const double d = -1.6 / -8.0;
  EXPECT_NEAR(half_at(b.data()), d, 1e-4);
  const float id = 1.0f / static_cast<float>(-1.6f / -8.0f);
  for (int j = 0; j < 16; j++) {
    int lo = std::min(15, (int)(int8_t)(x[j] * id + 8.5f)), hi = std::min(15, (int)(int8_t)(x[j + 16] * id + 8.5f));
    EXPECT_EQ(b[2 + j] & 0x0f, lo) << j;
    EXPECT_EQ(b[2 + j] >> 4, hi) << j;
  }
  EXPECT_EQ(b[2 + 4] >> 4, 0);     // weight 20 = -1.6
  EXPECT_EQ(b[2 + 3] & 0x0f, 15);  // weight 3 = +1.4: 1.4/0.2 + 8.5 = 15.5 -> 15
}

// Dequantisation error against float64: at most half a step (q8_0, bf16) or one step at the
// clamped edge (q4_0) per weight.
TEST(QuantFormat, RoundTripErrorWithinHalfAStep) {
  Rng rng(7);
  const int n = 32 * 40;
  std::vector<float> x = random_normal(n, rng, 0.05f);
  x[5] = 0.0f;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block: d = 0, decodes to zeros
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0, QuantType::bf16, QuantType::f16}) {
    std::vector<uint8_t> q(quant_row_bytes(t, n));
    std::vector<float> y(n);
    quantize_row(t, x.data(), n, q.data());
    dequantize_row(t, q.data(), n, y.data());
    for (int b = 0; b < n / 32; b++) {
      double amax = 0;
      for (int k = 0; k < 32; k++) amax = std::max(amax, std::fabs((double)x[32 * b + k]));
      for (int k = 0; k < 32; k++) {
        const int i = 32 * b + k;
        const double err = std::fabs((double)y[i] - x[i]);
        if (t == QuantType::bf16) EXPECT_LE(err, std::fabs((double)x[i]) * std::ldexp(1.0, -8)) << i;
        // half of 2^-10 relative, or of the subnormal step 2^-24 below 2^-14
        else if (t == QuantType::f16)
          EXPECT_LE(err, std::max(std::fabs((double)x[i]) * std::ldexp(1.0, -11), std::ldexp(1.0, -25))) << i;
        // half a step of the fp16-rounded scale, plus the scale's own rounding (2^-11 relative)
        else if (t == QuantType::q8_0) EXPECT_LE(err, amax / 127 * 0.5 * 1.01 + amax * 1e-3) << i;
        else EXPECT_LE(err, amax / 8 * 1.01 + amax * 1e-3) << i;
      }
      if (b == 2) {
        for (int k = 0; k < 32; k++) EXPECT_EQ(y[64 + k], 0.0f);
      }
    }
  }
}

// float64 reference of the quantised linear: the weights as stored (dequantised), the activations
// as the kernel quantises them (q8_0, half to even, fp16-rounded scales) for q8_0 / q4_0.
std::vector<double> reference(const QuantMatrix& w, const std::vector<float>& in, const std::vector<float>& bias,
                              int N) {
  const int O = w.O, I = w.I;
  std::vector<float> wf((size_t)O * I);
  for (int o = 0; o < O; o++) dequantize_row(w.type, w.data + (size_t)o * w.row_bytes(), I, wf.data() + (size_t)o * I);
  std::vector<double> x(in.begin(), in.end());
  if (!is_float16(w.type)) {
    for (size_t b = 0; b < x.size() / 32; b++) {
      double amax = 0;
      for (int k = 0; k < 32; k++) amax = std::max(amax, std::fabs(x[32 * b + k]));
      const float id = amax != 0 ? 127.0f / (float)amax : 0.0f;
      const double d = half_to_float(float_to_half((float)amax / 127.0f));
      for (int k = 0; k < 32; k++) x[32 * b + k] = d * std::nearbyint(in[32 * b + k] * id);
    }
  }
  std::vector<double> out((size_t)N * O);
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int i = 0; i < I; i++) s += (double)wf[(size_t)o * I + i] * x[(size_t)n * I + i];
      out[(size_t)n * O + o] = s;
    }
  return out;
}

struct Case {
  QuantType t;
  int N, I, O;
  bool bias;
};

TEST(QuantLinear, MatchesFloat64Reference) {
  Rng rng(11);
  for (Case c : {Case{QuantType::q8_0, 1, 64, 37, true}, Case{QuantType::q4_0, 1, 96, 33, false},
                 Case{QuantType::bf16, 1, 72, 19, true}, Case{QuantType::q8_0, 5, 128, 40, false},
                 Case{QuantType::q4_0, 7, 64, 48, true}, Case{QuantType::bf16, 6, 40, 21, false},
                 Case{QuantType::q8_0, 20, 64, 24, true}, Case{QuantType::q4_0, 18, 32, 17, false},
                 Case{QuantType::f16, 1, 72, 19, true}, Case{QuantType::f16, 9, 43, 21, false},
                 Case{QuantType::f16, 70, 40, 18, true}, Case{QuantType::bf16, 13, 24, 70, true},
                 Case{QuantType::f16, 8, 37, 64, false}, Case{QuantType::q8_0, 33, 64, 70, true},
                 Case{QuantType::q4_0, 17, 96, 64, false}}) {
    SCOPED_TRACE(std::string(quant_type_name(c.t)) + " N=" + std::to_string(c.N) + " I=" + std::to_string(c.I) +
                 " O=" + std::to_string(c.O));
    std::vector<float> wf = random_normal((size_t)c.O * c.I, rng, 0.1f), in = random_normal((size_t)c.N * c.I, rng);
    std::vector<float> bias = c.bias ? random_normal(c.O, rng) : std::vector<float>{};
    const size_t rb = quant_row_bytes(c.t, c.I);
    std::vector<uint8_t> wq(rb * c.O);
    for (int o = 0; o < c.O; o++) quantize_row(c.t, wf.data() + (size_t)o * c.I, c.I, wq.data() + o * rb);
    QuantMatrix w{c.t, c.O, c.I, wq.data()};
    const std::vector<double> want = reference(w, in, bias, c.N);
    QuantScratch s;
    std::vector<uint8_t> wp(wq.size());
    pack_rows(c.t, wq.data(), c.O, c.I, wp.data());
    const QuantMatrix packed{c.t, c.O, c.I, wp.data(), true};
    for (int v = 0; v < 6; v++) {
      const QuantPrefill p = v % 3 == 0   ? QuantPrefill::auto_
                             : v % 3 == 1 ? QuantPrefill::dot
                                          : QuantPrefill::dequant_gemm;
      SCOPED_TRACE(v >= 3 ? "packed" : "plain");
      std::vector<float> out((size_t)c.N * c.O, NAN);
      linear_forward_quant(out.data(), in.data(), v >= 3 ? packed : w, bias.empty() ? nullptr : bias.data(), c.N, s, p);
      // The int8 products are exact; only fp32 sums (and, for dequant_gemm, the fp32 activations
      // instead of q8_0 ones) differ.
      const bool gemm = p == QuantPrefill::dequant_gemm || (p == QuantPrefill::auto_ && c.N >= kDequantGemmRows);
      if (gemm && !is_float16(c.t)) {
        EXPECT_REL_LE(out, want, 2e-2);  // q8_0 activation rounding: < 1/127 relative per element
      } else {
        EXPECT_REL_LE(out, want, 1e-5);
      }
    }
    // Against the unquantised float64 product: the quantisation error itself.
    std::vector<double> exact((size_t)c.N * c.O);
    for (int n = 0; n < c.N; n++)
      for (int o = 0; o < c.O; o++) {
        double v = c.bias ? bias[o] : 0.0;
        for (int i = 0; i < c.I; i++) v += (double)wf[(size_t)o * c.I + i] * in[(size_t)n * c.I + i];
        exact[(size_t)n * c.O + o] = v;
      }
    std::vector<float> out((size_t)c.N * c.O);
    linear_forward_quant(out.data(), in.data(), w, bias.empty() ? nullptr : bias.data(), c.N, s);
    EXPECT_REL_LE(out, exact,
                  c.t == QuantType::q4_0   ? 0.15
                  : c.t == QuantType::q8_0 ? 0.02
                  : c.t == QuantType::f16  ? 2e-3
                                           : 0.01);
  }
}

// The AVX2 kernels against the portable ones on the same quantised activations.
TEST(QuantLinear, Avx2MatchesScalar) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
    GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU";
  using namespace quant_detail;
  Rng rng(3);
  // int8: five packed groups and 5 plain rows; bf16 / f16: one group and 13 plain rows; activation
  // rows: a tile of 6 and a remainder of 3.
  const int I = 32 * 9, O = 45, N = 9, nb = I / 32;
  std::vector<float> in = random_normal((size_t)N * I, rng);
  in[3] = 0.5f;
  std::vector<int8_t> qa((size_t)N * I), qb((size_t)N * I);
  std::vector<float> da((size_t)N * nb), db((size_t)N * nb);
  std::vector<int32_t> sa((size_t)N * nb), sb((size_t)N * nb);
  for (int n = 0; n < N; n++) {
    quantize_act_scalar(in.data() + n * I, nb, qa.data() + n * I, da.data() + n * nb, sa.data() + n * nb);
    quantize_act_avx2(in.data() + n * I, nb, qb.data() + n * I, db.data() + n * nb, sb.data() + n * nb);
  }
  EXPECT_EQ(qa, qb);
  EXPECT_EQ(da, db);
  EXPECT_EQ(sa, sb);
  for (int b = 0; b < nb; b++) EXPECT_EQ(sa[b], std::accumulate(qa.begin() + 32 * b, qa.begin() + 32 * b + 32, 0));
  ActQ8 x{qa.data(), da.data(), sa.data(), nb};
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0, QuantType::bf16, QuantType::f16}) {
    std::vector<float> wf = random_normal((size_t)O * I, rng, 0.1f);
    std::vector<uint8_t> wq(quant_row_bytes(t, I) * O), wp(wq.size());
    for (int o = 0; o < O; o++) quantize_row(t, wf.data() + o * I, I, wq.data() + o * quant_row_bytes(t, I));
    for (bool packed : {false, true}) {
      if (packed) pack_rows(t, wq.data(), O, I, wp.data());
      QuantMatrix w{t, O, I, packed ? wp.data() : wq.data(), packed};
      for (int rows : {1, N}) {
        std::vector<float> a((size_t)rows * O), b((size_t)rows * O);
        // int32 block sums and fp32 FMAs in block order, or fp32 FMAs in weight order: the same bits
        if (is_float16(t)) {
          float16_rows_scalar(w, 0, O, in.data(), rows, a.data(), O);
          float16_rows_avx2(w, 0, O, in.data(), rows, b.data(), O);
        } else {
          dot_rows_scalar(w, 0, O, x, rows, a.data(), O);
          dot_rows_avx2(w, 0, O, x, rows, b.data(), O);
        }
        EXPECT_EQ(a, b) << quant_type_name(t) << (packed ? " packed" : " plain") << " rows " << rows;
        if (rows == 1 && packed && !is_float16(t) && int8_vnni_available()) {
          std::vector<float> c(O);
          int8_gemv_avx512(w, 0, O, x, c.data());
          EXPECT_EQ(a, c) << quant_type_name(t) << " VNNI decode";
        }
      }
    }
    std::vector<float> da_(I), db_(I);
    dequantize_row(t, wq.data(), I, da_.data());
    dequantize_row_avx2(t, wq.data(), I, db_.data());
    EXPECT_EQ(da_, db_) << quant_type_name(t);
  }
#else
  GTEST_SKIP() << "not x86-64";
#endif
}

// The VNNI decode at the ends of the int8 ranges: weights -128 (q8_0 from a GGUF may hold it; the
// +128 flip makes it 0) and 127, q4_0 nibbles 0 and 15, activations +-127: exact int32 sums, the
// same bits as the portable kernel.
TEST(QuantLinear, VnniDecodeIsExactAtTheExtremes) {
  using namespace quant_detail;
  if (!int8_vnni_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  const int I = 32 * 3, O = 19, nb = I / 32;  // two packed groups and 3 plain rows
  std::vector<int8_t> q(I);
  std::vector<float> d(nb, 0.75f);
  std::vector<int32_t> sum(nb, 0);
  for (int i = 0; i < I; i++) q[i] = i % 3 == 0 ? -127 : 127, sum[i / 32] += q[i];
  const ActQ8 x{q.data(), d.data(), sum.data(), nb};
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0}) {
    const size_t rb = quant_row_bytes(t, I);
    std::vector<uint8_t> wq(rb * O), wp(wq.size());
    for (int o = 0; o < O; o++)
      for (int b = 0; b < nb; b++) {
        uint8_t* blk = wq.data() + o * rb + b * (rb / nb);
        const uint16_t h = float_to_half(0.5f + 0.125f * o);
        blk[0] = h & 0xff, blk[1] = h >> 8;
        for (size_t k = 2; k < rb / nb; k++)  // all lowest, all highest, or alternating
          blk[k] = t == QuantType::q8_0 ? (o % 3 == 0   ? 0x80
                                           : o % 3 == 1 ? 0x7f
                                                        : (k % 2 ? 0x80 : 0x7f))
                                        : (o % 3 == 0   ? 0x00
                                           : o % 3 == 1 ? 0xff
                                                        : 0x0f);
      }
    pack_rows(t, wq.data(), O, I, wp.data());
    const QuantMatrix w{t, O, I, wp.data(), true};
    std::vector<float> want(O), got(O);
    dot_rows_scalar(w, 0, O, x, 1, want.data(), O);
    int8_gemv_avx512(w, 0, O, x, got.data());
    EXPECT_EQ(want, got) << quant_type_name(t);
    for (int o = 0; o < O; o++) {  // and against float64 over the stored values
      std::vector<float> wf(I);
      dequantize_row(t, wq.data() + o * rb, I, wf.data());
      double ref = 0;
      for (int i = 0; i < I; i++) ref += (double)wf[i] * q[i] * d[i / 32];
      EXPECT_NEAR(got[o], ref, 1e-5 * std::max(1.0, std::fabs(ref))) << quant_type_name(t) << " row " << o;
    }
  }
}

// Row r of an M-row call of w is bitwise the row alone (the decode path), for M = 1..maxM, 1 and
// 2 threads; *alone: the rows alone.
void expect_same_bits_in_any_batch(const QuantMatrix& w, const std::vector<float>& in, const std::vector<float>& bias,
                                   int maxM, std::vector<float>* alone) {
  const int O = w.O, I = w.I;
  QuantScratch s;
  alone->assign((size_t)maxM * O, 0.0f);
  for (int n = 0; n < maxM; n++)
    linear_forward_quant(alone->data() + (size_t)n * O, in.data() + (size_t)n * I, w, bias.data(), 1, s);
  const int threads = omp_get_max_threads();
  for (int nt : {1, 2}) {
    omp_set_num_threads(nt);
    for (int M = 1; M <= maxM; M++) {
      std::vector<float> out((size_t)M * O);
      linear_forward_quant(out.data(), in.data(), w, bias.data(), M, s, QuantPrefill::dot);
      ASSERT_TRUE(std::equal(out.begin(), out.end(), alone->begin())) << "M=" << M << " threads=" << nt;
    }
  }
  omp_set_num_threads(threads);
}

// The engine's packed layout of t (O = 45 rows): batches bitwise as the rows alone, and as the
// plain matrix's rows.
void expect_packed_rows_same_bits(QuantType t, int I, Rng& rng) {
  SCOPED_TRACE(quant_type_name(t));
  const int O = 45, maxM = 40;
  const std::vector<float> wf = random_normal((size_t)O * I, rng, 0.1f), bias = random_normal(O, rng);
  const std::vector<float> in = random_normal((size_t)maxM * I, rng);
  std::vector<uint8_t> wq(quant_row_bytes(t, I) * O), wp(wq.size());
  for (int o = 0; o < O; o++) quantize_row(t, wf.data() + o * I, I, wq.data() + o * quant_row_bytes(t, I));
  pack_rows(t, wq.data(), O, I, wp.data());
  std::vector<float> alone;
  expect_same_bits_in_any_batch(QuantMatrix{t, O, I, wp.data(), true}, in, bias, maxM, &alone);
  QuantScratch s;
  std::vector<float> plain_out((size_t)maxM * O);
  linear_forward_quant(plain_out.data(), in.data(), QuantMatrix{t, O, I, wq.data()}, bias.data(), maxM, s,
                       QuantPrefill::dot);
  EXPECT_EQ(alone, plain_out);
}

// q8_0 / q4_0 / q4_k packed in groups of 8 (tiles of 4 rows, remainders, passes; 16+ rows on AMX
// int8 where the CPU has it).
TEST(QuantLinear, PackedRowIsTheSameBitsInAnyBatch) {
  Rng rng(41);
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0, QuantType::q4_k})
    EXPECT_NO_FATAL_FAILURE(expect_packed_rows_same_bits(t, t == QuantType::q4_k ? 512 : 32 * 5, rng));
}

// bf16 / f16 (one group of 32 and 13 plain rows; tiles of 6 or 12 activation rows, remainders,
// passes; I = 43).
TEST(QuantLinear, Float16RowIsTheSameBitsInAnyBatch) {
  Rng rng(47);
  for (QuantType t : {QuantType::bf16, QuantType::f16})
    EXPECT_NO_FATAL_FAILURE(expect_packed_rows_same_bits(t, 43, rng));
}

// AMX (bf16 weights, bf16-rounded activations, kernels/cpu/quant_amx.cpp): against float64 over
// the rounded activations; row r of an M-row call (tiles of 16 and 32 rows, remainders) bitwise
// the row alone, 1 and 2 threads; the layout dequantises as plain.
std::vector<uint8_t> bf16_rows(const std::vector<float>& wf, int O, int I) {
  std::vector<uint8_t> wq(quant_row_bytes(QuantType::bf16, I) * O);
  for (int o = 0; o < O; o++)
    quantize_row(QuantType::bf16, wf.data() + (size_t)o * I, I, wq.data() + (size_t)o * I * 2);
  return wq;
}

TEST(QuantAmx, Bf16MatchesFloat64Reference) {
  if (!amx_bf16_fits(kAmxK)) GTEST_SKIP() << "no AMX-BF16 on this CPU (or MINDLLM_NO_AMX)";
  Rng rng(53);
  for (Case c : {Case{QuantType::bf16, 1, 64, 45, true}, Case{QuantType::bf16, 7, 96, 70, false},
                 Case{QuantType::bf16, 40, 128, 64, true}, Case{QuantType::bf16, 33, 32, 33, false}}) {
    SCOPED_TRACE("N=" + std::to_string(c.N) + " I=" + std::to_string(c.I) + " O=" + std::to_string(c.O));
    const std::vector<float> wf = random_normal((size_t)c.O * c.I, rng, 0.1f);
    std::vector<float> in = random_normal((size_t)c.N * c.I, rng);
    std::vector<float> bias = c.bias ? random_normal(c.O, rng) : std::vector<float>{};
    const std::vector<uint8_t> wq = bf16_rows(wf, c.O, c.I);
    std::vector<uint8_t> wp(wq.size());
    pack_rows_amx(wq.data(), c.O, c.I, wp.data());
    QuantScratch s;
    std::vector<float> out((size_t)c.N * c.O, NAN);
    linear_forward_quant(out.data(), in.data(), QuantMatrix{c.t, c.O, c.I, wp.data(), true, true},
                         bias.empty() ? nullptr : bias.data(), c.N, s);
    for (float& v : in) v = bf16_to_float(float_to_bf16(v));  // what the tiles multiply
    EXPECT_REL_LE(out, reference(QuantMatrix{c.t, c.O, c.I, wq.data()}, in, bias, c.N), 1e-5);
  }
}

TEST(QuantAmx, Bf16RowIsTheSameBitsInAnyBatch) {
  if (!amx_bf16_fits(kAmxK)) GTEST_SKIP() << "no AMX-BF16 on this CPU (or MINDLLM_NO_AMX)";
  Rng rng(59);
  const int O = 77, I = 64, maxM = 40;  // two groups of 32 and 13 plain rows
  const std::vector<float> wf = random_normal((size_t)O * I, rng, 0.1f), bias = random_normal(O, rng);
  const std::vector<float> in = random_normal((size_t)maxM * I, rng);
  const std::vector<uint8_t> wq = bf16_rows(wf, O, I);
  std::vector<uint8_t> wp(wq.size());
  pack_rows_amx(wq.data(), O, I, wp.data());
  const QuantMatrix w{QuantType::bf16, O, I, wp.data(), true, true};
  std::vector<float> alone;
  expect_same_bits_in_any_batch(w, in, bias, maxM, &alone);
  std::vector<float> a(I), b(I);
  for (int o = 0; o < O; o++) {
    dequantize_matrix_row(QuantMatrix{QuantType::bf16, O, I, wq.data()}, o, a.data());
    dequantize_matrix_row(w, o, b.data());
    EXPECT_EQ(a, b) << "row " << o;
  }
}

// pack_rows moves every block: each row dequantises to the same values packed and plain.
TEST(QuantFormat, PackedRowsDequantiseAsPlain) {
  Rng rng(43);
  for (QuantType t : {QuantType::q8_0, QuantType::q4_0, QuantType::bf16, QuantType::f16})
    for (int O : {8, 13, 24, 45, 64}) {
      const int I = 64;
      const std::vector<float> wf = random_normal((size_t)O * I, rng);
      std::vector<uint8_t> wq(quant_row_bytes(t, I) * O), wp(wq.size());
      for (int o = 0; o < O; o++) quantize_row(t, wf.data() + o * I, I, wq.data() + o * quant_row_bytes(t, I));
      pack_rows(t, wq.data(), O, I, wp.data());
      if (O >= pack_group_rows(t)) { EXPECT_NE(wq, wp); }
      std::vector<float> a(I), b(I);
      for (int o = 0; o < O; o++) {
        dequantize_matrix_row(QuantMatrix{t, O, I, wq.data()}, o, a.data());
        dequantize_matrix_row(QuantMatrix{t, O, I, wp.data(), true}, o, b.data());
        EXPECT_EQ(a, b) << quant_type_name(t) << " O=" << O << " row " << o;
      }
    }
}

}  // namespace
}  // namespace mindllm::cpu
