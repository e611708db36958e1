#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/file_io.h"
#include "core/hash.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/profile.h"
#include "core/progress.h"
#include "kernels/cpu/linear_bf16.h"
#include "model/lora_io.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "train/batches.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/dist/communicator.h"
#include "train/dist/consistency.h"
#include "train/dist/nccl.h"
#include "train/dist/overlap.h"
#include "train/dist/rank_batches.h"
#include "train/dist/zero.h"
#if MINDLLM_CUDA
#include "kernels/cuda/device.h"
#include "model/cuda/cuda_model.h"
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace mindllm {

namespace {

// The effective --precision: bf16 mixed precision on a GPU unless asked otherwise, fp32 on the CPU
// (where bf16 means bf16 matrix multiplies with fp32 accumulation, on CPUs with AMX/AVX512-BF16).
Precision precision_of(const TrainOptions& o) {
  return o.precision ? *o.precision : o.device == Device::cuda ? Precision::bf16 : Precision::fp32;
}

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

std::string format_duration(double s) {
  char buf[32];
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%dm%02ds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%ds", t);
  return buf;
}

struct StepStats {
  float loss;
  double grad_norm;
  bool skipped;  // loss or gradient not finite: no update
};

// Where the step runs. The loop (data order, schedule, metrics, checkpoints) is shared; the host
// Model and AdamW hold the weights and optimizer state that checkpoints read and write.
//
// The step's loss is the mean over the target tokens of all its micro-batches: micro-batch i,
// with n_i of the step's N targets, enters with weight w_i = n_i * grad_accum / N (exactly 1
// when all count the same, as in pre-training), so loss = sum_i w_i mean_i / grad_accum and its
// gradient scale is w_i / grad_accum.
class StepBackend {
 public:
  virtual ~StepBackend() = default;
  virtual void zero_grads() = 0;
  // Forward and backward of one micro-batch with weight w (above).
  virtual void accumulate(const Batch& b, double weight, int grad_accum) = 0;
  // The step's loss, gradient norm, clipped AdamW update.
  virtual StepStats update(int grad_accum, float lr, float clip) = 0;
  virtual float loss(const Batch& b) = 0;                         // mean loss, forward only (validation)
  virtual void set_embedding_noise(const EmbeddingNoise& e) = 0;  // for the following accumulate()s
  virtual void set_lora_dropout(bool, uint64_t) {}                // LoRA dropout of the following accumulate()s, or off
  virtual void sync_to_host() {}                                  // before a checkpoint
  // Data parallel, before update(): the gradients and the loss sum become their sums over the
  // ranks (each rank weighed its micro-batches by the global batch's target tokens).
  virtual void reduce(dist::Communicator& c) = 0;
  // Data parallel: the next accumulate()'s backward starts the gradient reduction bucket by
  // bucket (dist/overlap.h) and reduce() completes it. False where the backend cannot.
  virtual bool overlap_next_backward(dist::Communicator&) { return false; }
};

class CpuBackend : public StepBackend {
 public:
  // zero: ZeRO-1 over zero->size() ranks (optim holds this rank's slice of the state). With LoRA
  // adapters, they alone train (the optimizer is over their layout).
  CpuBackend(Model& model, AdamW& optim, dist::Communicator* zero, LoraWeights* lora)
      : model_(model), optim_(optim), lora_(lora), zero_(zero) {
    model_.attach_lora(lora);
    if (zero_) slices_ = dist::even_slices(model_.params().size(), zero_->size());
  }
  void zero_grads() override {
    if (lora_) lora_->zero_grads();
    else model_.zero_grads();
    loss_sum_ = 0.0;
  }
  void accumulate(const Batch& b, double weight, int grad_accum) override {
    loss_sum_ += weight * model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T, b.position_ids());
    model_.backward(static_cast<float>(weight) / grad_accum);
  }
  StepStats update(int grad_accum, float lr, float clip) override {
    float loss = static_cast<float>(loss_sum_ / grad_accum);
    double norm = lora_   ? lora_->grad_norm()
                  : zero_ ? dist::sliced_norm(*zero_, model_.grads(), slices_)
                          : grad_norm(model_);
    bool finite = std::isfinite(loss) && std::isfinite(norm);
    if (finite) {
      float scale = clip > 0 ? static_cast<float>(std::min(1.0, clip / (norm + 1e-6))) : 1.0f;
      if (lora_) optim_.step(lora_->params.data(), lora_->grads.data(), lr, scale);
      else optim_.step(model_, lr, scale);  // with ZeRO-1: this rank's slice, then every rank's
      if (zero_) zero_->all_gather(std::span<float>(model_.params()), slices_);
    }
    return {loss, norm, !finite};
  }
  float loss(const Batch& b) override {
    return model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T, b.position_ids());
  }
  void set_embedding_noise(const EmbeddingNoise& e) override { model_.set_embedding_noise(e); }
  void reduce(dist::Communicator& c) override {
    if (overlapping_) {
      overlap_->finish();
      model_.set_backward_hook({});
      overlapping_ = false;
    } else if (zero_) {
      dist::reduce_scatter_in_place(c, model_.grads(), slices_);  // only this rank's slice is summed
    } else {
      c.allreduce_sum(std::span<float>(model_.grads()));
    }
    c.allreduce_sum(std::span<double>(&loss_sum_, 1));
  }
  bool overlap_next_backward(dist::Communicator& c) override {
    if (zero_ || lora_) return false;  // ZeRO-1's reduce-scatter and LoRA's gradients: after the backward
    if (!overlap_)
      overlap_ = std::make_unique<dist::OverlappedReduce>(model_.layout(), model_.config().n_layers, c.bucket_floats);
    overlap_->begin(c, std::span<float>(model_.grads()));
    model_.set_backward_hook([this](int stage) { overlap_->stage_done(stage); });
    overlapping_ = true;
    return true;
  }
  void set_lora_dropout(bool on, uint64_t seed) override {
    if (!lora_) return;
    lora_->dropout_on = on;
    lora_->dropout_seed = seed;
  }

 private:
  Model& model_;
  AdamW& optim_;
  LoraWeights* lora_;
  double loss_sum_ = 0.0;
  dist::Communicator* zero_;
  dist::Slices slices_;
  std::unique_ptr<dist::OverlappedReduce> overlap_;
  bool overlapping_ = false;
};

