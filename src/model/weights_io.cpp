#include "model/weights_io.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "model/gguf_import.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace mindllm {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json parse_json_file(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::parse_error& e) { bad_input(path + ": not valid JSON"); }
}

// A shard named in an index must be a plain file name inside the model directory.
std::string shard_path(const std::string& dir, const std::string& index, const std::string& file) {
  if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos || file == "." ||
      file == "..")
    bad_input(index + ": shard file name '" + file + "' is not a plain file name in the model directory");
  std::string p = (fs::path(dir) / file).string();
  if (!path_exists(p)) bad_input(index + ": shard '" + file + "' does not exist");
  return p;
}

}  // namespace

bool is_ignored_buffer(const std::string& n) {
  auto ends = [&](const char* s) {
    size_t k = std::strlen(s);
    return n.size() >= k && n.compare(n.size() - k, k, s) == 0;
  };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("attention.bias") || ends("attention.masked_bias") ||
         ends("rotary_emb.inv_freq") || ends("position_ids");
}

WeightSource WeightSource::open_dir(const std::string& dir) {
  WeightSource w;
  const std::string single_st = (fs::path(dir) / "model.safetensors").string();
  const std::string index_st = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single_bin = (fs::path(dir) / "pytorch_model.bin").string();
  const std::string index_bin = (fs::path(dir) / "pytorch_model.bin.index.json").string();
  auto add_st = [&](const std::string& path) {
    w.st_.push_back(std::make_unique<SafetensorsFile>(path));
    return w.st_.size() - 1;
  };
  auto add_bin = [&](const std::string& path) {
    w.bin_.push_back(std::make_unique<TorchBinFile>(path));
    return w.bin_.size() - 1;
  };
  if (path_exists(single_st) || path_exists(single_bin)) {
    bool bin = !path_exists(single_st);
    w.description_ = bin ? single_bin : single_st;
    if (bin) {
      size_t f = add_bin(single_bin);
      for (auto& [n, t] : w.bin_[f]->tensors()) w.where_[n] = {true, f};
    } else {
      size_t f = add_st(single_st);
      for (auto& [n, t] : w.st_[f]->tensors()) w.where_[n] = {false, f};
      w.quant_ = parse_quant_metadata(w.st_[f]->metadata(), single_st);
      for (auto& [n, q] : w.quant_)
        if (!w.st_[f]->has(n) || w.st_[f]->info(n).dtype != DType::u8)
          bad_input(single_st + ": quantised tensor '" + n + "' is not a U8 tensor of the file");
    }
    return w;
  }
  for (bool bin : {false, true}) {
    const std::string& index = bin ? index_bin : index_st;
    if (!path_exists(index)) continue;
    w.description_ = index;
    json j = parse_json_file(index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      bad_input(index + ": no 'weight_map' object");
    std::map<std::string, size_t> opened;
    for (auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) bad_input(index + ": weight_map['" + name + "'] is not a file name");
      std::string path = shard_path(dir, index, file.get<std::string>());
      auto it = opened.find(path);
      if (it == opened.end()) it = opened.emplace(path, bin ? add_bin(path) : add_st(path)).first;
      bool present = bin ? w.bin_[it->second]->has(name) : w.st_[it->second]->has(name);
      if (!present) bad_input(index + ": tensor '" + name + "' is not in its shard " + file.get<std::string>());
      w.where_[name] = {bin, it->second};
    }
    if (w.where_.empty()) bad_input(index + ": weight_map is empty");
    return w;
  }
  bad_input(dir +
            ": no weights (model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
            "pytorch_model.bin.index.json)");
}

bool WeightSource::has(const std::string& name) const { return where_.count(name) != 0; }

std::vector<std::string> WeightSource::names() const {
  std::vector<std::string> v;
  for (auto& [n, l] : where_) v.push_back(n);
  return v;
}

