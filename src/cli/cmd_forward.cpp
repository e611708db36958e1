// mindllm forward: one forward (and optionally backward) pass over given token ids, writing the
// logits, the loss and the parameter gradients to a safetensors file. For parity checks against
// other implementations and for scoring.
#include <cstring>
#include <optional>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/validate.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/safetensors.h"
#include "model/lora_io.h"
#include "model/model.h"
#include "model/weights_io.h"

namespace mindllm::cli {

static std::vector<int32_t> read_ids(const SafetensorsFile& f, const std::string& name, std::vector<int64_t>* shape) {
  const TensorInfo& t = f.info(name);
  if (t.shape.size() != 2) bad_input(f.path() + ": '" + name + "' must be 2-D [batch, seq]");
  *shape = t.shape;
  auto raw = f.raw(name);
  std::vector<int32_t> ids(t.numel());
  for (int64_t i = 0; i < t.numel(); i++) {
    int64_t v;
    if (t.dtype == DType::i32) {
      int32_t x;
      std::memcpy(&x, raw.data() + 4 * i, 4);
      v = x;
    } else if (t.dtype == DType::i64) {
      std::memcpy(&v, raw.data() + 8 * i, 8);
    } else {
      bad_input(f.path() + ": '" + name + "' must be I32 or I64");
    }
    if (v < INT32_MIN || v > INT32_MAX) bad_input(f.path() + ": '" + name + "' has an id out of range");
    ids[i] = static_cast<int32_t>(v);
  }
  return ids;
}

static int run_forward(int argc, char** argv) {
  CLI::App app{
      "Run one forward (and backward) pass; write logits, loss and gradients as safetensors.\n"
      "Input: a safetensors file with I32/I64 'input_ids' [B,T] and optional 'targets' [B,T]\n"
      "(target of position t, < 0 = ignored) and 'position_ids' [B,T] (packed samples: positions\n"
      "restart at 0 for each sample, which attends only to itself).",
      "mindllm forward"};
  std::string model_spec, tokens, out;
  bool grads = false;
  uint64_t init_seed = 0;
  int threads = 0;
  std::string adapter;
  Precision precision = Precision::fp32;
  app.add_option("--model", model_spec, "model directory (or preset/config with --init-seed)")->required();
  app.add_option("--tokens", tokens, "safetensors file with input_ids (and targets)")->required();
  app.add_option("--out", out, "output safetensors file")->required();
  app.add_flag("--grads", grads, "also write the parameter gradients (needs targets)");
  app.add_option("--init-seed", init_seed, "initialise weights from this seed when --model has none")
      ->check(non_negative());
  app.add_option("--adapter", adapter,
                 "PEFT LoRA adapter directory applied to the model (--grads: the adapter's "
                 "gradients, as grad.<tensor name>; the base is frozen)");
  add_threads_option(app, threads);
  add_precision_option(app, precision);
  OutputFlags output;  // --json: {"out", "batch", "seq", "loss"} on stdout
  add_output_flags(app, output);
  parse_args(app, argc, argv);
  check_output_file(out, "--out");
  apply_threads(threads);
  std::string weights;
  ModelConfig cfg = resolve_model_config(model_spec, &weights);
  SafetensorsFile in(tokens);
  std::vector<int64_t> shape, tshape;
  std::vector<int32_t> ids = read_ids(in, "input_ids", &shape);
  std::vector<int32_t> targets;
  if (in.has("targets")) {
    targets = read_ids(in, "targets", &tshape);
    if (tshape != shape) bad_input(tokens + ": targets shape differs from input_ids");
  }
  std::vector<int32_t> positions;
  if (in.has("position_ids")) {
    positions = read_ids(in, "position_ids", &tshape);
    if (tshape != shape) bad_input(tokens + ": position_ids shape differs from input_ids");
  }
  if (grads && targets.empty()) bad_input("--grads needs 'targets' in " + tokens);
  if (shape[0] < 1 || shape[1] < 1 || shape[0] > INT32_MAX || shape[1] > INT32_MAX)
    bad_input(tokens + ": input_ids shape [" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) +
              "] is empty or too large");
  int B = static_cast<int>(shape[0]), T = static_cast<int>(shape[1]);
  check_token_ids(ids, cfg.vocab_size, tokens + ": input_ids", false);
  check_token_ids(targets, cfg.vocab_size, tokens + ": targets", true);
  Model model(cfg);
  if (!weights.empty()) {
    model.load_weights(weights);
    check_weights_finite(model, weights, true, "");  // forward is a debugging tool: warn, go on
  } else {
    model.init_weights(init_seed);
  }
  std::optional<LoraLayout> lora_layout;
  std::optional<LoraWeights> lora;
  if (!adapter.empty()) {
    lora_layout = peft_adapter_layout(adapter, cfg, model.layout());
    lora.emplace(*lora_layout);
    load_peft_adapter(adapter, *lora);
    model.attach_lora(&*lora);
  }
  model.set_matmul_precision(precision);
  float loss = model.forward(ids.data(), targets.empty() ? nullptr : targets.data(), B, T,
                             positions.empty() ? nullptr : positions.data());
  std::vector<float> logits(model.logits(), model.logits() + (size_t)B * T * cfg.vocab_size);
  std::vector<TensorToWrite> ts = {{"logits", DType::f32, {B, T, cfg.vocab_size}, logits.data()},
                                   {"loss", DType::f32, {1}, &loss}};
  if (grads) {
    model.zero_grads();
    if (lora) lora->zero_grads();
    model.backward();
    const ParamLayout& layout = lora ? lora_layout->params : model.layout();
    const float* g = lora ? lora->grads.data() : model.grads().data();
    for (auto& s : layout.specs) ts.push_back({"grad." + s.name, DType::f32, s.shape, g + s.offset});
  }
  write_safetensors(out, ts);
  if (output.json) {
    nlohmann::json summary = {{"out", out}, {"batch", B}, {"seq", T}};
    if (!targets.empty()) summary["loss"] = loss;
    print_summary(output, "forward", "", summary);
  }
  return 0;
}

MINDLLM_COMMAND("forward", "one forward/backward pass: logits, loss, gradients (parity, scoring)", run_forward);

}  // namespace mindllm::cli
