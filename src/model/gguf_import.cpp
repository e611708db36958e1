#include "model/gguf_import.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/gguf.h"
#include "core/safetensors.h"
#include "kernels/cpu/quant_import.h"
#include "model/model.h"

namespace mindllm {

using json = nlohmann::json;

namespace {

struct Opened {
  MappedFile file;
  GGUFFile g;
  std::string arch;
  const GGUFTensorInfo* find(const std::string& name) const {
    for (const auto& t : g.tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

Opened open_gguf(const std::string& path) {
  Opened o{MappedFile(path), {}, {}};
  o.g = parse_gguf(o.file.bytes(), path);
  const json& md = o.g.metadata;
  if (!md.contains("general.architecture") || !md["general.architecture"].is_string())
    bad_input(path + ": GGUF has no general.architecture");
  o.arch = md["general.architecture"].get<std::string>();
  if (o.arch != "gpt2" && o.arch != "llama" && o.arch != "qwen2")
    bad_input(path + ": GGUF architecture '" + o.arch + "' is not supported (gpt2, llama, qwen2)");
  return o;
}

// An unsigned integer metadata value <arch>.<key>; required unless a default is given.
int64_t md_int(const Opened& o, const std::string& path, const std::string& key, std::optional<int64_t> def = {}) {
  const std::string k = o.arch + "." + key;
  if (!o.g.metadata.contains(k)) {
    if (def) return *def;
    bad_input(path + ": GGUF metadata has no " + k);
  }
  const json& v = o.g.metadata[k];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (int64_t{1} << 30))
    bad_input(path + ": GGUF " + k + " must be a positive integer");
  return v.get<int64_t>();
}

double md_float(const Opened& o, const std::string& path, const std::string& key, double def) {
  const std::string k = o.arch + "." + key;
  if (!o.g.metadata.contains(k)) return def;
  const json& v = o.g.metadata[k];
  if (!v.is_number()) bad_input(path + ": GGUF " + k + " must be a number");
  return v.get<double>();
}

// The GGUF tensor of a Hugging Face parameter name, and how its rows are rearranged.
struct Source {
  std::string name;
  bool transpose = false;   // GPT-2 Conv1D: the GGUF holds [out, in] of an [in, out] tensor
  int unpermute_heads = 0;  // llama: undo convert_hf_to_gguf's interleaving of Q/K rows
};

Source source_of(const std::string& hf, const std::string& arch, const ModelConfig& c) {
  auto ends = [&](const std::string& s) {
    return hf.size() >= s.size() && hf.compare(hf.size() - s.size(), s.size(), s) == 0;
  };
  auto layer_of = [&](const std::string& prefix) {
    size_t a = prefix.size(), b = hf.find('.', a);
    return "blk." + hf.substr(a, b - a) + ".";
  };
  const std::string suffix = ends(".bias") ? "bias" : "weight";
  if (arch == "gpt2") {
    if (hf == "transformer.wte.weight") return {"token_embd.weight"};
    if (hf == "transformer.wpe.weight") return {"position_embd.weight"};
    if (hf.rfind("transformer.ln_f.", 0) == 0) return {"output_norm." + suffix};
    if (hf == "lm_head.weight") return {"output.weight"};
    const std::string b = layer_of("transformer.h.");
    const bool w = suffix == "weight";
    if (hf.find(".ln_1.") != std::string::npos) return {b + "attn_norm." + suffix};
    if (hf.find(".ln_2.") != std::string::npos) return {b + "ffn_norm." + suffix};
    if (hf.find(".attn.c_attn.") != std::string::npos) return {b + "attn_qkv." + suffix, w};
    if (hf.find(".attn.c_proj.") != std::string::npos) return {b + "attn_output." + suffix, w};
    if (hf.find(".mlp.c_fc.") != std::string::npos) return {b + "ffn_up." + suffix, w};
    if (hf.find(".mlp.c_proj.") != std::string::npos) return {b + "ffn_down." + suffix, w};
  } else {
    if (hf == "model.embed_tokens.weight") return {"token_embd.weight"};
    if (hf == "model.norm.weight") return {"output_norm.weight"};
    if (hf == "lm_head.weight") return {"output.weight"};
    const std::string b = layer_of("model.layers.");
    const bool llama = arch == "llama";
    if (hf.find(".input_layernorm.") != std::string::npos) return {b + "attn_norm.weight"};
    if (hf.find(".post_attention_layernorm.") != std::string::npos) return {b + "ffn_norm.weight"};
    if (hf.find(".q_proj.") != std::string::npos) return {b + "attn_q." + suffix, false, llama ? c.n_heads : 0};
    if (hf.find(".k_proj.") != std::string::npos) return {b + "attn_k." + suffix, false, llama ? c.n_kv_heads : 0};
    if (hf.find(".v_proj.") != std::string::npos) return {b + "attn_v." + suffix};
    if (hf.find(".o_proj.") != std::string::npos) return {b + "attn_output." + suffix};
    if (hf.find(".gate_proj.") != std::string::npos) return {b + "ffn_gate." + suffix};
    if (hf.find(".up_proj.") != std::string::npos) return {b + "ffn_up." + suffix};
    if (hf.find(".down_proj.") != std::string::npos) return {b + "ffn_down." + suffix};
  }
  internal_error("gguf import: no llama.cpp name for " + hf);
}

std::optional<cpu::QuantType> quant_type_of(GGMLType t) {
  switch (t) {
    case GGMLType::f16: return cpu::QuantType::f16;
    case GGMLType::bf16: return cpu::QuantType::bf16;
    case GGMLType::q8_0: return cpu::QuantType::q8_0;
    case GGMLType::q4_0: return cpu::QuantType::q4_0;
    case GGMLType::q4_k: return cpu::QuantType::q4_k;
    default: return std::nullopt;
  }
}

// The types mindllm reads but does not multiply by (kernels/cpu/quant_import.h).
std::optional<cpu::ImportBlock> import_block_of(GGMLType t) {
  switch (t) {
    case GGMLType::q5_0: return cpu::ImportBlock::q5_0;
    case GGMLType::q5_k: return cpu::ImportBlock::q5_k;
    case GGMLType::q6_k: return cpu::ImportBlock::q6_k;
    default: return std::nullopt;
  }
}

// The engine type a tensor of type t runs in: its own, or q8_0 for the read-only types (more bits
// than any of them; q4_K would lose what the file kept); nullopt: fp32.
std::optional<cpu::QuantType> run_type_of(GGMLType t) {
  return import_block_of(t) ? std::optional(cpu::QuantType::q8_0) : quant_type_of(t);
}

// fp32 values of a GGUF tensor (rows of dims[0] elements).
void dequantize(const Opened& o, const GGUFTensorInfo& t, float* out) {
  const uint8_t* p = o.file.bytes().data() + o.g.data_start + t.offset;
  const uint64_t cols = t.dims[0], rows = t.size / ggml_row_bytes(t.type, cols), rb = ggml_row_bytes(t.type, cols);
  switch (t.type) {
    case GGMLType::f32: std::memcpy(out, p, t.size); return;
    case GGMLType::f16:
    case GGMLType::bf16:
    case GGMLType::q8_0:
    case GGMLType::q4_0:
    case GGMLType::q4_k: {
      const cpu::QuantType q = *quant_type_of(t.type);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < (int64_t)rows; r++) cpu::dequantize_row(q, p + rb * r, (int64_t)cols, out + cols * r);
      return;
    }
    case GGMLType::q5_0:
    case GGMLType::q5_k:
    case GGMLType::q6_k: {
      const cpu::ImportBlock q = *import_block_of(t.type);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < (int64_t)rows; r++)
        cpu::dequantize_import_row(q, p + rb * r, (int64_t)cols, out + cols * r);
      return;
    }
  }
}

}  // namespace

bool is_gguf_path(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0 && !is_directory(path);
}

ModelConfig gguf_config(const std::string& path) {
  Opened o = open_gguf(path);
  const GGUFTensorInfo* emb = o.find("token_embd.weight");
  if (!emb || emb->dims.size() != 2) bad_input(path + ": GGUF has no 2-D token_embd.weight");
  json j;
  const int64_t C = md_int(o, path, "embedding_length");
  j["vocab_size"] = emb->dims[1];
  const bool has_output = o.find("output.weight") != nullptr;
  if (o.arch == "gpt2") {
    j.update({{"model_type", "gpt2"},
              {"n_embd", C},
              {"n_layer", md_int(o, path, "block_count")},
              {"n_head", md_int(o, path, "attention.head_count")},
              {"n_positions", md_int(o, path, "context_length")},
              {"n_inner", md_int(o, path, "feed_forward_length", 4 * C)},
              {"activation_function", "gelu_new"},
              {"layer_norm_epsilon", md_float(o, path, "attention.layer_norm_epsilon", 1e-5)},
              {"tie_word_embeddings", !has_output}});
  } else {
    const int64_t heads = md_int(o, path, "attention.head_count");
    j.update({{"model_type", o.arch},
              {"hidden_size", C},
              {"num_hidden_layers", md_int(o, path, "block_count")},
              {"num_attention_heads", heads},
              {"num_key_value_heads", md_int(o, path, "attention.head_count_kv", heads)},
              {"intermediate_size", md_int(o, path, "feed_forward_length")},
              {"max_position_embeddings", md_int(o, path, "context_length")},
              {"hidden_act", "silu"},
              {"rms_norm_eps", md_float(o, path, "attention.layer_norm_rms_epsilon", 1e-6)},
              {"rope_theta", md_float(o, path, "rope.freq_base", 10000.0)},
              {"tie_word_embeddings", !has_output}});
    if (o.g.metadata.contains(o.arch + ".attention.key_length"))
      j["head_dim"] = md_int(o, path, "attention.key_length");
    if (o.arch == "llama") j["attention_bias"] = o.find("blk.0.attn_q.bias") != nullptr;
  }
  for (const char* k : {"bos", "eos"}) {
    const std::string key = std::string("tokenizer.ggml.") + k + "_token_id";
    if (o.g.metadata.contains(key) && o.g.metadata[key].is_number_unsigned())
      j[std::string(k) + "_token_id"] = o.g.metadata[key];
  }
  return config_from_json(j, path);
}

namespace {

// The block rows of a quantised 2-D tensor t for `spec`, in the parameter's row order: GGUF rows
// are already [out, in] rows (GPT-2's transposed matrices too); llama's Q/K rows un-permuted. A
// read-only type's rows (q5_0, q5_K, q6_K) become q8_0 blocks of their dequantised values.
void keep_blocks(const Opened& o, const GGUFTensorInfo& t, const ParamSpec& s, const Source& src, int head_dim,
                 QuantBlocks& blocks) {
  std::optional<cpu::QuantType> q = run_type_of(t.type);
  if (!q || s.shape.size() != 2) return;
  const uint8_t* p = o.file.bytes().data() + o.g.data_start + t.offset;
  const int64_t cols = (int64_t)t.dims[0], nrows = (int64_t)(t.size / ggml_row_bytes(t.type, t.dims[0]));
  const size_t rb = cpu::quant_row_bytes(*q, cols);
  std::vector<uint8_t> converted;  // a read-only type's rows as q8_0 blocks
  if (std::optional<cpu::ImportBlock> ib = import_block_of(t.type)) {
    if (!cpu::quant_row_fits(*q, cols)) return;  // runs from the fp32 values
    const size_t in_rb = ggml_row_bytes(t.type, t.dims[0]);
    converted.resize(rb * nrows);
#pragma omp parallel
    {
      std::vector<float> row(cols);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < nrows; r++) {
        cpu::dequantize_import_row(*ib, p + in_rb * r, cols, row.data());
        cpu::quantize_row(*q, row.data(), cols, converted.data() + rb * r);
      }
    }
    p = converted.data();
  }
  std::vector<uint8_t> rows(p, p + rb * nrows);
  if (src.unpermute_heads) {
    const int D = head_dim;
    for (int h = 0; h < src.unpermute_heads; h++)
      for (int i = 0; i < D / 2; i++)
        for (int k = 0; k < 2; k++)
          std::memcpy(rows.data() + ((size_t)h * D + k * (D / 2) + i) * rb, p + ((size_t)h * D + 2 * i + k) * rb, rb);
  }
  blocks[s.name] = {*q, std::move(rows)};
}

}  // namespace