#if MINDLLM_CUDA
// The step on the GPU (model/cuda/cuda_model.h): weights and AdamW state live on the device and
// are copied back in the CPU's format before each checkpoint.
class CudaBackend : public StepBackend {
 public:
  CudaBackend(Model& model, AdamW& optim, const AdamWConfig& cfg, int B, int T, Precision precision, bool recompute,
              AttentionImpl attention)
      : model_(model), optim_(optim), cfg_(cfg),
        gpu_(model.config(), B, T, precision, optim.spans(), recompute, attention) {
    gpu_.upload_params(model.params());
    gpu_.upload_optimizer(optim.exp_avg(), optim.exp_avg_sq(), optim.steps_taken());
  }
  void zero_grads() override { gpu_.zero_grads(); }
  void accumulate(const Batch& b, double weight, int grad_accum) override {
    gpu_.forward(b.inputs.data(), b.targets.data(), b.B, b.T, weight, b.position_ids());
    gpu_.backward(static_cast<float>(weight) / grad_accum);
  }
  StepStats update(int grad_accum, float lr, float clip) override {
    CudaStepResult r = gpu_.step({lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, 0}, clip, grad_accum);
    if (reduced_loss_sum_) r.loss = static_cast<float>(*reduced_loss_sum_ / grad_accum);
    reduced_loss_sum_.reset();
    return {r.loss, r.grad_norm, r.skipped};
  }
  void reduce(dist::Communicator& c) override {
#if MINDLLM_NCCL
    if (!reducer_) reducer_ = dist::nccl_reducer(c);
    reducer_->allreduce_sum(gpu_.device_grads(), model_.params().size());
    double sum = gpu_.loss_sum();
    c.allreduce_sum(std::span<double>(&sum, 1));
    reduced_loss_sum_ = sum;
#else
    internal_error("data-parallel --device cuda needs a build with NCCL");
#endif
  }
  float loss(const Batch& b) override {
    return gpu_.loss(b.inputs.data(), b.targets.data(), b.B, b.T, b.position_ids());
  }
  void set_embedding_noise(const EmbeddingNoise& e) override { gpu_.set_embedding_noise(e); }
  void sync_to_host() override {
    gpu_.download_params(model_.params());
    gpu_.download_optimizer(optim_.exp_avg(), optim_.exp_avg_sq());
    optim_.set_steps_taken(gpu_.optimizer_steps());
  }

