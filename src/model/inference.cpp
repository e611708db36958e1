#include "model/inference.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention_cached.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace mindllm {

using namespace cpu;

InferenceSession::InferenceSession(const Model& model) : model_(model) {
  k_cache_.resize(model.config().n_layers);
  v_cache_.resize(model.config().n_layers);
}

int InferenceSession::max_length() const {
  const ModelConfig& c = model_.config();
  return c.learned_positions ? c.max_positions : INT_MAX;
}

void InferenceSession::truncate(int n) {
  MINDLLM_CHECK(n >= 0 && n <= length(), "truncate beyond the cache");
  tokens_.resize(n);
}

void InferenceSession::reserve_cache(int n) {
  if (n <= capacity_) return;
  int cap = std::max(n, std::max(64, capacity_ * 2));
  const size_t KV = model_.config().kv_dim();
  for (size_t l = 0; l < k_cache_.size(); l++) {
    k_cache_[l].resize((size_t)cap * KV);
    v_cache_[l].resize((size_t)cap * KV);
  }
  capacity_ = cap;
}

void InferenceSession::append(std::span<const int32_t> toks, float* last_logits) {
  if (toks.empty()) {
    MINDLLM_CHECK(!last_logits, "append: logits of an empty sequence");
    return;
  }
  std::vector<int32_t> rows(toks.begin(), toks.end());
  std::vector<int> logit_rows;
  if (last_logits) logit_rows.push_back(static_cast<int>(rows.size()) - 1);
  run(rows, {0}, {static_cast<int>(rows.size())}, true, logit_rows, last_logits);
}

int InferenceSession::sync(std::span<const int32_t> toks) {
  size_t n = 0;
  while (n < toks.size() && n < tokens_.size() && toks[n] == tokens_[n]) n++;
  truncate(static_cast<int>(n));
  append(toks.subspan(n));
  return static_cast<int>(n);
}

void InferenceSession::branches(const std::vector<std::span<const int32_t>>& seqs,
                                const std::vector<int>& logits_from, std::vector<float>& logits) {
  std::vector<int32_t> rows;
  std::vector<int> offs, lens, logit_rows;
  for (size_t b = 0; b < seqs.size(); b++) {
    MINDLLM_CHECK(!seqs[b].empty(), "empty branch");
    offs.push_back(static_cast<int>(rows.size()));
    lens.push_back(static_cast<int>(seqs[b].size()));
    int from = logits_from.empty() ? 0 : std::max(0, logits_from[b]);
    for (int t = from; t < lens.back(); t++) logit_rows.push_back(offs.back() + t);
    rows.insert(rows.end(), seqs[b].begin(), seqs[b].end());
  }
  logits.resize(logit_rows.size() * (size_t)model_.config().vocab_size);
  if (rows.empty()) return;
  run(rows, offs, lens, false, logit_rows, logits.data());
}

static const float* opt(const float* base, size_t off) { return off == kAbsent ? nullptr : base + off; }

