// attention_paged_forward against attention_forward: the rows [past, past + L) of each sequence's
// full causal pass equal those rows attending to the paged cache, for several sequences at once
// with different past lengths, blocks scattered in the pool (GQA, local windows, GPT-Neo scale,
// strided fused q|k|v rows), with the blocks in fp32, bf16 and q8_0.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "core/dtype.h"
#include "kernel_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_paged.h"
#include "kernels/cpu/quant.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

struct PagedCase {
  int Hq, Hkv, D, window, block;
  std::vector<std::pair<int, int>> seqs;  // (past, new rows)
};

class AttentionPaged : public ::testing::TestWithParam<PagedCase> {};

// The cache element types a case runs with (q8_0 needs whole blocks of 32 per head).
std::vector<KvType> kv_types(const PagedCase& c) {
  if (c.D % kKvQ8Block == 0) return {KvType::f32, KvType::bf16, KvType::q8_0};
  return {KvType::f32, KvType::bf16};
}

// Runs attention_paged_forward for sequences whose full fused q|k|v rows are `full` (row stride
// ld; the last L rows of each are the new queries), with their keys and values in a shuffled pool
// of blocks of type kv, rows of KV + pad values (unwritten bytes 0xff: NaN in fp32 / bf16 / q8_0).
// Returns the packed output rows.
std::vector<float> run_paged(const PagedCase& c, const std::vector<std::pair<int, int>>& seqs,
                             const std::vector<std::vector<float>>& full, int ld, float scale, KvType kv, Rng& rng,
                             bool portable = false, int pad = 0) {
  const int Q = c.Hq * c.D, KV = c.Hkv * c.D;
  const size_t row_bytes = kv_row_bytes(kv, KV + pad);
  int rows = 0, blocks = 0;
  for (auto [past, L] : seqs) rows += L, blocks += (past + L + c.block - 1) / c.block;
  std::vector<int> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  for (int i = blocks - 1; i > 0; i--) std::swap(order[i], order[(int)(rng.uniform() * (i + 1)) % (i + 1)]);
  std::vector<std::vector<uint8_t>> kpool(blocks, std::vector<uint8_t>(c.block * row_bytes, 0xff)), vpool = kpool;
  std::vector<std::vector<const void*>> kb(seqs.size()), vb(seqs.size());
  std::vector<float> q((size_t)rows * ld), out((size_t)rows * Q, NAN);
  std::vector<cpu::PagedSequence> ps;
  int next_block = 0, row0 = 0;
  for (size_t s = 0; s < seqs.size(); s++) {
    auto [past, L] = seqs[s];
    int b = -1;
    for (int p = 0; p < past + L; p++) {
      if (p % c.block == 0) {
        b = order[next_block++];
        kb[s].push_back(kpool[b].data()), vb[s].push_back(vpool[b].data());
      }
      const float* src = full[s].data() + (size_t)p * ld;
      const size_t at = (size_t)(p % c.block) * row_bytes;
      cpu::kv_encode_row(kv, src + Q, KV, kpool[b].data() + at);
      cpu::kv_encode_row(kv, src + Q + KV, KV, vpool[b].data() + at);
    }
    std::copy(full[s].begin() + (size_t)past * ld, full[s].begin() + (size_t)(past + L) * ld,
              q.begin() + (size_t)row0 * ld);
    ps.push_back(cpu::PagedSequence{row0, L, past, kb[s].data(), vb[s].data()});
    row0 += L;
  }
  cpu::PagedAttentionShape shape{(int)ps.size(), ps.data(), c.Hq,  c.Hkv,    c.D, ld,      Q,
                                 KV + pad,       c.block,   scale, c.window, kv,  portable};
  cpu::attention_paged_forward(out.data(), q.data(), shape);
  return out;
}

