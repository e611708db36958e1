#include "model/gguf_export.h"

#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/quant.h"
#include "model/model.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace mindllm {

namespace {

// A 2-D float matrix in row-major [rows][cols] (PyTorch's [out, in]); GGUF dims are {cols, rows}.
struct Mat {
  std::vector<float> v;
  int64_t rows = 0, cols = 0;
};

class Exporter {
 public:
  Exporter(const Model& m, const GGUFExportOptions& opt, GGUFWriter& w) : m_(m), opt_(opt), w_(w) {}

  const float* ptr(const std::string& name, const std::vector<int64_t>** shape = nullptr) const {
    const ParamSpec* s = m_.layout().find(name);
    if (!s) internal_error("gguf export: no parameter " + name);
    if (shape) *shape = &s->shape;
    return m_.params().data() + s->offset;
  }
  Mat mat(const std::string& name) const {
    const std::vector<int64_t>* sh;
    const float* p = ptr(name, &sh);
    Mat r{std::vector<float>(p, p + (*sh)[0] * (*sh)[1]), (*sh)[0], (*sh)[1]};
    return r;
  }
  std::vector<float> vec(const std::string& name) const {
    const std::vector<int64_t>* sh;
    const float* p = ptr(name, &sh);
    return std::vector<float>(p, p + (*sh)[0]);
  }
  static Mat transpose(const Mat& a) {
    Mat t{std::vector<float>(a.v.size()), a.cols, a.rows};
    for (int64_t i = 0; i < a.rows; i++)
      for (int64_t j = 0; j < a.cols; j++) t.v[j * a.rows + i] = a.v[i * a.cols + j];
    return t;
  }

  void put_vec(const std::string& name, const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    w_.add_tensor(name, {static_cast<uint64_t>(v.size())}, GGMLType::f32, std::move(b));
  }
  // `output`: the output projection, which q4_0 / q4_k files keep in q8_0 (as model/quant_weights.h);
  // q4_k rows that are not whole super-blocks are q4_0 (llama.cpp's quantiser takes q5_0).
  void put_mat(const std::string& name, const Mat& a, bool output = false) {
    GGMLType t = opt_.type;
    if ((t == GGMLType::q4_0 || t == GGMLType::q4_k) && output) t = GGMLType::q8_0;
    if (t == GGMLType::q4_k && a.cols % 256 != 0) t = GGMLType::q4_0;
    if ((t == GGMLType::q8_0 || t == GGMLType::q4_0) && a.cols % 32 != 0)
      t = GGMLType::f16;  // as convert_hf_to_gguf.py falls back
    const uint64_t n = a.v.size();
    std::vector<uint8_t> b(ggml_row_bytes(t, a.cols) * a.rows);
    switch (t) {
      case GGMLType::f32: std::memcpy(b.data(), a.v.data(), n * 4); break;
      case GGMLType::f16:
      case GGMLType::bf16:
        for (uint64_t i = 0; i < n; i++) {
          uint16_t h = t == GGMLType::f16 ? float_to_half(a.v[i]) : float_to_bf16(a.v[i]);
          b[2 * i] = h & 0xff, b[2 * i + 1] = h >> 8;
        }
        break;
      case GGMLType::q8_0: cpu::quantize_row(cpu::QuantType::q8_0, a.v.data(), (int64_t)n, b.data()); break;
      case GGMLType::q4_0: cpu::quantize_row(cpu::QuantType::q4_0, a.v.data(), (int64_t)n, b.data()); break;
      case GGMLType::q4_k: {  // the slowest quantiser: rows in parallel
        const uint64_t rb = ggml_row_bytes(t, a.cols);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < a.rows; r++)
          cpu::quantize_row(cpu::QuantType::q4_k, a.v.data() + r * a.cols, a.cols, b.data() + r * rb);
        break;
      }
      default: internal_error(std::string("gguf export: cannot write ") + ggml_type_name(t));  // read-only types
    }
    w_.add_tensor(name, {static_cast<uint64_t>(a.cols), static_cast<uint64_t>(a.rows)}, t, std::move(b));
    done_mb_ += n * 4e-6;
    if (opt_.progress) opt_.progress->update(done_mb_, name);
  }

