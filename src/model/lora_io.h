// Hugging Face PEFT adapter directories (what peft's save_pretrained writes and
// PeftModel.from_pretrained reads): adapter_config.json (peft_type LORA, task_type CAUSAL_LM, r,
// lora_alpha, lora_dropout, target_modules, base_model_name_or_path, fan_in_fan_out, ...) and
// adapter_model.safetensors with tensors base_model.model.<module path>.lora_A.weight [r, in] and
// .lora_B.weight [out, r].
#pragma once
#include <string>

#include "model/lora.h"

namespace mindllm {

// Writes adapter_config.json and adapter_model.safetensors (f32) into dir (which must exist).
void save_peft_adapter(const std::string& dir, const LoraWeights& w, const std::string& base_model);

struct PeftAdapterInfo {
  LoraConfig cfg;  // r, lora_alpha, lora_dropout, use_rslora
  std::vector<std::string> target_modules;
  std::string base_model;  // base_model_name_or_path ("" if none)
};
// adapter_config.json of dir, checked: a LoRA adapter mindllm can apply (no DoRA, bias, per-module
// ranks or modules_to_save), else bad input naming the file and field.
PeftAdapterInfo read_peft_adapter_config(const std::string& dir);

// The layout of the adapter in dir over this model: each tensor of adapter_model.safetensors must
// be the lora_A/lora_B of a module of the model with matching shapes (else bad input: an adapter of
// another base).
LoraLayout peft_adapter_layout(const std::string& dir, const ModelConfig& c, const ParamLayout& layout);

// Reads the adapter in dir into w: exactly w's tensors, with w's shapes, finite (else bad input).
void load_peft_adapter(const std::string& dir, LoraWeights& w);

}  // namespace mindllm