static void add_scaled(float* y, const float* x, float alpha, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void InferenceSession::run(const std::vector<int32_t>& rows, const std::vector<int>& offs,
                           const std::vector<int>& lens, bool commit, const std::vector<int>& logit_rows,
                           float* logits) {
  const ModelConfig& cfg = model_.config();
  const ParamLayout& L = model_.layout();
  const float* p = model_.params().data();
  const int N = static_cast<int>(rows.size()), C = cfg.hidden, H = cfg.intermediate, V = cfg.vocab_size;
  const int Q = cfg.q_dim(), KV = cfg.kv_dim(), QKV = Q + 2 * KV, F = cfg.gated_mlp ? 2 * H : H;
  const int P = length();
  int longest = 0;
  for (int len : lens) longest = std::max(longest, len);
  if ((int64_t)P + longest > max_length())
    bad_input("sequence of " + std::to_string(P + longest) + " tokens exceeds the model's " +
              std::to_string(cfg.max_positions) + " positions");
  for (int32_t t : rows)
    if (t < 0 || t >= V) bad_input("token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V));
  if (commit) reserve_cache(P + N);
  const size_t NC = (size_t)N * C;
  x_.resize(NC), xn_.resize(NC), h_.resize(NC), n2_.resize(NC), r_.resize(NC);
  qkv_.resize((size_t)N * QKV), att_.resize((size_t)N * Q), fc_.resize((size_t)N * F), act_.resize((size_t)N * H);
  mean_.resize(N), rstd_.resize(N);
  const WeightLayout wl = L.linear_layout;
  auto norm = [&](float* out, const float* in, size_t w, size_t b, int n) {
    if (cfg.norm == NormKind::layernorm)
      layernorm_forward(out, mean_.data(), rstd_.data(), in, p + w, opt(p, b), n, C, cfg.norm_eps);
    else
      rmsnorm_forward(out, rstd_.data(), in, p + w, n, C, cfg.norm_eps);
  };

  for (size_t b = 0; b < offs.size(); b++)
    embedding_forward(x_.data() + (size_t)offs[b] * C, rows.data() + offs[b], p + L.wte, opt(p, L.wpe), 1, lens[b],
                      C, P);
  const float alpha = cfg.deepnorm_alpha;
  for (int l = 0; l < cfg.n_layers; l++) {
    const LayerOffsets& o = L.layers[l];
    const float* attn_in = x_.data();
    if (!cfg.deepnorm) {
      norm(xn_.data(), x_.data(), o.norm1_w, o.norm1_b, N);
      attn_in = xn_.data();
    }
    model_.linear(qkv_.data(), attn_in, o.wqkv, o.bqkv, N, C, QKV, wl);
    if (cfg.family == Family::llama && cfg.rot_dim() > 0)
      for (size_t b = 0; b < offs.size(); b++) {
        float* base = qkv_.data() + (size_t)offs[b] * QKV;
        rope_forward(base, 1, lens[b], cfg.n_heads, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, P);
        rope_forward(base + Q, 1, lens[b], cfg.n_kv_heads, cfg.head_dim, QKV, cfg.rot_dim(), cfg.rope_theta, P);
      }
    const float* kc = k_cache_[l].empty() ? qkv_.data() : k_cache_[l].data();
    const float* vc = v_cache_[l].empty() ? qkv_.data() : v_cache_[l].data();
    CachedAttentionShape s{static_cast<int>(offs.size()), offs.data(), lens.data(), P, cfg.n_heads, cfg.n_kv_heads,
                           cfg.head_dim, QKV, QKV, QKV, Q, KV, cfg.attn_scale, cfg.window[l]};
    attention_cached_forward(att_.data(), qkv_.data(), qkv_.data() + Q, qkv_.data() + Q + KV, kc, vc, s);
    if (commit) {
      float* kd = k_cache_[l].data() + (size_t)P * KV;
      float* vd = v_cache_[l].data() + (size_t)P * KV;
      for (int i = 0; i < N; i++) {
        std::memcpy(kd + (size_t)i * KV, qkv_.data() + (size_t)i * QKV + Q, sizeof(float) * KV);
        std::memcpy(vd + (size_t)i * KV, qkv_.data() + (size_t)i * QKV + Q + KV, sizeof(float) * KV);
      }
    }
    // h = x + attn (pre-norm) or norm1(alpha x + attn) (DeepNorm)
    float* r1 = cfg.deepnorm ? r_.data() : h_.data();
    model_.linear(r1, att_.data(), o.wo, o.bo, N, Q, C, wl);
    add_scaled(r1, x_.data(), cfg.deepnorm ? alpha : 1.0f, NC);
    if (cfg.deepnorm) norm(h_.data(), r1, o.norm1_w, o.norm1_b, N);
    const float* mlp_in = h_.data();
    if (!cfg.deepnorm) {
      norm(n2_.data(), h_.data(), o.norm2_w, o.norm2_b, N);
      mlp_in = n2_.data();
    }
    model_.linear(fc_.data(), mlp_in, o.wfc, o.bfc, N, C, F, wl);
    if (cfg.gated_mlp)
      glu_forward(act_.data(), fc_.data(), fc_.data() + H, N, H, F, cfg.act);
    else
      activation_forward(act_.data(), fc_.data(), (size_t)N * H, cfg.act);
    float* r2 = cfg.deepnorm ? r_.data() : x_.data();
    model_.linear(r2, act_.data(), o.wproj, o.bproj, N, H, C, wl);
    add_scaled(r2, h_.data(), cfg.deepnorm ? alpha : 1.0f, NC);
    if (cfg.deepnorm) norm(x_.data(), r2, o.norm2_w, o.norm2_b, N);
  }
  if (commit) tokens_.insert(tokens_.end(), rows.begin(), rows.end());
  if (logit_rows.empty()) return;
  const int R = static_cast<int>(logit_rows.size());
  gath_.resize((size_t)R * C);
  for (int i = 0; i < R; i++)
    std::memcpy(gath_.data() + (size_t)i * C, x_.data() + (size_t)logit_rows[i] * C, sizeof(float) * C);
  norm(xn_.data(), gath_.data(), L.normf_w, L.normf_b, R);
  model_.linear(logits, xn_.data(), L.lm_head, kAbsent, R, C, V, WeightLayout::out_in);
}

}  // namespace mindllm
