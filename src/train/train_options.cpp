#include "train/train_options.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/hash.h"
#include "kernels/cpu/linear_bf16.h"
#if MINDLLM_CUDA
#include "kernels/cuda/device.h"
#endif

using json = nlohmann::json;

namespace mindllm {

void check_options(const TrainOptions& o) {
  auto positive = [](int v, const char* flag) {
    if (v < 1) bad_input(std::string(flag) + " must be at least 1, got " + std::to_string(v));
  };
  positive(o.steps, "--steps");
  positive(o.batch, "--batch");
  positive(o.seq, "--seq");
  positive(o.grad_accum, "--grad-accum");
  positive(o.eval_batches, "--eval-batches");
  positive(o.log_every, "--log-every");
  if (o.ckpt_every < 0 || o.eval_every < 0 || o.keep_ckpts < 0)
    bad_input("--ckpt-every, --eval-every and --keep must be >= 0");
  if (!(o.schedule.lr >= 0) || !std::isfinite(o.schedule.lr)) bad_input("--lr must be a non-negative number");
  if (!(o.schedule.min_lr >= 0) || o.schedule.min_lr > o.schedule.lr) bad_input("--min-lr must be between 0 and --lr");
  if (o.schedule.warmup < 0) bad_input("--warmup must be >= 0");
  if (!(o.schedule.decay_fraction >= 0 && o.schedule.decay_fraction <= 1)) bad_input("--wsd-decay must be in [0, 1]");
  if (!(o.clip >= 0) || !std::isfinite(o.clip)) bad_input("--clip must be a finite number >= 0");
  if (!(o.neftune_alpha >= 0) || !std::isfinite(o.neftune_alpha))
    bad_input("--neftune-alpha must be a finite number >= 0");
  if (!(o.adamw.weight_decay >= 0) || !std::isfinite(o.adamw.weight_decay)) bad_input("--weight-decay must be >= 0");
  if (!(o.adamw.beta1 >= 0 && o.adamw.beta1 < 1)) bad_input("--beta1 must be in [0, 1)");
  if (!(o.adamw.beta2 >= 0 && o.adamw.beta2 < 1)) bad_input("--beta2 must be in [0, 1)");
  if (!(o.adamw.eps > 0) || !std::isfinite(o.adamw.eps)) bad_input("--adam-eps must be a finite number > 0");
  if (o.threads < 0) bad_input("--threads must be >= 0");
  if (o.zero != 0 && o.zero != 1) bad_input("--zero " + std::to_string(o.zero) + ": expected 0 or 1 (ZeRO stage)");
  if (o.recompute && o.device != Device::cuda) bad_input("--recompute: only with --device cuda");
  if (o.attention != "flash" && o.attention != "cudnn")
    bad_input("--attention " + o.attention + ": expected flash or cudnn");
  if (o.attention == "cudnn" && (o.device != Device::cuda || precision_of(o) != Precision::bf16))
    bad_input("--attention cudnn: only with --device cuda and --precision bf16");
  std::string why;
  if (o.device == Device::cpu && o.precision == Precision::bf16 && !cpu::bf16_gemm_available(&why))
    bad_input("--precision bf16: bf16 matrix multiplies are not available: " + why);
  if (o.device == Device::cuda) {
#if MINDLLM_CUDA
    if (!cuda::available()) bad_input("--device cuda: no usable GPU on this machine (use --device cpu)");
#else
    bad_input("--device cuda: this build has no CUDA backend (rebuild with nvcc and -DMINDLLM_CUDA=ON)");
#endif
  }
}

json options_json(const TrainOptions& o) {
  return {{"model", o.model},
          {"data", o.data},
          {"steps", o.steps},
          {"batch", o.batch},
          {"seq", o.seq},
          {"grad_accum", o.grad_accum},
          {"lr", o.schedule.lr},
          {"min_lr", o.schedule.min_lr},
          {"warmup", o.schedule.warmup},
          {"weight_decay", o.adamw.weight_decay},
          {"clip", o.clip},
          {"seed", o.seed},
          {"threads", o.threads},
          {"device", name(o.device)},
          {"precision", name(precision_of(o))},
          {"recompute", o.recompute},
          {"attention", o.attention},
          {"neftune_alpha", o.neftune_alpha},
          {"zero", o.zero}};
}

json rank_fingerprint(const TrainOptions& o, const TrainModel& tm, const BatchSource& data) {
  json f;
  json opts = options_json(o);
  opts.update({{"beta1", o.adamw.beta1},
               {"beta2", o.adamw.beta2},
               {"adam_eps", o.adamw.eps},
               {"decay_embeddings", o.adamw.decay_embeddings},
               {"schedule", static_cast<int>(o.schedule.kind)},
               {"wsd_decay", o.schedule.decay_fraction},
               {"ckpt_every", o.ckpt_every},
               {"keep", o.keep_ckpts},
               {"eval_every", o.eval_every},
               {"eval_batches", o.eval_batches},
               {"log_every", o.log_every},
               {"resume", o.resume},
               {"ignore_tokenizer_mismatch", o.ignore_tokenizer_mismatch},
               {"no_overlap", o.no_overlap},
               {"bucket_mb", o.bucket_mb}});
  for (const char* path_option : {"model", "data", "threads"}) opts.erase(path_option);
  for (const auto& [key, value] : opts.items()) {
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    f[flag] = value;
  }
  auto hex = [](const std::string& s) { return std::to_string(fnv1a64(s)); };
  f["the model config (--model)"] = hex(config_to_json(tm.config).dump());
  f["the data manifest (--data: shard names and token counts)"] = hex(data.manifest().dump());
  f["the tokenizer"] = hex(tm.tokenizer_json);
  return f;
}

std::optional<LoraLayout> check_lora(const TrainOptions& opt, const ModelConfig& c) {
  if (!opt.lora.on()) return std::nullopt;
  if (opt.device != Device::cpu) bad_input("--lora-rank: LoRA training runs on the CPU only (use --device cpu)");
  return build_lora_layout(c, build_layout(c), opt.lora);
}

}  // namespace mindllm
