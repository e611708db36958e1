// attention_cached_forward against attention_forward: rows [P, T) of a full causal pass equal a
// branch of those rows attending to a cache of rows [0, P); several branches at once each equal
// their own full pass (GQA, local windows, GPT-Neo scale, strided fused q|k|v rows).
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_cached.h"

using namespace mindllm;
using namespace mindllm::test;

namespace {

struct CachedCase {
  int Hq, Hkv, D, window, prefix;
  std::vector<int> lens;  // branch lengths
};

class AttentionCached : public ::testing::TestWithParam<CachedCase> {};

TEST_P(AttentionCached, BranchesEqualFullPasses) {
  const CachedCase c = GetParam();
  Rng rng(1234 + c.prefix * 7 + c.window);
  const int Q = c.Hq * c.D, KV = c.Hkv * c.D, ld = Q + 2 * KV + 3;  // padded fused rows
  const float scale = c.window ? 1.0f : 1.0f / std::sqrt((float)c.D);
  const int P = c.prefix;
  // Shared prefix rows, then each branch's own rows.
  std::vector<float> prefix = random_normal((size_t)P * ld, rng);
  std::vector<float> cache_k((size_t)P * KV), cache_v((size_t)P * KV);
  for (int t = 0; t < P; t++)
    for (int i = 0; i < KV; i++) {
      cache_k[(size_t)t * KV + i] = prefix[(size_t)t * ld + Q + i];
      cache_v[(size_t)t * KV + i] = prefix[(size_t)t * ld + Q + KV + i];
    }
  std::vector<int> offs;
  int rows = 0;
  for (int L : c.lens) offs.push_back(rows), rows += L;
  std::vector<float> packed = random_normal((size_t)rows * ld, rng);
  std::vector<float> out((size_t)rows * Q, 0.0f);
  cpu::CachedAttentionShape s{(int)c.lens.size(), offs.data(), c.lens.data(), P, c.Hq, c.Hkv, c.D,
                              ld, ld, ld, Q, KV, scale, c.window};
  cpu::attention_cached_forward(out.data(), packed.data(), packed.data() + Q, packed.data() + Q + KV,
                                cache_k.data(), cache_v.data(), s);
  for (size_t b = 0; b < c.lens.size(); b++) {
    const int L = c.lens[b], T = P + L;
    std::vector<float> full((size_t)T * ld);
    std::copy(prefix.begin(), prefix.end(), full.begin());
    std::copy(packed.begin() + (size_t)offs[b] * ld, packed.begin() + (size_t)(offs[b] + L) * ld,
              full.begin() + (size_t)P * ld);
    std::vector<float> fout((size_t)T * Q), stats((size_t)c.Hq * T * cpu::kAttentionStats);
    cpu::AttentionShape fs{1, T, c.Hq, c.Hkv, c.D, ld, ld, ld, Q, scale, c.window};
    cpu::attention_forward(fout.data(), stats.data(), full.data(), full.data() + Q, full.data() + Q + KV, fs);
    double err = 0;
    for (int t = 0; t < L; t++)
      for (int i = 0; i < Q; i++)
        err = std::max(err, (double)std::fabs(out[(size_t)(offs[b] + t) * Q + i] - fout[(size_t)(P + t) * Q + i]));
    EXPECT_LT(err, 2e-5) << "branch " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionCached,
    ::testing::Values(CachedCase{4, 4, 8, 0, 0, {5}},            // prefill, no cache
                      CachedCase{4, 4, 8, 0, 13, {1}},           // decode one token
                      CachedCase{4, 2, 8, 0, 17, {3, 1, 6}},     // GQA, several branches
                      CachedCase{6, 2, 16, 0, 40, {9, 9}},       // GQA 3:1
                      CachedCase{4, 4, 8, 5, 3, {4, 7}},         // local window wider than prefix
                      CachedCase{4, 4, 8, 5, 20, {1, 8, 2}},     // local window inside the cache
                      CachedCase{2, 1, 4, 1, 6, {3}}));          // window 1: only itself

}  // namespace
