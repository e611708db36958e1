#include "model/config.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "model/presets.h"

namespace mindllm {

using json = nlohmann::json;

namespace {

struct Reader {
  const json& j;
  const std::string& where;

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }

  int get_int(const char* k, int def, int lo, int hi) const {
    if (!has(k)) {
      if (def == INT32_MIN) bad_input(where + ": missing field '" + k + "'");
      return def;
    }
    const json& v = j[k];
    if (!v.is_number_integer()) bad_input(where + ": field '" + k + "' must be an integer, got " + v.dump());
    int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      bad_input(where + ": field '" + k + "' = " + std::to_string(x) + " is out of range [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "]");
    return static_cast<int>(x);
  }
  int req_int(const char* k, int lo, int hi) const { return get_int(k, INT32_MIN, lo, hi); }

  float get_float(const char* k, float def, float lo, float hi) const {
    if (!has(k)) return def;
    const json& v = j[k];
    if (!v.is_number()) bad_input(where + ": field '" + k + "' must be a number, got " + v.dump());
    double x = v.get<double>();
    if (!(x >= lo && x <= hi)) bad_input(where + ": field '" + k + "' = " + v.dump() + " is out of range");
    return static_cast<float>(x);
  }

  bool get_bool(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j[k].is_boolean()) bad_input(where + ": field '" + k + "' must be true or false, got " + j[k].dump());
    return j[k].get<bool>();
  }

  std::string get_str(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j[k].is_string()) bad_input(where + ": field '" + k + "' must be a string, got " + j[k].dump());
    return j[k].get<std::string>();
  }

  int token_id(const char* k) const {
    if (!has(k)) return -1;
    const json& v = j[k];
    if (v.is_array()) return v.empty() || !v[0].is_number_integer() ? -1 : v[0].get<int>();  // first of a list
    if (!v.is_number_integer()) bad_input(where + ": field '" + k + "' must be an integer token id");
    return v.get<int>();
  }
};

Activation parse_act(const std::string& name, const std::string& where, const char* field) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::gelu_tanh;
  if (name == "gelu") return Activation::gelu_erf;
  if (name == "silu" || name == "swish") return Activation::silu;
  bad_input(where + ": field '" + field + "' = \"" + name +
            "\" is not supported (gelu_new, gelu_pytorch_tanh, gelu, silu)");
}

const char* act_name(Activation a, Family f) {
  switch (a) {
    case Activation::gelu_tanh: return f == Family::llama ? "gelu_pytorch_tanh" : "gelu_new";
    case Activation::gelu_erf: return "gelu";
    case Activation::silu: return "silu";
  }
  return "silu";
}

constexpr int kMaxDim = 1 << 20;

}  // namespace

int ModelConfig::rot_dim() const {
  int r = static_cast<int>(std::lround(head_dim * partial_rotary));
  return r - r % 2;
}

std::string ModelConfig::model_type() const {
  switch (family) {
    case Family::gpt2: return "gpt2";
    case Family::gpt_neo: return "gpt_neo";
    // Q/K/V biases without an output-projection bias is Qwen2's layout (a llama config cannot say it).
    case Family::llama: return qkv_bias && !attn_out_bias && !mlp_bias ? "qwen2" : "llama";
  }
  return "?";
}