 private:
  const Model& m_;
  const GGUFExportOptions& opt_;
  GGUFWriter& w_;
  double done_mb_ = 0;
};

// HF's rotate-half RoPE pairs (i, i + D/2); llama.cpp's "llama" architecture pairs (2i, 2i+1).
// Row h*D + 2i + t of the result is row h*D + t*D/2 + i of the input (convert_hf_to_gguf permute).
std::vector<float> permute_rows(const std::vector<float>& v, int heads, int D, int64_t cols) {
  std::vector<float> out(v.size());
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < D / 2; i++)
      for (int t = 0; t < 2; t++) {
        int64_t dst = (int64_t)h * D + 2 * i + t, src = (int64_t)h * D + t * (D / 2) + i;
        std::memcpy(&out[dst * cols], &v[src * cols], cols * sizeof(float));
      }
  return out;
}

// llama.cpp's names for the BPE pre-tokenizer regexes mindllm knows.
std::string pre_tokenizer_name(const Tokenizer& tok) {
  switch (tok.split_pattern().value_or(SplitPattern::gpt2)) {
    case SplitPattern::llama3: return "llama-bpe";
    case SplitPattern::qwen2: return "qwen2";
    case SplitPattern::gpt2: break;
  }
  return "gpt-2";
}

}  // namespace

