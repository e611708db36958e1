// LoRA (model/lora.h): the adapter ops against a float64 reference (two modules on column slices of
// one fused output), a model with adapters equals the model with them merged, the base gets no
// gradient, and dropout repeats with its seed. PEFT parity: tests/reference/test_lora_parity.py.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/rng.h"
#include "model/lora.h"
#include "model/model.h"

using namespace mindllm;

namespace {

std::vector<float> random_vec(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal() * 0.5f;
  return v;
}

ModelConfig tiny(const char* type) {
  nlohmann::json j = {{"model_type", type}, {"vocab_size", 37}, {"tie_word_embeddings", false}};
  if (std::string(type) == "llama")
    j.update({{"hidden_size", 16},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"intermediate_size", 24},
              {"max_position_embeddings", 32},
              {"hidden_act", "silu"}});
  else j.update({{"n_embd", 16}, {"n_layer", 2}, {"n_head", 4}, {"n_positions", 32}});
  return config_from_json(j, "test");
}

}  // namespace

TEST(Lora, OpsMatchFloat64OnSlicesOfAFusedOutput) {
  const int N = 5, I = 7, O = 9, r = 3;
  LoraConfig cfg;
  cfg.rank = r;
  cfg.alpha = 6;  // scale 2
  std::vector<LoraModule> mods = {{"m0", "q", 0, /*linear_w=*/100, 0, /*col0=*/0, I, 4},
                                  {"m1", "k", 0, 100, 0, /*col0=*/6, I, 3}};
  LoraLayout L = lora_layout_of(cfg, mods, false);
  LoraWeights w(L);
  w.params = random_vec(L.params.total, 1);
  const std::vector<float> x = random_vec((size_t)N * I, 2), dout = random_vec((size_t)N * O, 3);
  std::vector<float> out = random_vec((size_t)N * O, 4), din = random_vec((size_t)N * I, 5);
  const std::vector<float> out0 = out, din0 = din;
  lora_forward(w, out.data(), x.data(), 100, N, I, O);
  lora_backward(w, din.data(), dout.data(), x.data(), 100, N, I, O);
  std::vector<float> untouched = out0;
  lora_forward(w, untouched.data(), x.data(), /*another linear*/ 200, N, I, O);
  EXPECT_EQ(untouched, out0);

  std::vector<double> want_out(out0.begin(), out0.end()), want_din(din0.begin(), din0.end());
  for (const LoraModule& m : L.modules) {
    const float* A = w.params.data() + m.a;  // [r, I]
    const float* B = w.params.data() + m.b;  // [out, r]
    for (int n = 0; n < N; n++) {
      std::vector<double> u(r, 0.0), du(r, 0.0);
      for (int k = 0; k < r; k++)
        for (int i = 0; i < I; i++) u[k] += (double)x[n * I + i] * A[k * I + i];
      for (int o = 0; o < m.out; o++) {
        double y = 0;
        for (int k = 0; k < r; k++) y += u[k] * B[o * r + k];
        want_out[n * O + m.col0 + o] += 2.0 * y;
        for (int k = 0; k < r; k++) du[k] += 2.0 * dout[n * O + m.col0 + o] * B[o * r + k];
      }
      for (int i = 0; i < I; i++)
        for (int k = 0; k < r; k++) want_din[n * I + i] += du[k] * A[k * I + i];
    }
    for (int k = 0; k < r; k++)
      for (int i = 0; i < I; i++) {
        double g = 0;
        for (int n = 0; n < N; n++) {
          double duk = 0;
          for (int o = 0; o < m.out; o++) duk += 2.0 * dout[n * O + m.col0 + o] * B[o * r + k];
          g += duk * x[n * I + i];
        }
        EXPECT_NEAR(w.grads[m.a + k * I + i], g, 1e-4 * (1 + std::fabs(g)));
      }
    for (int o = 0; o < m.out; o++)
      for (int k = 0; k < r; k++) {
        double g = 0;
        for (int n = 0; n < N; n++) {
          double u = 0;
          for (int i = 0; i < I; i++) u += (double)x[n * I + i] * A[k * I + i];
          g += 2.0 * dout[n * O + m.col0 + o] * u;
        }
        EXPECT_NEAR(w.grads[m.b + o * r + k], g, 1e-4 * (1 + std::fabs(g)));
      }
  }
  for (size_t i = 0; i < out.size(); i++) EXPECT_NEAR(out[i], want_out[i], 1e-4) << i;
  for (size_t i = 0; i < din.size(); i++) EXPECT_NEAR(din[i], want_din[i], 1e-4) << i;
}

