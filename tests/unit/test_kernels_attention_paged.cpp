// attention_paged_forward against attention_forward: the rows [past, past + L) of each sequence's
// full causal pass equal those rows attending to the paged cache, for several sequences at once
// with different past lengths, blocks scattered in the pool (GQA, local windows, GPT-Neo scale,
// strided fused q|k|v rows).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "core/dtype.h"
#include "kernel_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_paged.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

struct PagedCase {
  int Hq, Hkv, D, window, block;
  std::vector<std::pair<int, int>> seqs;  // (past, new rows)
};

class AttentionPaged : public ::testing::TestWithParam<PagedCase> {};

// bf16 bits of x, rounded to nearest even, and back.
float bf16_round(float x) { return bf16_to_float(float_to_bf16(x)); }

// Runs attention_paged_forward for sequences whose full fused q|k|v rows are `full` (row stride
// ld; the last L rows of each are the new queries), with their keys and values in a shuffled pool
// of blocks, fp32 or bf16. Returns the packed output rows.
std::vector<float> run_paged(const PagedCase& c, const std::vector<std::pair<int, int>>& seqs,
                             const std::vector<std::vector<float>>& full, int ld, float scale, bool bf16, Rng& rng) {
  const int Q = c.Hq * c.D, KV = c.Hkv * c.D;
  int rows = 0, blocks = 0;
  for (auto [past, L] : seqs) rows += L, blocks += (past + L + c.block - 1) / c.block;
  std::vector<int> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  for (int i = blocks - 1; i > 0; i--) std::swap(order[i], order[(int)(rng.uniform() * (i + 1)) % (i + 1)]);
  std::vector<std::vector<float>> kpool(blocks, std::vector<float>((size_t)c.block * KV, NAN)), vpool = kpool;
  std::vector<std::vector<uint16_t>> kpool16(blocks, std::vector<uint16_t>((size_t)c.block * KV, 0x7fc0)),
      vpool16 = kpool16;
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
        if (bf16) kb[s].push_back(kpool16[b].data()), vb[s].push_back(vpool16[b].data());
        else kb[s].push_back(kpool[b].data()), vb[s].push_back(vpool[b].data());
      }
      const float* src = full[s].data() + (size_t)p * ld;
      const size_t at = (size_t)(p % c.block) * KV;
      for (int i = 0; i < KV; i++) {
        kpool[b][at + i] = src[Q + i], vpool[b][at + i] = src[Q + KV + i];
        kpool16[b][at + i] = float_to_bf16(src[Q + i]), vpool16[b][at + i] = float_to_bf16(src[Q + KV + i]);
      }
    }
    std::copy(full[s].begin() + (size_t)past * ld, full[s].begin() + (size_t)(past + L) * ld,
              q.begin() + (size_t)row0 * ld);
    ps.push_back(cpu::PagedSequence{row0, L, past, kb[s].data(), vb[s].data()});
    row0 += L;
  }
  cpu::PagedAttentionShape shape{(int)ps.size(), ps.data(), c.Hq,     c.Hkv, c.D, ld, Q, KV,
                                 c.block,        scale,     c.window, bf16};
  cpu::attention_paged_forward(out.data(), q.data(), shape);
  return out;
}

TEST_P(AttentionPaged, EqualsFullPassOfEachSequence) {
  const PagedCase c = GetParam();
  for (bool bf16 : {false, true}) {
    SCOPED_TRACE(bf16 ? "bf16 cache" : "fp32 cache");
    Rng rng(4321 + c.window * 3 + c.block);
    const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV + 3;  // padded fused rows
    const float scale = c.window ? 1.0f : 1.0f / std::sqrt((float)c.D);
    // Each sequence's full rows [0, past + L); the last L rows are the new (packed) queries.
    std::vector<std::vector<float>> full;
    for (auto [past, L] : c.seqs) full.push_back(random_normal((size_t)(past + L) * ld, rng));
    const std::vector<float> out = run_paged(c, c.seqs, full, ld, scale, bf16, rng);
    int row0 = 0;
    for (size_t s = 0; s < c.seqs.size(); s++) {
      auto [past, L] = c.seqs[s];
      const int T = past + L;
      // The reference attends to the keys and values as the cache holds them.
      std::vector<float> f = full[s];
      if (bf16)
        for (int t = 0; t < T; t++)
          for (int i = Q; i < Q + 2 * KV; i++) f[(size_t)t * ld + i] = bf16_round(f[(size_t)t * ld + i]);
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
  for (bool bf16 : {false, true}) {
    Rng rng(99 + c.block);
    const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV;
    std::vector<std::vector<float>> full;
    for (auto [past, L] : c.seqs) full.push_back(random_normal((size_t)(past + L) * ld, rng));
    const std::vector<float> together = run_paged(c, c.seqs, full, ld, 0.5f, bf16, rng);
    int row0 = 0;
    for (size_t s = 0; s < c.seqs.size(); s++) {
      auto [past, L] = c.seqs[s];
      for (int t = 0; t < L; t++) {
        std::vector<float> rows(full[s].begin(), full[s].begin() + (size_t)(past + t + 1) * ld);
        const std::vector<float> alone = run_paged(c, {{past + t, 1}}, {rows}, ld, 0.5f, bf16, rng);
        EXPECT_EQ(std::memcmp(alone.data(), together.data() + (size_t)(row0 + t) * Q, sizeof(float) * Q), 0)
            << "sequence " << s << " row " << t << (bf16 ? " bf16" : " fp32");
      }
      row0 += L;
    }
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