TEST_P(AttentionPaged, EqualsFullPassOfEachSequence) {
  const PagedCase c = GetParam();
  for (KvType kv : kv_types(c)) {
    SCOPED_TRACE(std::string(name(kv)) + " cache");
    Rng rng(4321 + c.window * 3 + c.block);
    const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV + 3;  // padded fused rows
    const float scale = c.window ? 1.0f : 1.0f / std::sqrt((float)c.D);
    // Each sequence's full rows [0, past + L); the last L rows are the new (packed) queries.
    std::vector<std::vector<float>> full;
    for (auto [past, L] : c.seqs) full.push_back(random_normal((size_t)(past + L) * ld, rng));
    const std::vector<float> out = run_paged(c, c.seqs, full, ld, scale, kv, rng, false, 32);  // padded rows
    int row0 = 0;
    for (size_t s = 0; s < c.seqs.size(); s++) {
      auto [past, L] = c.seqs[s];
      const int T = past + L;
      // The reference attends to the keys and values as the cache holds them.
      std::vector<float> f = full[s];
      std::vector<uint8_t> enc(kv_row_bytes(kv, KV));
      for (int t = 0; t < T; t++)
        for (int i : {Q, Q + KV}) {
          cpu::kv_encode_row(kv, f.data() + (size_t)t * ld + i, KV, enc.data());
          cpu::kv_decode_row(kv, enc.data(), KV, f.data() + (size_t)t * ld + i);
        }
      std::vector<float> fout((size_t)T * Q), stats((size_t)c.Hq * T * cpu::kAttentionStats);
      cpu::AttentionShape fs{1, T, c.Hq, c.Hkv, c.D, ld, ld, ld, Q, scale, c.window};
      cpu::attention_forward(fout.data(), stats.data(), f.data(), f.data() + Q, f.data() + Q + KV, fs);
      double err = 0;
      for (int t = 0; t < L; t++)
        for (int i = 0; i < Q; i++)
          err = std::max(err, (double)std::fabs(out[(size_t)(row0 + t) * Q + i] - fout[(size_t)(past + t) * Q + i]));
      EXPECT_LT(err, 2e-5) << "sequence " << s;
      row0 += L;
    }
  }
}

// A row's output is the same bits whether its sequence's new rows come in one chunk or one at a
// time, and whatever other sequences share the call (the server's batching vs `generate`).
TEST_P(AttentionPaged, RowsDoNotDependOnChunking) {
  const PagedCase c = GetParam();
  for (KvType kv : kv_types(c)) {
    Rng rng(99 + c.block);
    const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV;
    std::vector<std::vector<float>> full;
    for (auto [past, L] : c.seqs) full.push_back(random_normal((size_t)(past + L) * ld, rng));
    const std::vector<float> together = run_paged(c, c.seqs, full, ld, 0.5f, kv, rng);
    int row0 = 0;
    for (size_t s = 0; s < c.seqs.size(); s++) {
      auto [past, L] = c.seqs[s];
      for (int t = 0; t < L; t++) {
        std::vector<float> rows(full[s].begin(), full[s].begin() + (size_t)(past + t + 1) * ld);
        const std::vector<float> alone = run_paged(c, {{past + t, 1}}, {rows}, ld, 0.5f, kv, rng);
        EXPECT_EQ(std::memcmp(alone.data(), together.data() + (size_t)(row0 + t) * Q, sizeof(float) * Q), 0)
            << "sequence " << s << " row " << t << " " << name(kv);
      }
      row0 += L;
    }
  }
}

// The portable C++ path gives the SIMD paths' bits (AVX2, and AVX-512 for rows without a window),
// for every element type.
TEST_P(AttentionPaged, PortablePathIsTheSameBits) {
  const PagedCase c = GetParam();
  for (KvType kv : kv_types(c)) {
    Rng rng(5 + c.block), order_a(1), order_b(1);
    const int ld = c.Hq * c.D + 2 * c.Hkv * c.D;
    std::vector<std::vector<float>> full;
    for (auto [past, L] : c.seqs) full.push_back(random_normal((size_t)(past + L) * ld, rng));
    const std::vector<float> simd = run_paged(c, c.seqs, full, ld, 0.5f, kv, order_a);
    const std::vector<float> portable = run_paged(c, c.seqs, full, ld, 0.5f, kv, order_b, true);
    EXPECT_EQ(std::memcmp(simd.data(), portable.data(), sizeof(float) * simd.size()), 0) << name(kv);
  }
}