std::vector<int64_t> WeightSource::shape(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) bad_input(description_ + ": missing tensor '" + name + "'");
  if (auto q = quant_.find(name); q != quant_.end()) return q->second.shape;
  return it->second.bin ? bin_[it->second.file]->info(name).shape : st_[it->second.file]->info(name).shape;
}

std::string WeightSource::dtype_name(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) bad_input(description_ + ": missing tensor '" + name + "'");
  if (auto q = quant_.find(name); q != quant_.end()) return cpu::quant_type_name(q->second.type);
  return it->second.bin ? torch_dtype_name(bin_[it->second.file]->info(name).dtype)
                        : mindllm::dtype_name(st_[it->second.file]->info(name).dtype);
}

std::string WeightSource::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) return description_;
  return it->second.bin ? bin_[it->second.file]->path() : st_[it->second.file]->path();
}

void WeightSource::read_f32(const std::string& name, float* out, const std::vector<int64_t>* expect) const {
  auto it = where_.find(name);
  if (it == where_.end()) bad_input(description_ + ": missing tensor '" + name + "'");
  if (auto q = quant_.find(name); q != quant_.end()) {
    const SafetensorsFile& f = *st_[it->second.file];
    if (expect && *expect != q->second.shape)
      bad_input(f.path() + ": tensor '" + name + "' has shape " + shape_str(q->second.shape) + ", expected " +
                shape_str(*expect));
    auto raw = f.raw(name);
    dequantize_tensor(q->second, raw.data(), raw.size(), out, f.path(), name);
    return;
  }
  if (it->second.bin) bin_[it->second.file]->read_f32(name, out, expect);
  else st_[it->second.file]->read_f32(name, out, expect);
}

std::string find_tokenizer(const std::string& dir) {
  if (dir.empty() || !is_directory(dir)) return "";
  if (path_exists((fs::path(dir) / "tokenizer.json").string())) return dir;
  if (path_exists((fs::path(dir) / "vocab.json").string()) && path_exists((fs::path(dir) / "merges.txt").string()))
    return dir;
  return "";
}

std::optional<std::string> find_chat_template(const std::string& dir) {
  if (dir.empty() || !is_directory(dir)) return std::nullopt;
  std::string jinja = (fs::path(dir) / "chat_template.jinja").string();
  if (path_exists(jinja)) return read_file(jinja);
  std::string cj = (fs::path(dir) / "chat_template.json").string();
  if (path_exists(cj)) {
    json j = parse_json_file(cj);
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
      return j["chat_template"].get<std::string>();
  }
  std::string tc = (fs::path(dir) / "tokenizer_config.json").string();
  if (path_exists(tc)) {
    json j = parse_json_file(tc);
    if (j.is_object() && j.contains("chat_template")) {
      const json& t = j["chat_template"];
      if (t.is_string()) return t.get<std::string>();
      // A list of {name, template}: the one named "default", else the first.
      if (t.is_array()) {
        for (auto& e : t)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            return e["template"].get<std::string>();
        if (!t.empty() && t[0].is_object() && t[0].contains("template") && t[0]["template"].is_string())
          return t[0]["template"].get<std::string>();
      }
    }
  }
  return std::nullopt;
}

std::string first_non_finite_tensor(const Model& model) {
  const float* p = model.params().data();
  const int64_t n = static_cast<int64_t>(model.params().size());
  bool finite = true;
#pragma omp parallel for reduction(&& : finite) schedule(static)
  for (int64_t i = 0; i < n; i++) finite = finite && std::isfinite(p[i]);
  if (finite) return "";
  for (const ParamSpec& s : model.layout().specs)
    for (size_t k = 0; k < s.numel; k++)
      if (!std::isfinite(p[s.offset + k])) return s.name;
  return "";
}

ModelConfig resolve_model_dir(const std::string& dir, std::string* weights) {
  if (is_gguf_path(dir)) {
    *weights = dir;
    return gguf_config(dir);
  }
  ModelConfig cfg = resolve_model_config(dir, weights);
  if (weights->empty()) bad_input("--model " + dir + ": not a model directory");
  return cfg;
}