 private:
  Model& model_;
  AdamW& optim_;
  AdamWConfig cfg_;
  CudaModel gpu_;
  std::optional<double> reduced_loss_sum_;  // the loss sum over all ranks, for this step's update
#if MINDLLM_NCCL
  std::unique_ptr<dist::DeviceReducer> reducer_;
#endif
};
#endif

std::unique_ptr<StepBackend> make_backend(const TrainOptions& o, Model& model, AdamW& optim, dist::Communicator& comm,
                                          LoraWeights* lora) {
#if MINDLLM_CUDA
  if (o.device == Device::cuda)
    return std::make_unique<CudaBackend>(model, optim, o.adamw, o.batch, o.seq, precision_of(o), o.recompute,
                                         attention_impl_from_name(o.attention));
#endif
  model.set_matmul_precision(precision_of(o));
  return std::make_unique<CpuBackend>(model, optim, o.zero ? &comm : nullptr, lora);
}

// Mean loss over the target tokens of the source's validation batches, of all ranks (NaN without
// any).
float validation_loss(StepBackend& backend, BatchSource& data, dist::Communicator& comm) {
  double sum = 0.0;
  int64_t count = 0;
  Batch batch;
  for (int i = 0; i < data.val_batches(); i++) {
    data.val_batch(i, &batch);
    int64_t n = batch.count_targets();
    if (n == 0) continue;
    sum += static_cast<double>(backend.loss(batch)) * n;
    count += n;
  }
  double totals[2] = {sum, static_cast<double>(count)};
  comm.allreduce_sum(std::span<double>(totals));
  return totals[1] > 0 ? static_cast<float>(totals[0] / totals[1]) : NAN;
}

// Keeps the metrics lines of steps <= last_step (a resumed run rewrites what came after).
void truncate_metrics(const std::string& path, int last_step) {
  if (!path_exists(path)) return;
  std::string kept;
  for_each_jsonl_line(read_file(path), [&](std::string_view line, int) {
    try {
      if (json::parse(line).value("step", 0) > last_step) return;
    } catch (...) {
      return;  // a line cut short by a crash
    }
    kept.append(line).push_back('\n');
  });
  write_file_atomic(path, kept);
}

// The run directory: created if needed; stale temporaries of killed runs removed; a fresh run
// refuses one that already holds checkpoints (it would overwrite them and metrics.jsonl).
void prepare_run_dir(const TrainOptions& o) {
  if (path_exists(o.out) && !is_directory(o.out)) bad_input("--out " + o.out + ": exists and is not a directory");
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) bad_input("--out " + o.out + ": cannot create the run directory (" + ec.message() + ")");
  StaleRemoval removed = remove_stale_temporaries(o.out);
  if (removed.dirs > 0)
    log_info("removed %d stale temporary checkpoint director%s (%.1f MB) left by interrupted runs", removed.dirs,
             removed.dirs == 1 ? "y" : "ies", removed.bytes / 1e6);
  if (!o.resume && has_checkpoints(o.out))
    bad_input(o.out + ": already holds checkpoints; pass --resume to continue that run, or choose a new --out");
}