void export_gguf(const Model& model, const Tokenizer& tok, const GGUFExportOptions& opt, const std::string& path) {
  const ModelConfig& c = model.config();
  const std::string where = "gguf export";
  if (c.deepnorm)
    bad_input(where + ": DeepNorm (post-norm) blocks have no llama.cpp architecture; export to hf instead");
  std::string arch;
  switch (c.family) {
    case Family::gpt2: arch = "gpt2"; break;
    case Family::gpt_neo:
      for (int w : c.window)
        if (w > 0)
          bad_input(where + ": this GPT-Neo model has local-attention layers (window " + std::to_string(w) +
                    "), which llama.cpp does not implement; only all-global GPT-Neo models export to GGUF (as gpt2)");
      arch = "gpt2";
      break;
    case Family::llama: arch = c.model_type() == "qwen2" ? "qwen2" : "llama"; break;
  }
  if (c.family == Family::llama) {
    if (c.act != Activation::silu)
      bad_input(where + ": llama.cpp's " + arch +
                " architecture uses SwiGLU (hidden_act silu); this model's MLP uses GELU");
    if (c.rot_dim() != c.head_dim)
      bad_input(where + ": partial rotary embeddings are not supported by llama.cpp's " + arch);
    if (arch == "llama" && c.head_dim % 2) bad_input(where + ": odd head_dim");
  } else if (c.act != Activation::gelu_tanh) {
    bad_input(where + ": llama.cpp's gpt2 architecture uses the tanh GELU (gelu_new); this model's is exact GELU");
  }
  if (tok.vocab_size() > static_cast<size_t>(c.vocab_size))
    bad_input(where + ": the tokenizer has " + std::to_string(tok.vocab_size()) +
              " tokens, more than the model's vocab_size " + std::to_string(c.vocab_size));

  GGUFWriter w;
  w.add_string("general.architecture", arch);
  w.add_string("general.name", opt.name.empty() ? "mindllm" : opt.name);
  // llama.cpp's llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q4_K_S 14,
  // MOSTLY_BF16 32.
  uint32_t file_type = opt.type == GGMLType::f32    ? 0
                       : opt.type == GGMLType::f16  ? 1
                       : opt.type == GGMLType::q4_0 ? 2
                       : opt.type == GGMLType::q8_0 ? 7
                       : opt.type == GGMLType::q4_k ? 14
                                                    : 32;
  w.add_u32("general.file_type", file_type);
  w.add_u32("general.quantization_version", 2);
  w.add_u32(arch + ".context_length", c.max_positions);
  w.add_u32(arch + ".embedding_length", c.hidden);
  w.add_u32(arch + ".block_count", c.n_layers);
  w.add_u32(arch + ".feed_forward_length", c.intermediate);
  w.add_u32(arch + ".attention.head_count", c.n_heads);
  if (c.family == Family::llama) {
    w.add_u32(arch + ".attention.head_count_kv", c.n_kv_heads);
    w.add_f32(arch + ".attention.layer_norm_rms_epsilon", c.norm_eps);
    w.add_f32(arch + ".rope.freq_base", c.rope_theta);
    w.add_u32(arch + ".rope.dimension_count", c.rot_dim());
    if (c.head_dim * c.n_heads != c.hidden) {
      w.add_u32(arch + ".attention.key_length", c.head_dim);
      w.add_u32(arch + ".attention.value_length", c.head_dim);
    }
  } else {
    w.add_f32(arch + ".attention.layer_norm_epsilon", c.norm_eps);
  }
  w.add_u32(arch + ".vocab_size", c.vocab_size);

  // Tokenizer: every id up to the model's vocabulary; ids without a token are unused padding.
  std::vector<std::string> tokens(c.vocab_size);
  std::vector<int32_t> types(c.vocab_size);
  for (int i = 0; i < c.vocab_size; i++) {
    auto t = tok.id_to_token(i);
    if (!t) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = 5;  // UNUSED
      continue;
    }
    tokens[i] = *t;
    types[i] = !tok.is_added(i) ? 1 : tok.is_special(i) ? 3 : 4;  // NORMAL, CONTROL, USER_DEFINED
  }
  std::vector<std::string> merges;
  for (auto& [a, b] : tok.merges()) merges.push_back(a + " " + b);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre_tokenizer_name(tok));
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", merges);
  int eos = c.eos_token_id >= 0 ? c.eos_token_id : tok.eos_id() ? *tok.eos_id() : -1;
  int bos = c.bos_token_id >= 0 ? c.bos_token_id : eos;
  if (eos >= 0 && eos < c.vocab_size) w.add_u32("tokenizer.ggml.eos_token_id", eos);
  if (bos >= 0 && bos < c.vocab_size) w.add_u32("tokenizer.ggml.bos_token_id", bos);
  w.add_bool("tokenizer.ggml.add_bos_token", false);  // mindllm and GPT-2-style models add no BOS
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  if (opt.chat_template) w.add_string("tokenizer.chat_template", *opt.chat_template);

  Exporter x(model, opt, w);
  const int64_t C = c.hidden;
  if (c.family == Family::llama) {
    x.put_mat("token_embd.weight", x.mat("model.embed_tokens.weight"), c.tied_embeddings);
    for (int l = 0; l < c.n_layers; l++) {
      std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
      x.put_vec(b + "attn_norm.weight", x.vec(p + "input_layernorm.weight"));
      Mat q = x.mat(p + "self_attn.q_proj.weight"), k = x.mat(p + "self_attn.k_proj.weight");
      std::vector<float> qb, kb;
      if (c.qkv_bias) qb = x.vec(p + "self_attn.q_proj.bias"), kb = x.vec(p + "self_attn.k_proj.bias");
      if (arch == "llama") {
        q.v = permute_rows(q.v, c.n_heads, c.head_dim, C);
        k.v = permute_rows(k.v, c.n_kv_heads, c.head_dim, C);
        if (c.qkv_bias)
          qb = permute_rows(qb, c.n_heads, c.head_dim, 1), kb = permute_rows(kb, c.n_kv_heads, c.head_dim, 1);
      }
      x.put_mat(b + "attn_q.weight", q);
      x.put_mat(b + "attn_k.weight", k);
      x.put_mat(b + "attn_v.weight", x.mat(p + "self_attn.v_proj.weight"));
      if (c.qkv_bias) {
        x.put_vec(b + "attn_q.bias", qb);
        x.put_vec(b + "attn_k.bias", kb);
        x.put_vec(b + "attn_v.bias", x.vec(p + "self_attn.v_proj.bias"));
      }
      x.put_mat(b + "attn_output.weight", x.mat(p + "self_attn.o_proj.weight"));
      if (c.attn_out_bias) x.put_vec(b + "attn_output.bias", x.vec(p + "self_attn.o_proj.bias"));
      x.put_vec(b + "ffn_norm.weight", x.vec(p + "post_attention_layernorm.weight"));
      x.put_mat(b + "ffn_gate.weight", x.mat(p + "mlp.gate_proj.weight"));
      x.put_mat(b + "ffn_up.weight", x.mat(p + "mlp.up_proj.weight"));
      x.put_mat(b + "ffn_down.weight", x.mat(p + "mlp.down_proj.weight"));
      if (c.mlp_bias) {
        x.put_vec(b + "ffn_gate.bias", x.vec(p + "mlp.gate_proj.bias"));
        x.put_vec(b + "ffn_up.bias", x.vec(p + "mlp.up_proj.bias"));
        x.put_vec(b + "ffn_down.bias", x.vec(p + "mlp.down_proj.bias"));
      }
    }
    x.put_vec("output_norm.weight", x.vec("model.norm.weight"));
    if (!c.tied_embeddings) x.put_mat("output.weight", x.mat("lm_head.weight"), true);
  } else {
    const bool neo = c.family == Family::gpt_neo;
    x.put_mat("token_embd.weight", x.mat("transformer.wte.weight"), c.tied_embeddings);
    x.put_mat("position_embd.weight", x.mat("transformer.wpe.weight"));
    for (int l = 0; l < c.n_layers; l++) {
      std::string p = "transformer.h." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
      x.put_vec(b + "attn_norm.weight", x.vec(p + "ln_1.weight"));
      x.put_vec(b + "attn_norm.bias", x.vec(p + "ln_1.bias"));
      if (neo) {
        // GPT-Neo does not scale attention scores; llama.cpp's gpt2 divides by sqrt(head_dim).
        const std::string a = p + "attn.attention.";
        Mat q = x.mat(a + "q_proj.weight"), k = x.mat(a + "k_proj.weight"), v = x.mat(a + "v_proj.weight");
        const float s = std::sqrt(static_cast<float>(c.head_dim));
        for (float& f : q.v) f *= s;
        Mat qkv{q.v, q.rows + k.rows + v.rows, C};
        qkv.v.insert(qkv.v.end(), k.v.begin(), k.v.end());
        qkv.v.insert(qkv.v.end(), v.v.begin(), v.v.end());
        x.put_mat(b + "attn_qkv.weight", qkv);
        x.put_vec(b + "attn_qkv.bias", std::vector<float>(qkv.rows, 0.0f));
        x.put_mat(b + "attn_output.weight", x.mat(a + "out_proj.weight"));
        x.put_vec(b + "attn_output.bias", x.vec(a + "out_proj.bias"));
        x.put_mat(b + "ffn_up.weight", x.mat(p + "mlp.c_fc.weight"));
        x.put_mat(b + "ffn_down.weight", x.mat(p + "mlp.c_proj.weight"));
      } else {
        // GPT-2's Conv1D stores [in, out]: transposed to [out, in].
        x.put_mat(b + "attn_qkv.weight", Exporter::transpose(x.mat(p + "attn.c_attn.weight")));
        x.put_vec(b + "attn_qkv.bias", x.vec(p + "attn.c_attn.bias"));
        x.put_mat(b + "attn_output.weight", Exporter::transpose(x.mat(p + "attn.c_proj.weight")));
        x.put_vec(b + "attn_output.bias", x.vec(p + "attn.c_proj.bias"));
        x.put_mat(b + "ffn_up.weight", Exporter::transpose(x.mat(p + "mlp.c_fc.weight")));
        x.put_mat(b + "ffn_down.weight", Exporter::transpose(x.mat(p + "mlp.c_proj.weight")));
      }
      x.put_vec(b + "ffn_norm.weight", x.vec(p + "ln_2.weight"));
      x.put_vec(b + "ffn_norm.bias", x.vec(p + "ln_2.bias"));
      x.put_vec(b + "ffn_up.bias", x.vec(p + "mlp.c_fc.bias"));
      x.put_vec(b + "ffn_down.bias", x.vec(p + "mlp.c_proj.bias"));
    }
    x.put_vec("output_norm.weight", x.vec("transformer.ln_f.weight"));
    x.put_vec("output_norm.bias", x.vec("transformer.ln_f.bias"));
    x.put_mat("output.weight", x.mat(c.tied_embeddings ? "transformer.wte.weight" : "lm_head.weight"), true);
  }
  if (opt.progress) opt.progress->note("writing " + path, true);
  w.write(path);
}

}  // namespace mindllm