void load_for_inference(Model& model, const std::string& weights_dir, bool allow_non_finite,
                        const InferenceWeights& how) {
  // A quantised directory or GGUF file runs in its own type unless --weights says otherwise.
  std::optional<cpu::QuantType> weights;
  QuantBlocks blocks;  // the file's own blocks, run as they are (model/quant_weights.h)
  if (is_gguf_path(weights_dir)) {
    weights = load_gguf_weights(model, weights_dir, &blocks);
  } else {
    model.load_weights(weights_dir);
    weights = quantized_dir_type(weights_dir);
    if (weights) blocks = read_quant_blocks(weights_dir);
  }
  check_weights_finite(model, weights_dir, allow_non_finite, "--allow-non-finite");
  if (how.override_weights && how.weights != weights) weights = how.weights, blocks.clear();  // another type
  model.set_matmul_precision(how.matmul);
  model.set_quantized(weights ? quantize_weights(model, *weights, &blocks) : nullptr);
}

void check_weights_finite(const Model& model, const std::string& source, bool allow, const std::string& override_flag) {
  std::string bad = first_non_finite_tensor(model);
  if (bad.empty()) return;
  std::string what = source + ": weight '" + bad + "' holds NaN or infinite values";
  if (!allow)
    bad_input(what + " (a diverged or corrupt model" +
              (override_flag.empty() ? std::string(")") : "; pass " + override_flag + " to use it anyway)"));
  log_warn("%s; results will be meaningless", what.c_str());
}

void write_hf_dir(const Model& model, DType dtype, const std::string& tokenizer_src, const std::string& out) {
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16)
    bad_input("--dtype: Hugging Face export writes f32, f16 or bf16");
  if (path_exists(out) && !is_directory(out)) bad_input(out + ": exists and is not a directory");
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) bad_input(out + ": cannot create directory (" + ec.message() + ")");
  model.save(out);  // config.json, generation_config.json and the f32 weights
  if (dtype != DType::f32) {
    const auto& specs = model.layout().specs;
    std::vector<std::vector<uint16_t>> conv(specs.size());
    std::vector<TensorToWrite> ts;
    for (size_t i = 0; i < specs.size(); i++) {
      const float* p = model.params().data() + specs[i].offset;
      conv[i].resize(specs[i].numel);
      for (size_t k = 0; k < specs[i].numel; k++)
        conv[i][k] = dtype == DType::bf16 ? float_to_bf16(p[k]) : float_to_half(p[k]);
      ts.push_back({specs[i].name, dtype, specs[i].shape, conv[i].data()});
    }
    write_safetensors((fs::path(out) / "model.safetensors").string(), ts, {{"format", "pt"}});
    json cfg = config_to_json(model.config());
    cfg["torch_dtype"] = dtype == DType::bf16 ? "bfloat16" : "float16";
    cfg["dtype"] = cfg["torch_dtype"];
    write_file_atomic((fs::path(out) / "config.json").string(), cfg.dump(2) + "\n");
  }
  std::string tok = find_tokenizer(tokenizer_src);
  if (tok.empty()) return;
  if (fs::equivalent(fs::path(tok), fs::path(out), ec)) return;
  std::string tj = (fs::path(tok) / "tokenizer.json").string();
  if (path_exists(tj)) write_file_atomic((fs::path(out) / "tokenizer.json").string(), read_file(tj));
  else Tokenizer::load(tok).save((fs::path(out) / "tokenizer.json").string());
  for (const char* f : {"tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
                        "vocab.json", "merges.txt", "added_tokens.json"}) {
    std::string src = (fs::path(tok) / f).string();
    if (path_exists(src)) write_file_atomic((fs::path(out) / f).string(), read_file(src));
  }
}

}  // namespace mindllm