struct ResumeState {
  int step = 0, skipped = 0;
  double tokens_seen = 0;
};

// trainer_state.json of checkpoint `dir`, checked: its step is an integer that matches the
// directory's name and lies in [0, --steps]; the seed is the run's; skipped steps in [0, step].
ResumeState read_trainer_state(const std::string& dir, const TrainOptions& o) {
  const std::string path = dir + "/trainer_state.json";
  json st;
  try {
    st = json::parse(read_file(path));
  } catch (const json::exception&) { bad_input(path + ": malformed trainer state (not JSON)"); }
  auto integer = [&](const char* key, int64_t lo, int64_t hi, bool required) -> int64_t {
    if (!st.is_object() || !st.contains(key)) {
      if (required) bad_input(path + ": no '" + key + "'");
      return 0;
    }
    const json& v = st[key];
    bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= (uint64_t)hi
                                           : v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range)
      bad_input(path + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got " + v.dump().substr(0, 40));
    return v.get<int64_t>();
  };
  ResumeState r;
  r.step = static_cast<int>(integer("step", 0, o.steps, true));
  int named = checkpoint_step(fs::path(dir).filename().string());
  if (named >= 0 && named != r.step)
    bad_input(path + ": step " + std::to_string(r.step) + " does not match the directory name");
  r.skipped = static_cast<int>(integer("skipped_steps", 0, r.step, false));
  if (st.contains("tokens_seen")) {
    if (!st["tokens_seen"].is_number() || !(st["tokens_seen"].get<double>() >= 0))
      bad_input(path + ": 'tokens_seen' must be a non-negative number");
    r.tokens_seen = st["tokens_seen"].get<double>();
  }
  if (st.contains("seed") && !(st["seed"].is_number_unsigned() && st["seed"].get<uint64_t>() == o.seed))
    bad_input("--seed " + std::to_string(o.seed) + " differs from the checkpoint's seed " +
              st["seed"].dump().substr(0, 40));
  return r;
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

// What every rank of a data-parallel job must agree on, named as the user would name it: the
// options (not --threads, nor paths, which may differ between hosts), the model config, the data
// manifest and the tokenizer (dist/consistency.h).
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

// A LoRA checkpoint's adapter must be the one these flags train (same modules, rank, alpha, dropout).
void check_lora_checkpoint(const std::string& dir, const LoraLayout& want) {
  const PeftAdapterInfo a = read_peft_adapter_config(dir);
  const LoraConfig& c = want.cfg;
  if (a.cfg.rank != c.rank || a.cfg.scale() != c.scale() || a.cfg.dropout != c.dropout ||
      a.target_modules != want.peft_target_modules())
    bad_input(dir +
              "/adapter_config.json: the checkpoint's LoRA (r, lora_alpha, lora_dropout, target_modules) "
              "differs from --lora-rank/--lora-alpha/--lora-dropout/--lora-targets");
}

}  // namespace

std::optional<LoraLayout> check_lora(const TrainOptions& opt, const ModelConfig& c) {
  if (!opt.lora.on()) return std::nullopt;
  if (opt.device != Device::cpu) bad_input("--lora-rank: LoRA training runs on the CPU only (use --device cpu)");
  return build_lora_layout(c, build_layout(c), opt.lora);
}

