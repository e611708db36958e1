#include "model/lora.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"
#include "kernels/cpu/adamw.h"

namespace mindllm {

float LoraConfig::scale() const {
  const float a = alpha > 0 ? alpha : static_cast<float>(rank);
  return rslora ? a / std::sqrt(static_cast<float>(rank)) : a / static_cast<float>(rank);
}

std::vector<std::string> parse_lora_targets(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) bad_input("--lora-targets '" + list + "': an empty target (expected names such as q,k,v,o)");
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

std::vector<LoraModule> lora_candidates(const ModelConfig& c, const ParamLayout& layout) {
  const int C = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), H = c.intermediate;
  auto weight_of = [&](const std::string& path) {
    const ParamSpec* s = layout.find(path + ".weight");
    if (!s) internal_error("lora: no tensor " + path + ".weight in the layout");
    return s->offset;
  };
  std::vector<LoraModule> out;
  for (int l = 0; l < c.n_layers; l++) {
    const LayerOffsets& o = layout.layers[l];
    auto add = [&](const std::string& path, const char* target, size_t linear_w, int col0, int in, int width) {
      out.push_back(LoraModule{path, target, l, linear_w, weight_of(path), col0, in, width});
    };
    const std::string n = std::to_string(l);
    switch (c.family) {
      case Family::llama: {
        const std::string p = "model.layers." + n + ".";
        add(p + "self_attn.q_proj", "q", o.wqkv, 0, C, Q);
        add(p + "self_attn.k_proj", "k", o.wqkv, Q, C, KV);
        add(p + "self_attn.v_proj", "v", o.wqkv, Q + KV, C, KV);
        add(p + "self_attn.o_proj", "o", o.wo, 0, Q, C);
        add(p + "mlp.gate_proj", "gate", o.wfc, 0, C, H);
        add(p + "mlp.up_proj", "up", o.wfc, H, C, H);
        add(p + "mlp.down_proj", "down", o.wproj, 0, H, C);
        break;
      }
      case Family::gpt_neo: {
        const std::string p = "transformer.h." + n + ".";
        add(p + "attn.attention.q_proj", "q", o.wqkv, 0, C, Q);
        add(p + "attn.attention.k_proj", "k", o.wqkv, Q, C, KV);
        add(p + "attn.attention.v_proj", "v", o.wqkv, Q + KV, C, KV);
        add(p + "attn.attention.out_proj", "o", o.wo, 0, Q, C);
        add(p + "mlp.c_fc", "up", o.wfc, 0, C, H);
        add(p + "mlp.c_proj", "down", o.wproj, 0, H, C);
        break;
      }
      case Family::gpt2: {
        const std::string p = "transformer.h." + n + ".";
        add(p + "attn.c_attn", "qkv", o.wqkv, 0, C, Q + 2 * KV);  // one fused Conv1D: q, k and v together
        add(p + "attn.c_proj", "o", o.wo, 0, Q, C);
        add(p + "mlp.c_fc", "up", o.wfc, 0, C, H);
        add(p + "mlp.c_proj", "down", o.wproj, 0, H, C);
        break;
      }
    }
  }
  return out;
}

static bool selects(const std::string& target, const LoraModule& m) {
  return m.target == target || (m.target == "qkv" && (target == "q" || target == "k" || target == "v"));
}

