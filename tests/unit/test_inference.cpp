// InferenceSession (K/V cache, branches, sync) gives the logits of Model::forward on the full
// sequence: gpt2, gpt_neo (global + local layers), llama (GQA, partial rotary, GeGLU, biases,
// DeepNorm), every parameter random so no zero hides a missing term.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/linear_bf16.h"
#include "model/config.h"
#include "model/inference.h"
#include "model/model.h"

using namespace mindllm;

namespace {

Model random_model(const nlohmann::json& j, uint64_t seed) {
  Model m(config_from_json(j, "test"));
  Rng rng(seed);
  for (auto& s : m.layout().specs) {
    float* w = m.params().data() + s.offset;
    bool norm = s.name.find("norm") != std::string::npos || s.name.find("ln_") != std::string::npos;
    for (size_t i = 0; i < s.numel; i++)
      w[i] = norm && s.name.ends_with("weight") ? 1.0f + 0.1f * rng.normal() : 0.15f * rng.normal();
  }
  return m;
}

std::vector<float> full_logits(Model& m, const std::vector<int32_t>& toks) {
  m.forward(toks.data(), nullptr, 1, (int)toks.size());
  const size_t V = m.config().vocab_size;
  return std::vector<float>(m.logits(), m.logits() + toks.size() * V);
}

double max_diff(const float* a, const float* b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = std::max(d, (double)std::fabs(a[i] - b[i]));
  return d;
}

std::vector<nlohmann::json> configs() {
  nlohmann::json gpt2 = {{"model_type", "gpt2"}, {"vocab_size", 97}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4},
                         {"n_positions", 64}, {"activation_function", "gelu_new"}};
  nlohmann::json neo = {{"model_type", "gpt_neo"}, {"vocab_size", 97}, {"hidden_size", 32}, {"num_layers", 2},
                        {"num_heads", 4}, {"intermediate_size", 64}, {"max_position_embeddings", 64},
                        {"window_size", 5}, {"attention_types", {{{"global", "local"}, 1}}},
                        {"activation_function", "gelu_new"}, {"tie_word_embeddings", false}};
  nlohmann::json llama = {{"model_type", "llama"}, {"vocab_size", 97}, {"hidden_size", 32},
                          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                          {"intermediate_size", 48}, {"max_position_embeddings", 64}, {"hidden_act", "silu"},
                          {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", false}};
  nlohmann::json deep = llama;
  deep["mindllm_deepnorm"] = true;
  deep["hidden_act"] = "gelu_pytorch_tanh";
  deep["mindllm_partial_rotary_factor"] = 0.5;
  deep["attention_bias"] = true;
  deep["num_key_value_heads"] = 1;
  return {gpt2, neo, llama, deep};
}

class Inference : public ::testing::TestWithParam<int> {};

TEST_P(Inference, CacheAndBranchesMatchFullForward) {
  nlohmann::json j = configs()[GetParam()];
  Model m = random_model(j, 7 + GetParam());
  const size_t V = m.config().vocab_size;
  Rng rng(99);
  std::vector<int32_t> prefix;
  for (int i = 0; i < 13; i++) prefix.push_back((int32_t)(rng.uniform() * V) % V);
  std::vector<std::vector<int32_t>> conts = {{5, 9, 11}, {3}, {5, 9, 12, 40, 41, 42, 43, 44, 45, 46}};

  InferenceSession s(m);
  std::vector<float> last(V);
  s.append(std::span<const int32_t>(prefix).first(6));
  s.append(std::span<const int32_t>(prefix).subspan(6), last.data());
  auto ref_prefix = full_logits(m, prefix);
  EXPECT_LT(max_diff(last.data(), ref_prefix.data() + (prefix.size() - 1) * V, V), 2e-4);

  std::vector<std::span<const int32_t>> br;
  for (auto& c : conts) br.emplace_back(c);
  std::vector<float> logits;
  s.branches(br, {0, 0, 4}, logits);
  size_t row = 0;
  for (size_t b = 0; b < conts.size(); b++) {
    std::vector<int32_t> whole = prefix;
    whole.insert(whole.end(), conts[b].begin(), conts[b].end());
    auto ref = full_logits(m, whole);
    int from = b == 2 ? 4 : 0;
    for (size_t t = from; t < conts[b].size(); t++, row++)
      EXPECT_LT(max_diff(logits.data() + row * V, ref.data() + (prefix.size() + t) * V, V), 2e-4)
          << "branch " << b << " row " << t;
  }
  EXPECT_EQ(row * V, logits.size());
  EXPECT_EQ(s.length(), (int)prefix.size());  // branches leave the cache alone

  // sync to a sequence that shares 9 tokens, then decode token by token.
  std::vector<int32_t> other(prefix.begin(), prefix.begin() + 9);
  other.push_back(1), other.push_back(2);
  EXPECT_EQ(s.sync(other), 9);
  for (int32_t t : {7, 8, 9, 10, 11}) {
    s.append(std::span<const int32_t>(&t, 1), last.data());
    other.push_back(t);
    auto ref = full_logits(m, other);
    EXPECT_LT(max_diff(last.data(), ref.data() + (other.size() - 1) * V, V), 2e-4) << "decode at " << other.size();
  }
}

// --precision bf16 for evaluation and generation: the session's linear layers run in the model's
// matmul precision, like Model::forward's. The two paths round slightly different fp32
// activations to bf16 (a rare element lands on the other side of a rounding boundary), so they
// agree to bf16 precision, not to the bit; fp32 stays far from both at the bf16 scale.
TEST_P(Inference, Bf16SessionFollowsBf16Forward) {
  std::string why;
  if (!cpu::bf16_gemm_available(&why)) GTEST_SKIP() << why;
  Model m = random_model(configs()[GetParam()], 7 + GetParam());
  const size_t V = m.config().vocab_size;
  std::vector<int32_t> toks = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26};
  std::vector<float> fp32(V), bf16(V);
  InferenceSession(m).append(toks, fp32.data());
  m.set_matmul_precision(MatmulPrecision::bf16);
  InferenceSession s(m);
  s.append(toks, bf16.data());
  auto ref = full_logits(m, toks);
  const float* ref_last = ref.data() + (toks.size() - 1) * V;
  double scale = max_diff(ref_last, std::vector<float>(V, 0.0f).data(), V);
  EXPECT_LT(max_diff(bf16.data(), ref_last, V), 1e-2 * scale);
  EXPECT_GT(max_diff(fp32.data(), ref_last, V), 1e-4 * scale) << "bf16 had no effect";
  int same = 0;
  for (size_t i = 0; i < V; i++) same += std::fabs(bf16[i] - ref_last[i]) <= 1e-5 * scale;
  EXPECT_GT(same, (int)(0.5 * V)) << "most logits should agree to fp32 rounding";
}

std::string family_name(const ::testing::TestParamInfo<int>& info) {
  static const char* names[] = {"gpt2", "gpt_neo_local", "llama_gqa", "llama_deepnorm"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(Families, Inference, ::testing::Values(0, 1, 2, 3), family_name);

TEST(Inference, TooLongIsBadInput) {
  Model m = random_model(configs()[0], 1);
  InferenceSession s(m);
  std::vector<int32_t> t(65, 1);
  EXPECT_THROW(s.append(t), Error);
}

}  // namespace