int64_t ModelConfig::num_parameters() const {
  int64_t C = hidden, L = n_layers, H = intermediate;
  int64_t n = (int64_t)vocab_size * C;
  if (learned_positions) n += (int64_t)max_positions * C;
  int64_t norm_params = norm == NormKind::layernorm ? 2 * C : C;
  int64_t per = 2 * norm_params;
  per += C * (q_dim() + 2 * kv_dim()) + (qkv_bias ? q_dim() + 2 * kv_dim() : 0);
  per += (int64_t)q_dim() * C + (attn_out_bias ? C : 0);
  int64_t branches = gated_mlp ? 2 : 1;
  per += branches * C * H + (mlp_bias ? branches * H : 0);
  per += H * C + (mlp_bias ? C : 0);
  n += L * per + norm_params;
  if (!tied_embeddings) n += (int64_t)vocab_size * C;
  return n;
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) bad_input(where + ": config is not a JSON object");
  Reader r{j, where};
  std::string type = r.get_str("model_type", "");
  ModelConfig c;
  if (type == "gpt2") {
    c.family = Family::gpt2;
    c.vocab_size = r.req_int("vocab_size", 1, 1 << 24);
    c.hidden = r.req_int("n_embd", 1, kMaxDim);
    c.n_layers = r.req_int("n_layer", 1, 4096);
    c.n_heads = r.req_int("n_head", 1, 4096);
    c.max_positions = r.get_int("n_positions", 1024, 1, 1 << 24);
    c.intermediate = r.get_int("n_inner", 4 * c.hidden, 1, kMaxDim);
    c.norm_eps = r.get_float("layer_norm_epsilon", 1e-5f, 0.0f, 1.0f);
    c.act = parse_act(r.get_str("activation_function", "gelu_new"), where, "activation_function");
    c.tied_embeddings = r.get_bool("tie_word_embeddings", true);
    if (!r.get_bool("scale_attn_weights", true)) bad_input(where + ": scale_attn_weights=false is not supported");
    if (r.get_bool("scale_attn_by_inverse_layer_idx", false))
      bad_input(where + ": scale_attn_by_inverse_layer_idx is not supported");
    if (r.get_bool("reorder_and_upcast_attn", false)) bad_input(where + ": reorder_and_upcast_attn is not supported");
    if (r.get_bool("add_cross_attention", false))
      bad_input(where + ": add_cross_attention is not supported (decoder-only models)");
    c.norm = NormKind::layernorm;
    c.learned_positions = true;
    c.qkv_bias = c.attn_out_bias = c.mlp_bias = true;
    c.gated_mlp = false;
  } else if (type == "gpt_neo") {
    c.family = Family::gpt_neo;
    c.vocab_size = r.req_int("vocab_size", 1, 1 << 24);
    c.hidden = r.req_int("hidden_size", 1, kMaxDim);
    c.n_layers = r.req_int("num_layers", 1, 4096);
    c.n_heads = r.req_int("num_heads", 1, 4096);
    c.max_positions = r.get_int("max_position_embeddings", 2048, 1, 1 << 24);
    c.intermediate = r.get_int("intermediate_size", 4 * c.hidden, 1, kMaxDim);
    c.norm_eps = r.get_float("layer_norm_epsilon", 1e-5f, 0.0f, 1.0f);
    c.act = parse_act(r.get_str("activation_function", "gelu_new"), where, "activation_function");
    c.tied_embeddings = r.get_bool("tie_word_embeddings", true);
    int window = r.get_int("window_size", 256, 1, 1 << 24);
    // attention_types: [[["global","local"], repeat], ...] expands to one kind per layer.
    std::vector<std::string> kinds;
    if (r.has("attention_types")) {
      const json& at = j["attention_types"];
      if (!at.is_array()) bad_input(where + ": attention_types must be a list");
      for (auto& item : at) {
        if (!item.is_array() || item.size() != 2 || !item[0].is_array() || !item[1].is_number_integer())
          bad_input(where + ": attention_types entries must be [[kinds...], repeat]");
        int rep = item[1].get<int>();
        if (rep < 0 || rep > 4096) bad_input(where + ": attention_types repeat out of range");
        for (int k = 0; k < rep; k++)
          for (auto& kind : item[0]) {
            if (!kind.is_string()) bad_input(where + ": attention_types kinds must be strings");
            kinds.push_back(kind.get<std::string>());
          }
      }
    } else if (r.has("attention_layers")) {
      for (auto& kind : j["attention_layers"]) {
        if (!kind.is_string()) bad_input(where + ": attention_layers must be strings");
        kinds.push_back(kind.get<std::string>());
      }
    } else {
      kinds.assign(c.n_layers, "global");
    }
    if ((int)kinds.size() != c.n_layers)
      bad_input(where + ": attention_types give " + std::to_string(kinds.size()) + " layers, num_layers is " +
                std::to_string(c.n_layers));
    for (auto& k : kinds) {
      if (k == "global") c.window.push_back(0);
      else if (k == "local") c.window.push_back(window);
      else bad_input(where + ": attention type '" + k + "' is not global or local");
    }
    c.norm = NormKind::layernorm;
    c.learned_positions = true;
    c.qkv_bias = false;
    c.attn_out_bias = c.mlp_bias = true;
    c.gated_mlp = false;
    c.attn_scale = 1.0f;  // GPT-Neo does not scale attention scores
  } else if (type == "llama" || type == "qwen2") {
    const bool qwen2 = type == "qwen2";
    c.family = Family::llama;
    c.vocab_size = r.req_int("vocab_size", 1, 1 << 24);
    c.hidden = r.req_int("hidden_size", 1, kMaxDim);
    c.n_layers = r.req_int("num_hidden_layers", 1, 4096);
    c.n_heads = r.req_int("num_attention_heads", 1, 4096);
    c.n_kv_heads = r.get_int("num_key_value_heads", c.n_heads, 1, 4096);
    c.intermediate = r.req_int("intermediate_size", 1, kMaxDim);
    c.max_positions = r.get_int("max_position_embeddings", 2048, 1, 1 << 24);
    c.norm_eps = r.get_float("rms_norm_eps", 1e-6f, 0.0f, 1.0f);
    c.act = parse_act(r.get_str("hidden_act", "silu"), where, "hidden_act");
    c.tied_embeddings = r.get_bool("tie_word_embeddings", false);
    if (qwen2) {
      // Qwen2: the llama block with q/k/v biases and no o_proj or MLP bias; sliding-window
      // attention (use_sliding_window, layer_types "sliding_attention") is not implemented.
      c.qkv_bias = true;
      c.attn_out_bias = c.mlp_bias = false;
      if (r.get_bool("use_sliding_window", false))
        bad_input(where + ": use_sliding_window=true is not supported (mindllm runs Qwen2 with full attention only)");
      if (r.has("layer_types")) {
        if (!j["layer_types"].is_array()) bad_input(where + ": layer_types must be a list");
        for (auto& t : j["layer_types"])
          if (!t.is_string() || t.get<std::string>() != "full_attention")
            bad_input(where + ": layer_types entry " + t.dump() + " is not supported (full_attention only)");
      }
    } else {
      c.qkv_bias = c.attn_out_bias = r.get_bool("attention_bias", false);
      c.mlp_bias = r.get_bool("mlp_bias", false);
    }
    c.rope_theta = r.get_float("rope_theta", 10000.0f, 1.0f, 1e12f);
    c.partial_rotary = r.get_float("partial_rotary_factor", 1.0f, 0.0f, 1.0f);
    if (r.has("rope_parameters")) {
      const json& rp = j["rope_parameters"];
      if (!rp.is_object()) bad_input(where + ": rope_parameters must be an object");
      Reader rr{rp, where};
      std::string rt = rr.get_str("rope_type", "default");
      if (rt != "default") bad_input(where + ": rope_type '" + rt + "' is not supported (default only)");
      c.rope_theta = rr.get_float("rope_theta", c.rope_theta, 1.0f, 1e12f);
      c.partial_rotary = rr.get_float("partial_rotary_factor", c.partial_rotary, 0.0f, 1.0f);
    }
    if (r.has("rope_scaling")) bad_input(where + ": rope_scaling is not supported");
    if (r.get_int("pretraining_tp", 1, 1, 1 << 16) != 1) bad_input(where + ": pretraining_tp must be 1");
    c.norm = NormKind::rmsnorm;
    c.gated_mlp = true;
    c.learned_positions = false;
  } else if (type.empty()) {
    bad_input(where + ": missing field 'model_type' (gpt2, gpt_neo, llama or qwen2)");
  } else {
    bad_input(where + ": model_type '" + type + "' is not supported (gpt2, gpt_neo, llama or qwen2)");
  }
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  if (c.hidden % c.n_heads != 0 && !(c.family == Family::llama && r.has("head_dim")))
    bad_input(where + ": hidden size " + std::to_string(c.hidden) + " is not divisible by the head count " +
              std::to_string(c.n_heads));
  c.head_dim =
      c.family == Family::llama ? r.get_int("head_dim", c.hidden / c.n_heads, 1, kMaxDim) : c.hidden / c.n_heads;
  if (c.n_heads % c.n_kv_heads != 0)
    bad_input(where + ": num_attention_heads " + std::to_string(c.n_heads) +
              " is not a multiple of num_key_value_heads " + std::to_string(c.n_kv_heads));
  if (c.window.empty()) c.window.assign(c.n_layers, 0);
  if (c.attn_scale == 0.0f) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  c.init_std = r.get_float("initializer_range", 0.02f, 0.0f, 10.0f);
  c.bos_token_id = r.token_id("bos_token_id");
  c.eos_token_id = r.token_id("eos_token_id");
  c.deepnorm = r.get_bool("mindllm_deepnorm", false);
  if (c.deepnorm) {
    // DeepNet (Wang et al. 2022), decoder-only: alpha = (2N)^(1/4), beta = (8N)^(-1/4).
    c.deepnorm_alpha = r.get_float("mindllm_deepnorm_alpha", std::pow(2.0f * c.n_layers, 0.25f), 0.0f, 1e6f);
    c.deepnorm_beta = r.get_float("mindllm_deepnorm_beta", std::pow(8.0f * c.n_layers, -0.25f), 0.0f, 1e6f);
  }
  if (r.has("mindllm_partial_rotary_factor"))
    c.partial_rotary = r.get_float("mindllm_partial_rotary_factor", 1.0f, 0.0f, 1.0f);
  if (c.family == Family::llama && c.rot_dim() == 0 && c.partial_rotary > 0)
    bad_input(where + ": partial_rotary_factor leaves no rotary dimensions");
  return c;
}

