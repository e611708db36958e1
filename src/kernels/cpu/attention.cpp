#include "kernels/cpu/attention.h"

#include "core/profile.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/omp_trap.h"
#include "kernels/cpu/vec_math.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace mindllm::cpu {

namespace {

// Causal attention works on blocks of query rows [r0, r1); such a block needs keys [k0, r1) only,
// k0 = first_key(r0) (the first key never decreases along a row), so the GEMMs skip the masked
// part (about half of it for global attention, most of it for short local windows or packed
// samples). A block's scores, probabilities and their gradients live in per-thread scratch of
// kRowBlock × T floats: row i is query r0 + i, column j is key k0 + j.
constexpr int kRowBlock = 64;

struct Block {
  const AttentionShape& s;
  int b, r0, r1, k0, nk, m;
  Block(const AttentionShape& s_, int b_, int r0_)
      : s(s_), b(b_), r0(r0_), r1(std::min(s_.T, r0_ + kRowBlock)), k0(first_key(s_, b_, r0_)), nk(r1 - k0),
        m(r1 - r0) {}
  // Keys of query row r0 + i: columns [lo, lo + n) of the block.
  int lo(int i) const { return first_key(s, b, r0 + i) - k0; }
  int n(int i) const { return r0 + i - first_key(s, b, r0 + i) + 1; }
};

// Zero a block row outside its keys [lo, lo + n).
inline void zero_outside(float* row, int lo, int n, int nk) {
  std::memset(row, 0, sizeof(float) * lo);
  std::memset(row + lo + n, 0, sizeof(float) * (nk - lo - n));
}

// Scores -> softmax probabilities over each row's keys (0 elsewhere); saves each row's max and
// 1 / sum of exponentials into stats (kAttentionStats floats per query row, from row r0).
MINDLLM_SIMD_CLONES void softmax_block(float* S, int ld, const Block& bl, float* stats) {
  for (int i = 0; i < bl.m; i++) {
    float* row = S + (size_t)i * ld;
    const int lo = bl.lo(i), n = bl.n(i);
    float* r = row + lo;
    const float mx = lane_max(r, n);
    for (int j = 0; j < n; j++) r[j] = vexp(r[j] - mx);
    const float inv = static_cast<float>(1.0 / lane_sum(n, [&](size_t j) { return r[j]; }));
    for (int j = 0; j < n; j++) r[j] *= inv;
    zero_outside(row, lo, n, bl.nk);
    stats[(size_t)i * kAttentionStats] = mx;
    stats[(size_t)i * kAttentionStats + 1] = inv;
  }
}

// Scores -> the forward pass's probabilities again, from its saved stats (the same arithmetic).
MINDLLM_SIMD_CLONES void recompute_probs(float* S, int ld, const Block& bl, const float* stats) {
  for (int i = 0; i < bl.m; i++) {
    float* row = S + (size_t)i * ld;
    const int lo = bl.lo(i), n = bl.n(i);
    const float mx = stats[(size_t)i * kAttentionStats], inv = stats[(size_t)i * kAttentionStats + 1];
    float* r = row + lo;
    for (int j = 0; j < n; j++) {
      const float e = vexp(r[j] - mx);
      r[j] = e * inv;
    }
    zero_outside(row, lo, n, bl.nk);
  }
}

// dP -> dS = P ⊙ (dP - rowsum(P ⊙ dP)) in place over each row's keys, 0 elsewhere.
MINDLLM_SIMD_CLONES void softmax_backward_block(const float* P, float* dS, int ld, const Block& bl) {
  for (int i = 0; i < bl.m; i++) {
    const int lo = bl.lo(i), n = bl.n(i);
    const float* pr = P + (size_t)i * ld + lo;
    float* row = dS + (size_t)i * ld;
    float* dr = row + lo;
    const float dot = static_cast<float>(lane_sum(n, [&](size_t j) { return pr[j] * dr[j]; }));
    for (int j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - dot);
    zero_outside(row, lo, n, bl.nk);
  }
}

}  // namespace

// Each thread copies the head's q, k, v (and dout) slices into contiguous [T × D] scratch, K and V
// also transposed ([D × T]) for the products with K^T or V^T on the right, so every product is
// a small_gemm on dense rows; dk and dv accumulate in scratch and are written once at the end.