// Forward with adapters (random B, so they matter) = forward of the merged weights, for the
// layouts [out, in] (llama: q|k|v and gate|up fused) and [in, out] (gpt2's Conv1D c_attn).
TEST(Lora, AdaptedModelEqualsMergedModelAndTheBaseGetsNoGradient) {
  for (const char* type : {"llama", "gpt2"}) {
    const ModelConfig c = tiny(type);
    Model model(c), merged(c);
    model.init_weights(7);
    merged.init_weights(7);
    LoraConfig cfg;
    cfg.rank = 2;
    cfg.alpha = 5;
    cfg.targets = {"q", "k", "v", "o", "up", "down"};
    if (c.family == Family::llama) cfg.targets.push_back("gate");
    LoraLayout L = build_lora_layout(c, model.layout(), cfg);
    EXPECT_EQ(L.modules.size(), (c.family == Family::llama ? 7u : 4u) * 2) << type;
    LoraWeights w(L);
    w.params = random_vec(L.params.total, 11);
    lora_merge(merged.params().data(), w, model.layout().linear_layout);
    model.attach_lora(&w);
    const int B = 2, T = 6;
    std::vector<int32_t> tokens(B * T), targets(B * T);
    Rng rng(5);
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)rng.below(37), targets[i] = (int32_t)rng.below(37);
    const float loss = model.forward(tokens.data(), targets.data(), B, T);
    const float loss_merged = merged.forward(tokens.data(), targets.data(), B, T);
    EXPECT_NEAR(loss, loss_merged, 1e-5) << type;
    for (size_t i = 0; i < (size_t)B * T * 37; i++) ASSERT_NEAR(model.logits()[i], merged.logits()[i], 1e-4) << type;
    model.zero_grads();
    w.zero_grads();
    model.backward();
    for (float g : model.grads()) ASSERT_EQ(g, 0.0f) << type;  // frozen base
    EXPECT_GT(w.grad_norm(), 0.0) << type;
  }
}

TEST(Lora, InitIsKaimingUniformAndDropoutRepeatsWithItsSeed) {
  const ModelConfig c = tiny("llama");
  Model model(c);
  model.init_weights(1);
  LoraConfig cfg;
  cfg.rank = 4;
  cfg.targets = {"q", "v"};
  cfg.dropout = 0.5f;
  LoraLayout L = build_lora_layout(c, model.layout(), cfg);
  LoraWeights w(L);
  w.init(3);
  for (const LoraModule& m : L.modules) {
    const float bound = 1.0f / std::sqrt((float)m.in);
    for (int k = 0; k < cfg.rank * m.in; k++) ASSERT_LE(std::fabs(w.params[m.a + k]), bound);
    for (int k = 0; k < cfg.rank * m.out; k++) ASSERT_EQ(w.params[m.b + k], 0.0f);
  }
  w.params = random_vec(L.params.total, 4);
  model.attach_lora(&w);
  std::vector<int32_t> tokens(12, 3), targets(12, 5);
  auto loss_with = [&](bool on, uint64_t seed) {
    w.dropout_on = on;
    w.dropout_seed = seed;
    return model.forward(tokens.data(), targets.data(), 2, 6);
  };
  const float a = loss_with(true, 9), b = loss_with(true, 9), other = loss_with(false, 9);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  EXPECT_NE(loss_with(true, 10), a);
}
