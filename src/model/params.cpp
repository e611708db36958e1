#include "model/params.h"

#include <cmath>

#include "core/error.h"

namespace mindllm {

const ParamSpec* ParamLayout::find(const std::string& name) const {
  for (auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

struct Builder {
  ParamLayout& L;
  size_t add(const std::string& name, std::vector<int64_t> shape, InitKind init, float std, bool decay,
             bool embedding = false) {
    ParamSpec s;
    s.name = name;
    s.shape = std::move(shape);
    s.numel = 1;
    for (int64_t d : s.shape) s.numel *= static_cast<size_t>(d);
    s.offset = L.total;
    s.decay = decay;
    s.embedding = embedding;
    s.init = init;
    s.init_std = std;
    L.total += s.numel;
    L.specs.push_back(std::move(s));
    return L.specs.back().offset;
  }
  size_t matrix(const std::string& name, int64_t out, int64_t in, float std) {
    // Stored [out, in] (nn.Linear) or [in, out] (GPT-2 Conv1D).
    if (L.linear_layout == cpu::WeightLayout::in_out) return add(name, {in, out}, InitKind::normal, std, true);
    return add(name, {out, in}, InitKind::normal, std, true);
  }
  size_t bias(const std::string& name, int64_t n) { return add(name, {n}, InitKind::zeros, 0.0f, false); }
  size_t ones(const std::string& name, int64_t n) { return add(name, {n}, InitKind::ones, 0.0f, false); }
};

}  // namespace

ParamLayout build_layout(const ModelConfig& c) {
  ParamLayout L;
  Builder b{L};
  const int64_t C = c.hidden, V = c.vocab_size, H = c.intermediate, Q = c.q_dim(), KV = c.kv_dim();
  const float std = c.init_std;
  const float beta = c.deepnorm ? c.deepnorm_beta : 1.0f;
  const bool layernorm = c.norm == NormKind::layernorm;
  L.wpe = L.normf_b = kAbsent;
  switch (c.family) {
    case Family::gpt2:
    case Family::gpt_neo: {
      // The GPT-2 and GPT-Neo blocks differ only in their attention tensors (GPT-2: one fused
      // Conv1D c_attn with bias; GPT-Neo: q/k/v without bias, out_proj) and in GPT-2's scaled
      // init of the residual projections; names, norms and MLP are the same.
      const bool gpt2 = c.family == Family::gpt2;
      if (gpt2) L.linear_layout = cpu::WeightLayout::in_out;
      L.wte = b.add("transformer.wte.weight", {V, C}, InitKind::normal, std, false, true);
      L.wpe = b.add("transformer.wpe.weight", {c.max_positions, C}, InitKind::normal, std, false, true);
      const float proj_std = gpt2 ? std / std::sqrt(2.0f * c.n_layers) : std;
      for (int l = 0; l < c.n_layers; l++) {
        std::string p = "transformer.h." + std::to_string(l) + ".";
        LayerOffsets o{};
        o.norm1_w = b.ones(p + "ln_1.weight", C);
        o.norm1_b = b.bias(p + "ln_1.bias", C);
        if (gpt2) {
          o.wqkv = b.matrix(p + "attn.c_attn.weight", Q + 2 * KV, C, std);
          o.bqkv = b.bias(p + "attn.c_attn.bias", Q + 2 * KV);
          o.wo = b.matrix(p + "attn.c_proj.weight", C, Q, proj_std);
          o.bo = b.bias(p + "attn.c_proj.bias", C);
        } else {
          o.wqkv = b.matrix(p + "attn.attention.q_proj.weight", Q, C, std);
          b.matrix(p + "attn.attention.k_proj.weight", KV, C, std);
          b.matrix(p + "attn.attention.v_proj.weight", KV, C, std);
          o.bqkv = kAbsent;
          o.wo = b.matrix(p + "attn.attention.out_proj.weight", C, Q, proj_std);
          o.bo = b.bias(p + "attn.attention.out_proj.bias", C);
        }
        o.norm2_w = b.ones(p + "ln_2.weight", C);
        o.norm2_b = b.bias(p + "ln_2.bias", C);
        o.wfc = b.matrix(p + "mlp.c_fc.weight", H, C, std);
        o.bfc = b.bias(p + "mlp.c_fc.bias", H);
        o.wproj = b.matrix(p + "mlp.c_proj.weight", C, H, proj_std);
        o.bproj = b.bias(p + "mlp.c_proj.bias", C);
        L.layers.push_back(o);
      }
      L.normf_w = b.ones("transformer.ln_f.weight", C);
      L.normf_b = b.bias("transformer.ln_f.bias", C);
      break;
    }
    case Family::llama: {
      L.wte = b.add("model.embed_tokens.weight", {V, C}, InitKind::normal, std, false, true);
      for (int l = 0; l < c.n_layers; l++) {
        std::string p = "model.layers." + std::to_string(l) + ".";
        LayerOffsets o{};
        o.norm1_w = b.ones(p + "input_layernorm.weight", C);
        o.norm1_b = kAbsent;
        // DeepNet: the value and output projections and the MLP are initialised scaled by beta.
        o.wqkv = b.matrix(p + "self_attn.q_proj.weight", Q, C, std);
        b.matrix(p + "self_attn.k_proj.weight", KV, C, std);
        b.matrix(p + "self_attn.v_proj.weight", KV, C, std * beta);
        o.bqkv = kAbsent;
        if (c.qkv_bias) {
          o.bqkv = b.bias(p + "self_attn.q_proj.bias", Q);
          b.bias(p + "self_attn.k_proj.bias", KV);
          b.bias(p + "self_attn.v_proj.bias", KV);
        }
        o.wo = b.matrix(p + "self_attn.o_proj.weight", C, Q, std * beta);
        o.bo = c.attn_out_bias ? b.bias(p + "self_attn.o_proj.bias", C) : kAbsent;
        o.norm2_w = b.ones(p + "post_attention_layernorm.weight", C);
        o.norm2_b = kAbsent;
        o.wfc = b.matrix(p + "mlp.gate_proj.weight", H, C, std * beta);
        b.matrix(p + "mlp.up_proj.weight", H, C, std * beta);
        o.bfc = kAbsent;
        if (c.mlp_bias) {
          o.bfc = b.bias(p + "mlp.gate_proj.bias", H);
          b.bias(p + "mlp.up_proj.bias", H);
        }
        o.wproj = b.matrix(p + "mlp.down_proj.weight", C, H, std * beta);
        o.bproj = c.mlp_bias ? b.bias(p + "mlp.down_proj.bias", C) : kAbsent;
        L.layers.push_back(o);
      }
      L.normf_w = b.ones("model.norm.weight", C);
      break;
    }
  }
  (void)layernorm;
  L.lm_head = c.tied_embeddings ? L.wte : b.add("lm_head.weight", {V, C}, InitKind::normal, std, true);
  return L;
}

}  // namespace mindllm