json config_to_json(const ModelConfig& c) {
  json j;
  j["model_type"] = c.model_type();
  j["vocab_size"] = c.vocab_size;
  j["initializer_range"] = c.init_std;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["tie_word_embeddings"] = c.tied_embeddings;
  switch (c.family) {
    case Family::gpt2:
      j["architectures"] = {"GPT2LMHeadModel"};
      j["n_embd"] = c.hidden;
      j["n_layer"] = c.n_layers;
      j["n_head"] = c.n_heads;
      j["n_positions"] = c.max_positions;
      j["n_ctx"] = c.max_positions;
      j["n_inner"] = c.intermediate;
      j["layer_norm_epsilon"] = c.norm_eps;
      j["activation_function"] = act_name(c.act, c.family);
      break;
    case Family::gpt_neo: {
      j["architectures"] = {"GPTNeoForCausalLM"};
      j["hidden_size"] = c.hidden;
      j["num_layers"] = c.n_layers;
      j["num_heads"] = c.n_heads;
      j["max_position_embeddings"] = c.max_positions;
      j["intermediate_size"] = c.intermediate;
      j["layer_norm_epsilon"] = c.norm_eps;
      j["activation_function"] = act_name(c.act, c.family);
      int window = 256;
      json types = json::array();
      for (int w : c.window) {
        if (w > 0) window = w;
        types.push_back(json::array({json::array({w > 0 ? "local" : "global"}), 1}));
      }
      j["window_size"] = window;
      j["attention_types"] = types;
      j["attention_layers"] = json::array();
      for (int w : c.window) j["attention_layers"].push_back(w > 0 ? "local" : "global");
      break;
    }
    case Family::llama:
      j["architectures"] = {"LlamaForCausalLM"};
      if (c.model_type() == "qwen2") {
        j["architectures"] = {"Qwen2ForCausalLM"};
        j["use_sliding_window"] = false;
      }
      j["hidden_size"] = c.hidden;
      j["num_hidden_layers"] = c.n_layers;
      j["num_attention_heads"] = c.n_heads;
      j["num_key_value_heads"] = c.n_kv_heads;
      j["head_dim"] = c.head_dim;
      j["intermediate_size"] = c.intermediate;
      j["max_position_embeddings"] = c.max_positions;
      j["rms_norm_eps"] = c.norm_eps;
      j["hidden_act"] = act_name(c.act, c.family);
      if (c.model_type() != "qwen2") {
        j["attention_bias"] = c.qkv_bias;
        j["mlp_bias"] = c.mlp_bias;
      }
      j["rope_theta"] = c.rope_theta;
      j["rope_parameters"] = {{"rope_theta", c.rope_theta}, {"rope_type", "default"}};
      if (c.partial_rotary != 1.0f) j["mindllm_partial_rotary_factor"] = c.partial_rotary;
      break;
  }
  if (c.deepnorm) {
    j["mindllm_deepnorm"] = true;
    j["mindllm_deepnorm_alpha"] = c.deepnorm_alpha;
    j["mindllm_deepnorm_beta"] = c.deepnorm_beta;
  }
  j["torch_dtype"] = "float32";
  return j;
}

