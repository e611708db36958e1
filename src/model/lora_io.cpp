#include "model/lora_io.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace mindllm {

namespace {

std::string config_path(const std::string& dir) { return (fs::path(dir) / "adapter_config.json").string(); }
std::string weights_path(const std::string& dir) { return (fs::path(dir) / "adapter_model.safetensors").string(); }

json number(float v) {  // 16 rather than 16.0 where the value is whole (as PEFT writes it)
  if (v == std::floor(v) && std::fabs(v) < 1e9f) return static_cast<int64_t>(v);
  return v;
}

}  // namespace

void save_peft_adapter(const std::string& dir, const LoraWeights& w, const std::string& base_model) {
  const LoraLayout& L = *w.layout;
  std::vector<TensorToWrite> ts;
  for (const ParamSpec& s : L.params.specs) ts.push_back({s.name, DType::f32, s.shape, w.params.data() + s.offset});
  write_safetensors(weights_path(dir), ts, {{"format", "pt"}});
  const LoraConfig& c = L.cfg;
  json j = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base_model},
            {"r", c.rank},
            {"lora_alpha", number(c.alpha > 0 ? c.alpha : static_cast<float>(c.rank))},
            {"lora_dropout", c.dropout},
            {"target_modules", L.peft_target_modules()},
            {"fan_in_fan_out", L.fan_in_fan_out},
            {"bias", "none"},
            {"use_rslora", c.rslora},
            {"use_dora", false},
            {"init_lora_weights", true},
            {"inference_mode", true},
            {"modules_to_save", nullptr},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()}};
  write_file_atomic(config_path(dir), j.dump(2) + "\n");
}

PeftAdapterInfo read_peft_adapter_config(const std::string& dir) {
  const std::string path = config_path(dir);
  if (!is_directory(dir)) bad_input(dir + ": not a directory (expected a PEFT adapter directory)");
  if (!path_exists(path)) bad_input(path + ": no such file (not a PEFT adapter directory)");
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception&) { bad_input(path + ": not valid JSON"); }
  if (!j.is_object()) bad_input(path + ": not a JSON object");
  auto field = [&](const char* key) -> const json& {
    if (!j.contains(key)) bad_input(path + ": no '" + key + "'");
    return j[key];
  };
  if (field("peft_type") != "LORA") bad_input(path + ": peft_type " + j["peft_type"].dump() + " (only LORA adapters)");
  PeftAdapterInfo a;
  const json& r = field("r");
  if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > 65536)
    bad_input(path + ": 'r' must be an integer in [1, 65536], got " + r.dump());
  a.cfg.rank = r.get<int>();
  const json& alpha = j.value("lora_alpha", json(8));
  if (!alpha.is_number() || !(alpha.get<double>() > 0) || !std::isfinite(alpha.get<double>()))
    bad_input(path + ": 'lora_alpha' must be a number > 0, got " + alpha.dump());
  a.cfg.alpha = alpha.get<float>();
  const json& drop = j.value("lora_dropout", json(0.0));
  if (!drop.is_number() || !(drop.get<double>() >= 0 && drop.get<double>() < 1))
    bad_input(path + ": 'lora_dropout' must be a number in [0, 1), got " + drop.dump());
  a.cfg.dropout = drop.get<float>();
  a.cfg.rslora = j.value("use_rslora", false) == true;
  if (j.value("use_dora", false) == true) bad_input(path + ": use_dora: DoRA adapters are not supported");
  if (j.contains("bias") && j["bias"] != "none") bad_input(path + ": bias " + j["bias"].dump() + " (only \"none\")");
  if (j.value("lora_bias", false) == true) bad_input(path + ": lora_bias: adapters with a bias are not supported");
  if (j.contains("alora_invocation_tokens") && !j["alora_invocation_tokens"].is_null())
    bad_input(path + ": alora_invocation_tokens: activated LoRA is not supported");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && !j[key].is_null() && !(j[key].is_object() && j[key].empty()))
      bad_input(path + ": '" + key + "' (per-module ranks or alphas) is not supported");
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty())
    bad_input(path + ": 'modules_to_save' (fully trained modules) is not supported");
  if (j.contains("target_modules") && j["target_modules"].is_array())
    for (const json& t : j["target_modules"])
      if (t.is_string()) a.target_modules.push_back(t.get<std::string>());
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    a.base_model = j["base_model_name_or_path"].get<std::string>();
  return a;
}

LoraLayout peft_adapter_layout(const std::string& dir, const ModelConfig& c, const ParamLayout& layout) {
  const PeftAdapterInfo info = read_peft_adapter_config(dir);
  const std::string wpath = weights_path(dir);
  if (!path_exists(wpath)) bad_input(wpath + ": no such file");
  SafetensorsFile f(wpath);
  std::map<std::string, LoraModule> by_name;
  for (const LoraModule& m : lora_candidates(c, layout)) by_name["base_model.model." + m.path] = m;
  std::vector<LoraModule> chosen;
  for (const auto& [name, t] : f.tensors()) {
    const std::string a_suffix = ".lora_A.weight", b_suffix = ".lora_B.weight";
    const bool is_a =
        name.size() > a_suffix.size() && name.compare(name.size() - a_suffix.size(), a_suffix.size(), a_suffix) == 0;
    const bool is_b =
        name.size() > b_suffix.size() && name.compare(name.size() - b_suffix.size(), b_suffix.size(), b_suffix) == 0;
    if (!is_a && !is_b) bad_input(wpath + ": tensor '" + name + "' is not a LoRA A or B matrix");
    const std::string module = name.substr(0, name.size() - a_suffix.size());
    auto it = by_name.find(module);
    if (it == by_name.end())
      bad_input(wpath + ": tensor '" + name + "' adapts no module of this " + c.model_type() + " model (" +
                describe(c) + "): an adapter of another base model?");
    const LoraModule& m = it->second;
    const std::vector<int64_t> want =
        is_a ? std::vector<int64_t>{info.cfg.rank, m.in} : std::vector<int64_t>{m.out, info.cfg.rank};
    if (t.shape != want)
      bad_input(wpath + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", this model and r=" +
                std::to_string(info.cfg.rank) + " need " + shape_str(want) + ": an adapter of another base model?");
    if (is_a) chosen.push_back(m);
  }
  if (chosen.empty()) bad_input(wpath + ": holds no LoRA A matrix");
  // Keep the model's order (layers, then projections), whatever the file's.
  std::vector<LoraModule> ordered;
  for (const LoraModule& m : lora_candidates(c, layout))
    for (const LoraModule& x : chosen)
      if (x.path == m.path) ordered.push_back(m);
  return lora_layout_of(info.cfg, std::move(ordered), layout.linear_layout == cpu::WeightLayout::in_out);
}

void load_peft_adapter(const std::string& dir, LoraWeights& w) {
  const std::string wpath = weights_path(dir);
  if (!path_exists(wpath)) bad_input(wpath + ": no such file");
  SafetensorsFile f(wpath);
  for (const ParamSpec& s : w.layout->params.specs) {
    if (!f.has(s.name)) bad_input(wpath + ": missing tensor '" + s.name + "'");
    f.read_f32(s.name, w.params.data() + s.offset, &s.shape);
  }
  if (f.tensors().size() != w.layout->params.specs.size())
    bad_input(wpath + ": holds " + std::to_string(f.tensors().size()) + " tensors, expected " +
              std::to_string(w.layout->params.specs.size()) + " (the adapter's modules differ)");
  for (float v : w.params)
    if (!std::isfinite(v)) bad_input(wpath + ": holds NaN or infinite values");
}

}  // namespace mindllm