std::optional<cpu::QuantType> load_gguf_weights(Model& model, const std::string& path, QuantBlocks* blocks) {
  Opened o = open_gguf(path);
  const ModelConfig& c = model.config();
  std::vector<float> tmp;
  for (const ParamSpec& s : model.layout().specs) {
    const Source src = source_of(s.name, o.arch, c);
    const GGUFTensorInfo* t = o.find(src.name);
    if (!t && s.name == "lm_head.weight") t = o.find("token_embd.weight");  // llama.cpp falls back likewise
    if (!t) bad_input(path + ": GGUF has no tensor '" + src.name + "' (for " + s.name + ")");
    // GGUF dims run innermost first: {cols, rows} of the [rows, cols] matrix.
    std::vector<int64_t> want = s.shape;
    if (want.size() == 2 && !src.transpose) std::swap(want[0], want[1]);
    std::vector<int64_t> have(t->dims.begin(), t->dims.end());
    if (have != want)
      bad_input(path + ": GGUF tensor '" + src.name + "' has dims " + shape_str(have) + ", expected " +
                shape_str(want) + " for " + s.name);
    float* dst = model.params().data() + s.offset;
    if (blocks) keep_blocks(o, *t, s, src, c.head_dim, *blocks);
    if (!src.transpose && !src.unpermute_heads) {
      dequantize(o, *t, dst);
      continue;
    }
    tmp.resize(s.numel);
    dequantize(o, *t, tmp.data());
    const int64_t rows = s.shape.size() == 2 ? (src.transpose ? s.shape[1] : s.shape[0]) : s.shape[0];
    const int64_t cols = (int64_t)s.numel / rows;
    if (src.transpose) {
      for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) dst[k * rows + r] = tmp[r * cols + k];
    } else {
      // Export put row h*D + t*D/2 + i at h*D + 2i + t (model/gguf_export.cpp): move it back.
      const int D = c.head_dim;
      for (int h = 0; h < src.unpermute_heads; h++)
        for (int i = 0; i < D / 2; i++)
          for (int p = 0; p < 2; p++)
            std::memcpy(dst + ((int64_t)h * D + p * (D / 2) + i) * cols,
                        tmp.data() + ((int64_t)h * D + 2 * i + p) * cols, sizeof(float) * cols);
    }
  }
  // The file's weight format: q4_k if any tensor is (its other matrices are the q8_0 / q4_0 that
  // matrix_type picks, or q5_0 / q6_K ones run as q8_0), else that of its first feed-forward
  // output matrix (q8_0 for a read-only type).
  for (const GGUFTensorInfo& t : o.g.tensors)
    if (t.type == GGMLType::q4_k) return cpu::QuantType::q4_k;
  const GGUFTensorInfo* probe = o.find("blk.0.ffn_down.weight");
  if (!probe) return std::nullopt;
  return run_type_of(probe->type);
}

}  // namespace mindllm