LoraLayout build_lora_layout(const ModelConfig& c, const ParamLayout& layout, const LoraConfig& cfg) {
  if (cfg.rank < 1) bad_input("--lora-rank must be at least 1, got " + std::to_string(cfg.rank));
  if (!(cfg.alpha >= 0) || !std::isfinite(cfg.alpha)) bad_input("--lora-alpha must be a finite number > 0");
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) bad_input("--lora-dropout must be in [0, 1)");
  if (cfg.targets.empty()) bad_input("--lora-targets: no target given");
  const std::vector<LoraModule> all = lora_candidates(c, layout);
  std::string names;  // the targets this family has, for the error message
  for (const char* t : {"q", "k", "v", "o", "gate", "up", "down"})
    if (std::any_of(all.begin(), all.end(), [&](const LoraModule& m) { return selects(t, m); }))
      names += std::string(names.empty() ? "" : ",") + t;
  for (const std::string& t : cfg.targets)
    if (!std::any_of(all.begin(), all.end(), [&](const LoraModule& m) { return selects(t, m); }))
      bad_input("--lora-targets " + t + ": not a projection of a " + c.model_type() + " model (targets: " + names +
                ")");
  std::vector<LoraModule> chosen;
  for (const LoraModule& m : all)
    if (std::any_of(cfg.targets.begin(), cfg.targets.end(), [&](const std::string& t) { return selects(t, m); }))
      chosen.push_back(m);
  return lora_layout_of(cfg, std::move(chosen), layout.linear_layout == cpu::WeightLayout::in_out);
}

LoraLayout lora_layout_of(const LoraConfig& cfg, std::vector<LoraModule> modules, bool fan_in_fan_out) {
  LoraLayout L;
  L.cfg = cfg;
  L.fan_in_fan_out = fan_in_fan_out;
  L.modules = std::move(modules);
  ParamLayout& P = L.params;
  auto add = [&](const std::string& name, int64_t rows, int64_t cols) {
    ParamSpec s;
    s.name = name;
    s.shape = {rows, cols};
    s.numel = static_cast<size_t>(rows * cols);
    s.offset = P.total;
    s.decay = true;  // as torch.optim.AdamW over PEFT's trainable parameters
    P.total += s.numel;
    P.specs.push_back(s);
    return s.offset;
  };
  for (LoraModule& m : L.modules) {
    m.a = add("base_model.model." + m.path + ".lora_A.weight", cfg.rank, m.in);
    m.b = add("base_model.model." + m.path + ".lora_B.weight", m.out, cfg.rank);
  }
  return L;
}

std::vector<std::string> LoraLayout::peft_target_modules() const {
  // The path after the layer number: "self_attn.q_proj", "attn.c_attn", "mlp.c_proj", ... (PEFT
  // selects a module whose path ends with "." + a target; GPT-2 has c_proj in attn and mlp).
  std::vector<std::string> out;
  for (const LoraModule& m : modules) {
    const std::string n = "." + std::to_string(m.layer) + ".";
    const size_t at = m.path.find(n);
    std::string suffix = at == std::string::npos ? m.path : m.path.substr(at + n.size());
    if (std::find(out.begin(), out.end(), suffix) == out.end()) out.push_back(suffix);
  }
  return out;
}

LoraWeights::LoraWeights(const LoraLayout& l) : layout(&l), params(l.params.total, 0.0f), grads(l.params.total, 0.0f) {}

void LoraWeights::init(uint64_t seed) {
  std::fill(params.begin(), params.end(), 0.0f);  // B = 0
  for (const LoraModule& m : layout->modules) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(m.in));
    Rng rng(mix64(seed, fnv1a64(m.path + ".lora_A")));
    float* a = params.data() + m.a;
    for (size_t k = 0; k < (size_t)layout->cfg.rank * m.in; k++) a[k] = (2.0f * rng.uniform() - 1.0f) * bound;
  }
}

void LoraWeights::zero_grads() { std::fill(grads.begin(), grads.end(), 0.0f); }

double LoraWeights::grad_norm() const { return std::sqrt(cpu::sum_of_squares(grads.data(), grads.size())); }

