// Model configuration: one decoder description for the gpt2, gpt_neo and llama families, read
// from and written to Hugging Face config.json field names. Options Hugging Face lacks go under
// `mindllm_` keys (mindllm_deepnorm, ...).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/types.h"

namespace mindllm {

enum class Family { gpt2, gpt_neo, llama };
enum class NormKind { layernorm, rmsnorm };

struct ModelConfig {
  Family family = Family::llama;
  int vocab_size = 0;
  int hidden = 0;  // d_model
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // grouped-query attention (== n_heads: plain multi-head)
  int head_dim = 0;
  int intermediate = 0;  // MLP width (per branch for gated MLPs)
  int max_positions = 0;
  float norm_eps = 1e-5f;
  NormKind norm = NormKind::rmsnorm;
  bool learned_positions = false;  // gpt2, gpt_neo: wpe table
  bool qkv_bias = false;
  bool attn_out_bias = false;
  bool mlp_bias = false;
  bool gated_mlp = true;  // llama: down(act(gate) * up); gpt: proj(act(fc))
  Activation act = Activation::silu;
  bool tied_embeddings = false;
  float rope_theta = 10000.0f;
  float partial_rotary = 1.0f;  // fraction of head_dim that RoPE rotates (llama)
  std::vector<int> window;      // per layer: 0 = global attention, W > 0 = local window
  float attn_scale = 0.0f;      // score scale: 1/sqrt(head_dim), or 1 for gpt_neo
  bool deepnorm = false;        // post-norm x = norm(alpha x + f(x)), DeepNet init
  float deepnorm_alpha = 1.0f, deepnorm_beta = 1.0f;
  float init_std = 0.02f;
  int bos_token_id = -1, eos_token_id = -1;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int rot_dim() const;
  bool rotary() const { return family == Family::llama && rot_dim() > 0; }  // RoPE on q and k
  int64_t num_parameters() const;
  std::string model_type() const;
};

// Parses a Hugging Face config.json object; `where` names the source in error messages.
// Unsupported options are bad input with the field named.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);
// Writes Hugging Face field names for the family (plus mindllm_ keys where needed).
nlohmann::json config_to_json(const ModelConfig& c);

// Resolves --model: a preset name (see configs/), a config.json file, or a model directory.
// For a model directory returns its config and sets *weights_dir to it; otherwise clears it.
ModelConfig resolve_model_config(const std::string& spec, std::string* weights_dir);
std::vector<std::string> preset_names();

std::string describe(const ModelConfig& c);  // one line: family, shape, parameter count

}  // namespace mindllm