static json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    bad_input(where + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
}

ModelConfig resolve_model_config(const std::string& spec, std::string* weights_dir) {
  if (weights_dir) weights_dir->clear();
  if (is_directory(spec)) {
    std::string cfg = (std::filesystem::path(spec) / "config.json").string();
    if (!path_exists(cfg)) bad_input(spec + ": model directory has no config.json");
    if (weights_dir) *weights_dir = spec;
    return config_from_json(parse_json_text(read_file(cfg), cfg), cfg);
  }
  if (path_exists(spec)) return config_from_json(parse_json_text(read_file(spec), spec), spec);
  const char* preset = find_preset(spec);
  if (!preset) {
    std::string names;
    for (auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    bad_input("--model " + spec + ": no such file, directory or preset (presets: " + names + ")");
  }
  return config_from_json(parse_json_text(preset, "preset " + spec), "preset " + spec);
}

std::string describe(const ModelConfig& c) {
  char buf[256];
  double p = static_cast<double>(c.num_parameters());
  std::snprintf(buf, sizeof(buf), "%s: %d layers, d_model %d, %d heads (%d kv), mlp %d, vocab %d, %.2fM parameters%s",
                c.model_type().c_str(), c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.intermediate, c.vocab_size,
                p / 1e6, c.deepnorm ? ", DeepNorm" : "");
  return buf;
}

}  // namespace mindllm
