// The training loop: micro-batches with gradient accumulation, AdamW with clipping and a
// schedule, validation, metrics.jsonl, atomic checkpoints and exact resume. On the CPU, or on a
// GPU (--device cuda, builds with MINDLLM_CUDA) with the same data order, metrics and checkpoints.
#pragma once
#include <cstdint>
#include <string>

#include "train/optimizer.h"
#include "train/schedule.h"

namespace mindllm {

struct TrainOptions {
  std::string model;      // preset, config.json or model directory (weights loaded from it)
  std::string data;       // shard directory (train-*.bin, val-*.bin)
  std::string out;        // run directory
  std::string tokenizer;  // optional tokenizer.json copied into checkpoints (default: <data>/tokenizer.json)
  int steps = 100, batch = 8, seq = 256, grad_accum = 1;
  Schedule schedule;
  AdamWConfig adamw;
  float clip = 1.0f;  // 0: no clipping
  uint64_t seed = 1234;
  int threads = 0;    // 0: all cores
  std::string device = "cpu";  // cpu | cuda
  std::string precision;       // bf16 | fp32; default: bf16 on cuda, fp32 on the CPU
  bool recompute = false;      // cuda: recompute the MLP intermediates in the backward (less memory)
  std::string attention = "flash";  // cuda bf16: flash (mindllm's kernels) | cudnn (cuDNN's fused attention)
  int ckpt_every = 0, eval_every = 0, eval_batches = 20, log_every = 10, keep_ckpts = 0;
  bool resume = false;
};

struct TrainResult {
  int steps_done = 0;
  float last_loss = 0.0f, val_loss = -1.0f;
};

TrainResult run_training(const TrainOptions& opt);

}  // namespace mindllm