void attention_forward(float* out, float* stats, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  PROFILE("attention_fwd");
  const int B = s.B, T = s.T, Hq = s.Hq, D = s.D, group = s.Hq / s.Hkv;
  const size_t TD = (size_t)T * D;
  // Parallel over (batch, query head).
  OmpExceptionTrap trap;  // out of memory for the scratch: thrown after the region
#pragma omp parallel
  {
    std::vector<float> qc, kt, vc, S;
    const bool ok = trap.run([&] { qc.resize(TD), kt.resize(TD), vc.resize(TD), S.resize((size_t)kRowBlock * T); });
    int prepared_kv = -1;  // (batch, kv head) whose K^T and V the scratch holds
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * Hq; bh++) {
      if (!ok) continue;
      const int b = bh / Hq, h = bh % Hq, hk = h / group;
      copy_rows(qc.data(), D, q + (size_t)b * T * s.ldq + (size_t)h * D, s.ldq, T, D);
      if (b * s.Hkv + hk != prepared_kv) {  // the query heads of a GQA group share them
        transpose(kt.data(), T, k + (size_t)b * T * s.ldk + (size_t)hk * D, s.ldk, T, D);
        copy_rows(vc.data(), D, v + (size_t)b * T * s.ldv + (size_t)hk * D, s.ldv, T, D);
        prepared_kv = b * s.Hkv + hk;
      }
      float* ob = out + (size_t)b * T * s.ldo + (size_t)h * D;
      float* st = stats + (size_t)bh * T * kAttentionStats;
      for (int r0 = 0; r0 < T; r0 += kRowBlock) {
        const Block bl(s, b, r0);
        // S = scale · Q[r0:r1] · K[k0:r1]^T;  O[r0:r1] = softmax(S) · V[k0:r1]
        small_gemm(false, bl.m, bl.nk, D, s.scale, qc.data() + (size_t)r0 * D, D, kt.data() + bl.k0, T, 0.0f, S.data(),
                   T);
        softmax_block(S.data(), T, bl, st + (size_t)r0 * kAttentionStats);
        small_gemm(false, bl.m, D, bl.nk, 1.0f, S.data(), T, vc.data() + (size_t)bl.k0 * D, D, 0.0f,
                   ob + (size_t)r0 * s.ldo, s.ldo);
      }
    }
  }
  trap.rethrow();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* stats, const float* q,
                        const float* k, const float* v, const AttentionShape& s) {
  PROFILE("attention_bwd");
  const int B = s.B, T = s.T, Hq = s.Hq, Hkv = s.Hkv, D = s.D, group = s.Hq / s.Hkv;
  const size_t TD = (size_t)T * D;
  // Parallel over (batch, kv head): the query heads of a group add into the same dk, dv in order.
  OmpExceptionTrap trap;  // out of memory for the scratch: thrown after the region
#pragma omp parallel
  {
    std::vector<float> kc, kt, vt, qc, doc, dkc, dvc, P, dS;
    const bool ok = trap.run([&] {
      for (auto* buf : {&kc, &kt, &vt, &qc, &doc, &dkc, &dvc}) buf->resize(TD);
      P.resize((size_t)kRowBlock * T), dS.resize((size_t)kRowBlock * T);
    });
#pragma omp for schedule(static)
    for (int bk = 0; bk < B * Hkv; bk++) {
      if (!ok) continue;
      const int b = bk / Hkv, hk = bk % Hkv;
      const float* kb = k + (size_t)b * T * s.ldk + (size_t)hk * D;
      copy_rows(kc.data(), D, kb, s.ldk, T, D);
      transpose(kt.data(), T, kc.data(), D, T, D);
      transpose(vt.data(), T, v + (size_t)b * T * s.ldv + (size_t)hk * D, s.ldv, T, D);
      std::fill(dkc.begin(), dkc.end(), 0.0f);
      std::fill(dvc.begin(), dvc.end(), 0.0f);
      for (int h = hk * group; h < (hk + 1) * group; h++) {
        copy_rows(qc.data(), D, q + (size_t)b * T * s.ldq + (size_t)h * D, s.ldq, T, D);
        copy_rows(doc.data(), D, dout + (size_t)b * T * s.ldo + (size_t)h * D, s.ldo, T, D);
        float* dqb = dq + (size_t)b * T * s.ldq + (size_t)h * D;
        const float* st = stats + ((size_t)b * Hq + h) * T * kAttentionStats;
        for (int r0 = 0; r0 < T; r0 += kRowBlock) {
          const Block bl(s, b, r0);
          const float* q_r = qc.data() + (size_t)r0 * D;
          const float* do_r = doc.data() + (size_t)r0 * D;
          // P = softmax(scale · Q K^T) again;  dP = dO · V^T ;  dV += P^T · dO
          small_gemm(false, bl.m, bl.nk, D, s.scale, q_r, D, kt.data() + bl.k0, T, 0.0f, P.data(), T);
          recompute_probs(P.data(), T, bl, st + (size_t)r0 * kAttentionStats);
          small_gemm(false, bl.m, bl.nk, D, 1.0f, do_r, D, vt.data() + bl.k0, T, 0.0f, dS.data(), T);
          small_gemm(true, bl.nk, D, bl.m, 1.0f, P.data(), T, do_r, D, 1.0f, dvc.data() + (size_t)bl.k0 * D, D);
          // dS = P ⊙ (dP - rowsum(P ⊙ dP))
          softmax_backward_block(P.data(), dS.data(), T, bl);
          // dQ = scale · dS · K ;  dK += scale · dS^T · Q
          small_gemm(false, bl.m, D, bl.nk, s.scale, dS.data(), T, kc.data() + (size_t)bl.k0 * D, D, 0.0f,
                     dqb + (size_t)r0 * s.ldq, s.ldq);
          small_gemm(true, bl.nk, D, bl.m, s.scale, dS.data(), T, q_r, D, 1.0f, dkc.data() + (size_t)bl.k0 * D, D);
        }
      }
      copy_rows(dk + (size_t)b * T * s.ldk + (size_t)hk * D, s.ldk, dkc.data(), D, T, D);
      copy_rows(dv + (size_t)b * T * s.ldv + (size_t)hk * D, s.ldv, dvc.data(), D, T, D);
    }
  }
  trap.rethrow();
}

}  // namespace mindllm::cpu
