// attention_paged_forward against attention_forward: the rows [past, past + L) of each sequence's
// full causal pass equal those rows attending to the paged cache, for several sequences at once
// with different past lengths, blocks scattered in the pool (GQA, local windows, GPT-Neo scale,
// strided fused q|k|v rows).
#include <gtest/gtest.h>

#include <numeric>

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

TEST_P(AttentionPaged, EqualsFullPassOfEachSequence) {
  const PagedCase c = GetParam();
  Rng rng(4321 + c.window * 3 + c.block);
  const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV + 3;  // padded fused rows
  const float scale = c.window ? 1.0f : 1.0f / std::sqrt((float)c.D);
  // Each sequence's full rows [0, past + L); the last L rows are the new (packed) queries.
  std::vector<std::vector<float>> full;
  int rows = 0, blocks = 0;
  for (auto [past, L] : c.seqs) {
    full.push_back(random_normal((size_t)(past + L) * ld, rng));
    rows += L;
    blocks += (past + L + c.block - 1) / c.block;
  }
  // A block pool in shuffled order, filled with each sequence's keys and values.
  std::vector<int> order(blocks);
  std::iota(order.begin(), order.end(), 0);
  for (int i = blocks - 1; i > 0; i--) std::swap(order[i], order[(int)(rng.uniform() * (i + 1)) % (i + 1)]);
  std::vector<std::vector<float>> kpool(blocks, std::vector<float>((size_t)c.block * KV, NAN)), vpool = kpool;
  std::vector<std::vector<const float*>> kb(c.seqs.size()), vb(c.seqs.size());
  std::vector<float> q((size_t)rows * ld), out((size_t)rows * Q, NAN);
  std::vector<cpu::PagedSequence> ps;
  int next_block = 0, row0 = 0;
  for (size_t s = 0; s < c.seqs.size(); s++) {
    auto [past, L] = c.seqs[s];
    for (int p = 0; p < past + L; p++) {
      if (p % c.block == 0) {
        const int b = order[next_block++];
        kb[s].push_back(kpool[b].data()), vb[s].push_back(vpool[b].data());
      }
      const float* src = full[s].data() + (size_t)p * ld;
      std::copy(src + Q, src + Q + KV, const_cast<float*>(kb[s].back()) + (size_t)(p % c.block) * KV);
      std::copy(src + Q + KV, src + Q + 2 * KV, const_cast<float*>(vb[s].back()) + (size_t)(p % c.block) * KV);
    }
    std::copy(full[s].begin() + (size_t)past * ld, full[s].end(), q.begin() + (size_t)row0 * ld);
    ps.push_back(cpu::PagedSequence{row0, L, past, kb[s].data(), vb[s].data()});
    row0 += L;
  }
  cpu::PagedAttentionShape shape{(int)ps.size(), ps.data(), c.Hq, c.Hkv, c.D, ld, Q, KV, c.block, scale, c.window};
  cpu::attention_paged_forward(out.data(), q.data(), shape);
  for (size_t s = 0; s < c.seqs.size(); s++) {
    auto [past, L] = c.seqs[s];
    const int T = past + L;
    std::vector<float> fout((size_t)T * Q), stats((size_t)c.Hq * T * cpu::kAttentionStats);
    cpu::AttentionShape fs{1, T, c.Hq, c.Hkv, c.D, ld, ld, ld, Q, scale, c.window};
    const float* f = full[s].data();
    cpu::attention_forward(fout.data(), stats.data(), f, f + Q, f + Q + KV, fs);
    double err = 0;
    for (int t = 0; t < L; t++)
      for (int i = 0; i < Q; i++)
        err =
            std::max(err, (double)std::fabs(out[(size_t)(ps[s].row0 + t) * Q + i] - fout[(size_t)(past + t) * Q + i]));
    EXPECT_LT(err, 2e-5) << "sequence " << s;
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
                      PagedCase{2, 1, 4, 1, 5, {{6, 3}}}));                 // window 1: only itself

}  // namespace