TrainResult train(const TrainOptions& opt, const TrainModel& tm, BatchSource& all_data, dist::Communicator* comm_arg) {
  check_options(opt);
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const ModelConfig& cfg = tm.config;
  if (cfg.learned_positions && opt.seq > cfg.max_positions)
    bad_input("--seq " + std::to_string(opt.seq) + " exceeds the model's " + std::to_string(cfg.max_positions) +
              " positions");

  // Data parallel (train/dist): rank 0 (`lead`) alone logs and writes; every rank reads its slice.
  std::unique_ptr<dist::Communicator> own_comm = comm_arg ? nullptr : dist::single_process();
  dist::Communicator& comm = comm_arg ? *comm_arg : *own_comm;
  const int ranks = comm.size();
  const bool lead = comm.rank() == 0;
  comm.bucket_floats = std::max<size_t>(1, static_cast<size_t>(opt.bucket_mb * (1 << 20) / sizeof(float)));
  dist::RankBatches rank_slice(all_data, comm.rank(), ranks, opt.grad_accum);
  BatchSource& data = ranks > 1 ? rank_slice : all_data;
  if (opt.zero && ranks == 1)
    bad_input(std::string("--zero 1 shards the optimizer state across the ranks of a data-parallel job: launch with "
                          "mpirun -np N (N > 1)") +
              (dist::built_with_mpi() ? "" : "; this build has no MPI"));
  if (ranks > 1) {
    if (!lead) set_log_enabled(false);
    if (opt.device == Device::cuda && !dist::built_with_nccl())
      bad_input("--device cuda with " + std::to_string(ranks) + " ranks: this build has no NCCL");
    if (opt.zero && opt.device == Device::cuda) bad_input("--zero 1: only with --device cpu for now");
    dist::check_same_on_all_ranks(comm, rank_fingerprint(opt, tm, all_data));
  }

  if (lead) prepare_run_dir(opt);
  auto existing = opt.resume && lead ? latest_checkpoint(opt.out) : std::nullopt;

  Model model(cfg);
  // LoRA: the adapters train, the base (--model's weights) is frozen; checkpoints hold the adapter.
  const std::optional<LoraLayout> lora_layout = check_lora(opt, cfg);
  std::unique_ptr<LoraWeights> lora;
  if (lora_layout) {
    if (tm.weights_dir.empty()) bad_input("--lora-rank: LoRA needs a --model directory with weights");
    lora = std::make_unique<LoraWeights>(*lora_layout);
  }
  AdamW optim(lora ? lora_layout->params : model.layout(), opt.adamw);
  int start = 0, skipped = 0;
  double tokens_seen = 0;  // input tokens of the steps done, resumed from the checkpoint
  const bool lora_ckpt = existing && path_exists(*existing + "/adapter_config.json");
  if (existing && lora_ckpt != (lora != nullptr))
    bad_input(*existing + (lora ? ": not a LoRA checkpoint (the run was not started with --lora-rank)"
                                : ": a LoRA checkpoint: resume it with the run's --lora-* flags"));
  if (existing) {
    if (lora) {  // the frozen base from --model, the adapter from the checkpoint
      check_lora_checkpoint(*existing, *lora_layout);
      model.load_weights(tm.weights_dir);
      load_peft_adapter(*existing, *lora);
    } else {
      ModelConfig saved = resolve_model_config(*existing, nullptr);
      saved.bos_token_id = cfg.bos_token_id;  // checkpoints of older versions have none
      saved.eos_token_id = cfg.eos_token_id;
      if (config_to_json(saved) != config_to_json(cfg))
        bad_input(*existing + ": checkpoint model differs from --model " + opt.model);
      model.load_weights(*existing);
      check_weights_finite(model, *existing, false, "");
    }
    optim.load(*existing + "/optimizer.safetensors");
    const ResumeState rs = read_trainer_state(*existing, opt);
    start = rs.step;
    skipped = rs.skipped;
    tokens_seen = rs.tokens_seen;
    if (optim.steps_taken() > start)
      bad_input(*existing + "/optimizer.safetensors: optimizer step " + std::to_string(optim.steps_taken()) +
                " is past the checkpoint's step " + std::to_string(start));
    log_info("resuming from %s (step %d)", existing->c_str(), start);
  } else if (!lead) {
    // the weights come from rank 0 (below)
  } else if (!tm.weights_dir.empty()) {
    model.load_weights(tm.weights_dir);
    if (lora) lora->init(opt.seed);
  } else {
    model.init_weights(opt.seed);
  }
  if (ranks > 1) {  // rank 0's start (weights, optimizer state, counters) to every rank
    dist::broadcast(comm, model.params(), 0);
    if (opt.zero) {  // each rank its slice of the optimizer state
      dist::shard_optimizer(comm, optim);
    } else {
      dist::broadcast(comm, optim.exp_avg(), 0);
      dist::broadcast(comm, optim.exp_avg_sq(), 0);
    }
    double counters[4] = {static_cast<double>(start), static_cast<double>(skipped), tokens_seen,
                          static_cast<double>(optim.steps_taken())};
    comm.broadcast(std::as_writable_bytes(std::span<double>(counters)), 0);
    start = static_cast<int>(counters[0]);
    skipped = static_cast<int>(counters[1]);
    tokens_seen = counters[2];
    optim.set_steps_taken(static_cast<int>(counters[3]));
  }

  if (tm.tokenizer_json.empty())
    log_warn(
        "no tokenizer (--tokenizer, the model directory's or <data>/tokenizer.json): checkpoints will have "
        "none, and no end-of-text id");

  std::string metrics_path = (fs::path(opt.out) / "metrics.jsonl").string();
  std::ofstream metrics;
  if (lead) {
    if (start > 0) truncate_metrics(metrics_path, start);
    else write_file_atomic(metrics_path, "");
    metrics.open(metrics_path, std::ios::app);
  }

  Schedule sched = opt.schedule;
  sched.total = opt.steps;
  const int G = opt.grad_accum;  // this rank's micro-batches per step
  const int G_all = G * ranks;   // the global batch's
#if MINDLLM_NCCL
  if (ranks > 1 && opt.device == Device::cuda) dist::select_local_gpu();
#endif
  if (lora && ranks > 1) bad_input("--lora-rank: LoRA is not yet trained data-parallel (run one process)");
  std::unique_ptr<StepBackend> backend = make_backend(opt, model, optim, comm, lora.get());
  std::string where = std::to_string(omp_get_max_threads()) + " threads, " + name(precision_of(opt));
#if MINDLLM_CUDA
  if (opt.device == Device::cuda) where = cuda::device_description() + ", " + name(precision_of(opt));
#endif
  log_info("model %s", describe(cfg).c_str());
  if (lora)
    log_info("LoRA: r=%d, alpha %g, dropout %g, %zu modules, %zu trainable parameters (%.2f%% of %zu, frozen)",
             opt.lora.rank, opt.lora.alpha > 0 ? opt.lora.alpha : (float)opt.lora.rank, opt.lora.dropout,
             lora_layout->modules.size(), lora->params.size(), 100.0 * lora->params.size() / model.params().size(),
             model.params().size());
  log_info("data: %s; %d x %d sequences of up to %d tokens per step; %s", data.describe().c_str(), G_all, opt.batch,
           opt.seq, where.c_str());
  if (ranks > 1) {
    const size_t n = model.params().size(), buckets = (n + comm.bucket_floats - 1) / comm.bucket_floats;
    const bool overlapped = !opt.no_overlap && !opt.zero && !lora && opt.device == Device::cpu;
    log_info("data parallel: %d ranks (%s) x %d micro-batches each; gradients in %zu buckets, %s", ranks,
             comm.engine().c_str(), G, buckets, overlapped ? "reduced during the backward" : "reduced after it");
  }

  auto save = [&](int step) {
    backend->sync_to_host();
    dist::check_replicas_agree(comm, model.params(), "at step " + std::to_string(step));
    std::vector<float> m, v;  // ZeRO-1: the whole state, gathered on rank 0
    if (opt.zero) dist::gather_optimizer(comm, optim, model.params().size(), &m, &v);
    if (!lead) return;
    write_checkpoint(opt.out, step, opt.keep_ckpts, [&](const std::string& dir) {
      if (lora) save_peft_adapter(dir, *lora, fs::absolute(tm.weights_dir).lexically_normal().string());
      else model.save(dir);
      if (opt.zero) AdamW::save_state(dir + "/optimizer.safetensors", m, v, optim.steps_taken());
      else optim.save(dir + "/optimizer.safetensors");
      if (!tm.tokenizer_json.empty()) write_file_atomic(dir + "/tokenizer.json", tm.tokenizer_json);
      for (const auto& [name, content] : tm.files) write_file_atomic(dir + "/" + name, content);
      json st = {{"step", step},
                 {"seed", opt.seed},
                 {"optimizer_step", optim.steps_taken()},
                 {"skipped_steps", skipped},
                 {"tokens_seen", tokens_seen},
                 {"data_position", data.position(step)},
                 {"args", options_json(opt)}};
      write_file_atomic(dir + "/trainer_state.json", st.dump(2) + "\n");
    });
  };

  install_interrupt_handler();
  TrainResult result;
  std::vector<Batch> micro(G);
  double elapsed = 0.0;
  int done = 0;
  // On a terminal, one progress line (rate, ETA) redrawn between the log lines; logs alone elsewhere.
  Progress progress("training", opt.steps - start, "steps", log_enabled() && isatty(2));
  for (int step = start; step < opt.steps; step++) {
    auto t0 = std::chrono::steady_clock::now();
    int64_t n_step = 0, n_inputs = 0;
    for (int i = 0; i < G; i++) {
      data.train_batch(step, i, &micro[i]);
      n_step += micro[i].count_targets();
      n_inputs += (int64_t)micro[i].B * micro[i].T;
    }
    if (ranks > 1) {  // the global batch's counts
      double counts[2] = {static_cast<double>(n_step), static_cast<double>(n_inputs)};
      comm.allreduce_sum(std::span<double>(counts));
      n_step = static_cast<int64_t>(counts[0]);
      n_inputs = static_cast<int64_t>(counts[1]);
    }
    backend->zero_grads();
    for (int i = 0; i < G; i++) {
      double weight = n_step > 0 ? (double)micro[i].count_targets() * G_all / n_step : 0.0;
      const int mb = dist::global_micro(comm.rank(), G, i);
      if (opt.neftune_alpha > 0)
        backend->set_embedding_noise({opt.neftune_alpha, mix64(opt.seed, 0x4e454654ull + step, mb)});
      backend->set_lora_dropout(true, mix64(opt.seed, 0x4c6f5241ull + step, mb));
      if (ranks > 1 && i == G - 1 && !opt.no_overlap) backend->overlap_next_backward(comm);
      backend->accumulate(micro[i], weight, G_all);
    }
    backend->set_embedding_noise({});  // validation sees clean embeddings
    backend->set_lora_dropout(false, 0);
    if (ranks > 1) backend->reduce(comm);
    float lr = sched.at(step);
    const StepStats st = backend->update(G_all, lr, opt.clip);
    const bool finite = !st.skipped;
    if (!finite) skipped++;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    elapsed += dt;
    done++;
    tokens_seen += n_inputs;
    int completed = step + 1;
    json m = {{"step", completed},
              {"loss", st.loss},
              {"lr", lr},
              {"grad_norm", st.grad_norm},
              {"tokens_per_s", n_inputs / dt},
              {"step_time_s", dt}};
    if (n_step != n_inputs) m["target_tokens"] = n_step;
    if (!finite) m["skipped"] = true;
    bool last = completed == opt.steps;
    if (data.val_batches() > 0 && ((opt.eval_every > 0 && completed % opt.eval_every == 0) || last)) {
      float v = validation_loss(*backend, data, comm);
      if (std::isfinite(v)) {
        m["val_loss"] = v;
        result.val_loss = v;
      }
    }
    if (lead) {
      metrics << m.dump() << "\n";
      metrics.flush();
    }
    if (!finite)
      log_info("step %d: non-finite loss or gradient (loss %g, grad norm %g): update skipped", completed, st.loss,
               st.grad_norm);
    if (completed % opt.log_every == 0 || last || step == start) {
      double eta = elapsed / done * (opt.steps - completed);
      log_info("step %d/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | ETA %s%s", completed, opt.steps,
               st.loss, lr, st.grad_norm, n_inputs / dt, format_duration(eta).c_str(),
               m.contains("val_loss") ? (" | val loss " + std::to_string(m["val_loss"].get<float>())).c_str() : "");
    }
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f, %.0f tok/s", st.loss, n_inputs / dt);
    progress.update(completed - start, extra);
    result.steps_done = completed;
    result.last_loss = st.loss;
    int signal = interrupted() ? interrupt_signal() : 0;
    if (ranks > 1)  // any rank's Ctrl-C stops every rank after this step
      for (double s : dist::all_gather(comm, signal)) signal = signal ? signal : static_cast<int>(s);
    const bool stop = signal != 0;
    if ((opt.ckpt_every > 0 && completed % opt.ckpt_every == 0) || last || stop) save(completed);
    if (stop && !last) {
      const std::string msg =
          "train: interrupted; checkpoint at step " + std::to_string(completed) + " written; continue with --resume";
      if (ranks > 1) throw dist::CollectiveError(static_cast<ExitCode>(128 + signal), msg, lead);
      throw Error(static_cast<ExitCode>(128 + signal), msg);
    }
  }
  progress.end();
  if (start >= opt.steps) log_info("run already complete at step %d", start);
  if (profile_enabled()) std::fputs(profile_report().c_str(), stderr);
  return result;
}

