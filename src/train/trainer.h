// The training loop, over any BatchSource (train/batches.h): micro-batches with gradient
// accumulation, the loss averaged over the target tokens of the whole optimizer step (so batches
// with loss masks weigh by what they count), AdamW with clipping and a schedule, validation,
// metrics.jsonl, atomic checkpoints, Ctrl-C (checkpoint, then exit 128 + signal) and exact
// resume. On the CPU, or on a GPU (--device cuda, builds with MINDLLM_CUDA) with the same data
// order, metrics and checkpoints. Messages go through core/log.h.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/lora.h"
#include "train/batches.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace mindllm {

namespace dist {
class Communicator;
}

struct TrainOptions {
  std::string model;  // preset, config.json or model directory (weights loaded from it)
  std::string data;   // shard directory (train-*.bin, val-*.bin)
  std::string out;    // run directory
  std::string
      tokenizer;  // optional tokenizer.json copied into checkpoints (default: the model's, else <data>/tokenizer.json)
  bool ignore_tokenizer_mismatch = false;  // train although the shards' header names another tokenizer
  int steps = 100, batch = 8, seq = 256, grad_accum = 1;
  Schedule schedule;
  AdamWConfig adamw;
  float clip = 1.0f;  // 0: no clipping
  uint64_t seed = 1234;
  int threads = 0;  // 0: all cores
  Device device = Device::cpu;
  std::optional<Precision> precision;  // default: bf16 on cuda, fp32 on the CPU
  bool recompute = false;              // cuda: recompute the MLP intermediates in the backward (less memory)
  std::string attention = "flash";     // cuda bf16: flash (mindllm's kernels) | cudnn (cuDNN's fused attention)
  int ckpt_every = 0, eval_every = 0, eval_batches = 20, log_every = 10, keep_ckpts = 0;
  bool resume = false;
  float neftune_alpha = 0.0f;  // > 0: NEFTune noise on the input embeddings while training (model/neftune.h)
  int zero = 0;                // 1: ZeRO-1, AdamW state sharded across the ranks of a data-parallel job (CPU)
  bool no_overlap = false;     // data parallel: reduce the gradients after the backward, not during it
  double bucket_mb = 16.0;     // data parallel: MiB of fp32 gradients per collective
  LoraConfig lora;             // rank > 0: train LoRA adapters on a frozen base (model/lora.h), CPU only
};

struct TrainResult {
  int steps_done = 0;
  float last_loss = 0.0f, val_loss = -1.0f;
};

// The model a run starts from: its config, the directory of its weights (empty: initialised from
// --seed) and the tokenizer.json text stored in its checkpoints (empty: none).
struct TrainModel {
  ModelConfig config;
  std::string weights_dir;
  std::string tokenizer_json;
  std::vector<std::pair<std::string, std::string>> files;  // more files for every checkpoint: (name, content)
};

// The LoRA options (if on) against the model: CPU only, targets the family has, rank, alpha and
// dropout in range; bad input otherwise. Returns the adapters' layout (empty when LoRA is off).
std::optional<LoraLayout> check_lora(const TrainOptions& opt, const ModelConfig& c);

// Trains `model` on `data` into opt.out (opt.model and opt.data are not read). With a
// communicator of N > 1 ranks (train/dist): data-parallel, each rank reading its slice of every
// global batch of N x grad_accum micro-batches (dist/rank_batches.h), gradients summed across
// ranks, rank 0 alone logging and writing metrics and checkpoints (docs/distributed.md).
TrainResult train(const TrainOptions& opt, const TrainModel& model, BatchSource& data,
                  dist::Communicator* comm = nullptr);

// Pre-training: opt.model, the token shards of opt.data (PretrainBatches), the tokenizer of
// --tokenizer, else of the model directory, else of the data directory: validated, its hash
// compared with the shards' headers, its end-of-text id written as eos/bos_token_id.
TrainResult run_training(const TrainOptions& opt, dist::Communicator* comm = nullptr);

}  // namespace mindllm