// The cache's formats: fp32 as is, bf16 rounded to nearest even, q8_0 byte for byte as the
// weights' q8_0 (ggml's quantize_row_q8_0_ref), and each read back as the kernels read it: a
// q8_0 element is exactly fp32(d) * q.
TEST(KvCacheRows, EncodeAndDecode) {
  Rng rng(7);
  const int n = 96;
  std::vector<float> x = random_normal(n, rng);
  x[5] = 0.0f, x[40] = -3.5f;                 // a block's extreme
  for (int i = 64; i < 96; i++) x[i] = 0.0f;  // an all-zero block: d = 0
  for (KvType t : {KvType::f32, KvType::bf16, KvType::q8_0}) {
    std::vector<uint8_t> enc(kv_row_bytes(t, n));
    std::vector<float> back(n, NAN);
    cpu::kv_encode_row(t, x.data(), n, enc.data());
    cpu::kv_decode_row(t, enc.data(), n, back.data());
    for (int i = 0; i < n; i++) {
      if (t == KvType::f32) EXPECT_EQ(back[i], x[i]);
      if (t == KvType::bf16) EXPECT_EQ(back[i], bf16_to_float(float_to_bf16(x[i])));
    }
    if (t != KvType::q8_0) continue;
    EXPECT_EQ(enc.size(), 3u * 34u);
    std::vector<uint8_t> w(cpu::quant_row_bytes(cpu::QuantType::q8_0, n));
    cpu::quantize_row(cpu::QuantType::q8_0, x.data(), n, w.data());
    EXPECT_EQ(enc, w);
    for (int i = 0; i < n; i++) {
      const uint8_t* blk = enc.data() + (i / 32) * 34;
      const float d = half_to_float((uint16_t)(blk[0] | blk[1] << 8));
      EXPECT_EQ(back[i], d * (float)(int8_t)blk[2 + i % 32]) << i;
      EXPECT_NEAR(back[i], x[i], std::fabs(d) * 0.5f + 1e-7f) << i;  // within half a step
    }
    EXPECT_EQ((int8_t)enc[34 + 2 + 8], -127);  // x[40], its block's extreme, is -127 steps
    for (int i = 64; i < 96; i++) EXPECT_EQ(back[i], 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionPaged,
    ::testing::Values(PagedCase{4, 4, 8, 0, 4, {{0, 5}}},                   // prefill, empty cache
                      PagedCase{4, 4, 8, 0, 4, {{13, 1}}},                  // decode one token
                      PagedCase{4, 2, 8, 0, 3, {{17, 3}, {0, 1}, {5, 6}}},  // GQA, mixed prefill + decode
                      PagedCase{6, 2, 16, 0, 16, {{40, 9}, {2, 9}}},        // GQA 3:1
                      PagedCase{4, 4, 8, 5, 4, {{3, 4}, {0, 7}}},           // local window wider than the past
                      PagedCase{4, 4, 8, 5, 2, {{20, 1}, {9, 8}, {1, 2}}},  // local window inside the cache
                      PagedCase{2, 1, 4, 1, 5, {{6, 3}}},                   // window 1: only itself
                      // head sizes of real models (AVX2: eight keys per pass, short last passes,
                      // passes across blocks; 72 = a partial register tile of values)
                      PagedCase{4, 2, 64, 0, 16, {{37, 21}, {0, 13}, {50, 1}}},
                      PagedCase{2, 2, 72, 7, 8, {{30, 5}, {0, 3}}}, PagedCase{2, 1, 128, 0, 32, {{70, 2}}}));

}  // namespace