namespace {

// The adapter's input: x itself, or dropout(x) in l.xd with the factors (0 or 1/(1-p)) in l.mask.
// One stream per (micro-batch seed, module, row): the same mask in the forward and the backward.
const float* adapter_input(LoraWeights& l, size_t module, const float* x, int N, int I) {
  const float p = l.layout->cfg.dropout;
  if (!l.dropout_on || p <= 0) return x;
  const size_t n = (size_t)N * I;
  l.xd.resize(n);
  l.mask.resize(n);
  const float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < N; r++) {
    Rng rng(mix64(l.dropout_seed, module, static_cast<uint64_t>(r)));
    for (size_t i = (size_t)r * I; i < (size_t)(r + 1) * I; i++) {
      l.mask[i] = rng.uniform() < p ? 0.0f : keep;
      l.xd[i] = x[i] * l.mask[i];
    }
  }
  return l.xd.data();
}

}  // namespace

void lora_forward(LoraWeights& l, float* out, const float* in, size_t w, int N, int I, int O) {
  const int r = l.layout->cfg.rank;
  const float scale = l.layout->cfg.scale();
  for (size_t k = 0; k < l.layout->modules.size(); k++) {
    const LoraModule& m = l.layout->modules[k];
    if (m.linear_w != w) continue;
    const float* A = l.params.data() + m.a;  // [r, I]
    const float* B = l.params.data() + m.b;  // [out, r]
    const float* x = adapter_input(l, k, in, N, I);
    l.u.resize((size_t)N * r);
    // u[N, r] = x A^T;  out[:, col0 : col0 + out] += scale u B^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, I, 1.0f, x, I, A, I, 0.0f, l.u.data(), r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, m.out, r, scale, l.u.data(), r, B, r, 1.0f, out + m.col0,
                O);
  }
}

void lora_backward(LoraWeights& l, float* din, const float* dout, const float* in, size_t w, int N, int I, int O) {
  const int r = l.layout->cfg.rank;
  const float scale = l.layout->cfg.scale();
  for (size_t k = 0; k < l.layout->modules.size(); k++) {
    const LoraModule& m = l.layout->modules[k];
    if (m.linear_w != w) continue;
    const float* A = l.params.data() + m.a;
    const float* B = l.params.data() + m.b;
    float* dA = l.grads.data() + m.a;
    float* dB = l.grads.data() + m.b;
    const float* dy = dout + m.col0;  // [N, out] with row stride O
    const float* x = adapter_input(l, k, in, N, I);
    l.u.resize((size_t)N * r);
    l.du.resize((size_t)N * r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, I, 1.0f, x, I, A, I, 0.0f, l.u.data(), r);
    // dB[out, r] += scale dy^T u;  du[N, r] = scale dy B;  dA[r, I] += du^T x
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m.out, r, N, scale, dy, O, l.u.data(), r, 1.0f, dB, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, m.out, scale, dy, O, B, r, 0.0f, l.du.data(), r);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, I, N, 1.0f, l.du.data(), r, x, I, 1.0f, dA, I);
    if (!din) continue;
    if (x == in) {  // din[N, I] += du A
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, r, 1.0f, l.du.data(), r, A, I, 1.0f, din, I);
    } else {  // through the dropout: din += (du A) * mask (l.xd is free again: reuse it)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, r, 1.0f, l.du.data(), r, A, I, 0.0f, l.xd.data(), I);
      const size_t n = (size_t)N * I;
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; i++) din[i] += l.xd[i] * l.mask[i];
    }
  }
}

void lora_merge(float* params, const LoraWeights& l, cpu::WeightLayout wl) {
  const int r = l.layout->cfg.rank;
  const float scale = l.layout->cfg.scale();
  for (const LoraModule& m : l.layout->modules) {
    const float* A = l.params.data() + m.a;
    const float* B = l.params.data() + m.b;
    float* W = params + m.weight;
    if (wl == cpu::WeightLayout::out_in)  // W[out, in] += scale B A
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m.out, m.in, r, scale, B, r, A, m.in, 1.0f, W, m.in);
    else  // W[in, out] += scale A^T B^T
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, m.in, m.out, r, scale, A, m.in, B, r, 1.0f, W, m.out);
  }
}

}  // namespace mindllm
