// Causal attention of new query rows against a K/V cache plus their own keys: the inference
// variant of attention_forward (forward only, no saved probabilities).
//
// The new rows are packed: `n_branches` independent continuations of one shared cached prefix of
// `prefix_len` positions. Branch b owns rows [branch_offset[b], branch_offset[b] + branch_len[b])
// of q, k, v, out; its row t sits at absolute position prefix_len + t and attends to cached
// positions s < prefix_len and to its own rows 0..t, all subject to the local window
// (abs_t - abs_s < window when window > 0). Branches never see each other. With one branch this
// is plain incremental decoding / prefill against a cache.
//
// q: rows of Hq heads × D (stride ldq); k, v: rows of Hkv heads × D (strides ldk, ldv);
// k_cache, v_cache: prefix_len rows of Hkv × D (stride ldc); out: like q (stride ldo).
// Query head h reads kv head h / (Hq / Hkv); scores = scale · q·k.
#pragma once

namespace mindllm::cpu {

struct CachedAttentionShape {
  int n_branches;
  const int* branch_offset;  // first packed row of each branch
  const int* branch_len;     // rows of each branch (>= 1)
  int prefix_len;            // cached positions shared by every branch
  int Hq, Hkv, D;
  int ldq, ldk, ldv, ldo, ldc;
  float scale;
  int window;  // 0: global
};

void attention_cached_forward(float* out, const float* q, const float* k, const float* v, const float* k_cache,
                              const float* v_cache, const CachedAttentionShape& s);

}  // namespace mindllm::cpu