// The tokenizer of a pre-training run: --tokenizer, else the model directory's, else the data
// directory's (data tokenize puts it there); empty if none.
static std::string tokenizer_path(const TrainOptions& opt, const std::string& weights_dir) {
  if (!opt.tokenizer.empty()) {
    if (!path_exists(opt.tokenizer)) bad_input("--tokenizer " + opt.tokenizer + ": no such file");
    return opt.tokenizer;
  }
  for (const std::string& dir : {weights_dir, opt.data})
    if (!dir.empty() && path_exists((fs::path(dir) / "tokenizer.json").string()))
      return (fs::path(dir) / "tokenizer.json").string();
  return "";
}

TrainResult run_training(const TrainOptions& opt, dist::Communicator* comm) {
  check_options(opt);  // before the model and shards are opened: a bad flag is named first
  TrainModel tm;
  tm.config = resolve_model_config(opt.model, &tm.weights_dir);
  std::string tok_path = tokenizer_path(opt, tm.weights_dir);
  std::optional<Tokenizer> tok;
  if (!tok_path.empty()) {
    tok = Tokenizer::load(tok_path);  // a file that is not a tokenizer is bad input naming it
    tm.tokenizer_json = is_directory(tok_path) ? tok->to_json() : read_file(tok_path);
    if (tok->vocab_size() > static_cast<size_t>(tm.config.vocab_size))
      bad_input(tok_path + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                " tokens, more than the model's vocab_size " + std::to_string(tm.config.vocab_size));
    // End (and, as in GPT-2, start) of text for generate and transformers' generate.
    if (tm.config.eos_token_id < 0 && tok->eos_id()) tm.config.eos_token_id = static_cast<int>(*tok->eos_id());
    if (tm.config.bos_token_id < 0) tm.config.bos_token_id = tm.config.eos_token_id;
  }
  PretrainBatches data(opt.data, tm.config.vocab_size, opt.seed, opt.batch, opt.seq, opt.eval_batches);
  if (tok) {
    std::string other = data.shard_with_other_tokenizer(tok->hash());
    if (!other.empty() && !opt.ignore_tokenizer_mismatch)
      bad_input(other + ": the shard was tokenized with another tokenizer than " + tok_path +
                " (pass --ignore-tokenizer-mismatch to train anyway)");
    if (!other.empty()) log_warn("%s: tokenized with another tokenizer than %s", other.c_str(), tok_path.c_str());
  }
  return train(opt, tm, data, comm);
}

}  // namespace mindllm
