// The tiny model configs the GPU model tests run (test_cuda_model.cpp: training, every variant;
// test_cuda_engine.cpp: inference, one per family), built in code: every feature the CPU model
// supports appears in at least one.
#pragma once
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace mindllm::cudatest {

struct Variant {
  const char* name;
  nlohmann::json config;
};
inline void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

inline std::vector<Variant> variants() {
  using json = nlohmann::json;
  const json llama = {{"model_type", "llama"},        {"vocab_size", 97},         {"hidden_size", 64},
                      {"num_hidden_layers", 2},       {"num_attention_heads", 4}, {"intermediate_size", 96},
                      {"max_position_embeddings", 64}};
  json swiglu_gqa = llama, geglu = llama, deepnorm = llama;
  swiglu_gqa.update({{"num_key_value_heads", 2},
                     {"attention_bias", true},
                     {"mlp_bias", true},
                     {"partial_rotary_factor", 0.5},
                     {"tie_word_embeddings", false}});
  geglu.update({{"hidden_act", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true}, {"rope_theta", 1e6}});
  deepnorm.update({{"mindllm_deepnorm", true}, {"hidden_act", "gelu_pytorch_tanh"}, {"num_key_value_heads", 1}});
  return {
      {"gpt2",
       {{"model_type", "gpt2"},
        {"vocab_size", 97},
        {"n_embd", 64},
        {"n_layer", 2},
        {"n_head", 4},
        {"n_positions", 64}}},
      {"gpt_neo_local",
       {{"model_type", "gpt_neo"},
        {"vocab_size", 97},
        {"hidden_size", 64},
        {"num_layers", 2},
        {"num_heads", 4},
        {"max_position_embeddings", 64},
        {"window_size", 8},
        {"attention_types", json::array({json::array({json::array({"global", "local"}), 1})})}}},
      {"llama_swiglu_gqa", swiglu_gqa},
      {"llama_geglu", geglu},
      {"llama_deepnorm", deepnorm},
      // Head dim 64: bf16 runs take the flash attention kernels (the others use the simple ones).
      {"llama_gqa_hd64",
       {{"model_type", "llama"},
        {"vocab_size", 97},
        {"hidden_size", 128},
        {"num_hidden_layers", 2},
        {"num_attention_heads", 2},
        {"num_key_value_heads", 1},
        {"intermediate_size", 160},
        {"max_position_embeddings", 64}}},
      {"gpt_neo_local_hd64",
       {{"model_type", "gpt_neo"},
        {"vocab_size", 97},
        {"hidden_size", 128},
        {"num_layers", 2},
        {"num_heads", 2},
        {"max_position_embeddings", 64},
        {"window_size", 8},
        {"attention_types", json::array({json::array({json::array({"global", "local"}), 1})})}}},
  };
}

// The variant called `name`.
inline Variant variant(const std::string& name) {
  for (const Variant& v : variants())
    if (v.name == name) return v;
  return {};
}

}  // namespace mindllm::cudatest
