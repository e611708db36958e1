// Where a training step runs (train/trainer.cpp's loop is shared): the CPU model, the GPU model
// (--device cuda), and what a data-parallel job adds to a step (the gradient reduction across
// ranks, overlapped with the backward where the backend can).
#pragma once
#include <cstdint>
#include <memory>

#include "dist/communicator.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/batches.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace mindllm {

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

// The backend of --device (CPU: with ZeRO-1 when opt.zero, over comm's ranks; LoRA adapters when
// lora is not null).
std::unique_ptr<StepBackend> make_backend(const TrainOptions& o, Model& model, AdamW& optim, dist::Communicator& comm,
                                          LoraWeights* lora);

}  // namespace mindllm
