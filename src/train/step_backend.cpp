#include "train/step_backend.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "train/dist/nccl.h"
#include "train/dist/overlap.h"
#include "train/dist/zero.h"
#include "train/train_options.h"
#if MINDLLM_CUDA
#include "model/cuda/cuda_model.h"
#endif

namespace mindllm {

namespace {

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
    if (zero_ && !overlapping_) start_buckets(c);  // --no-overlap: the same buckets, after the backward
    if (overlapping_) {
      overlap_->finish();
      model_.set_backward_hook({});
      overlapping_ = false;
    } else {
      c.allreduce_sum(std::span<float>(model_.grads()));
    }
    if (zero_)  // only this rank's slice is summed
      std::copy(zero_sum_.begin(), zero_sum_.end(), model_.grads().begin() + slices_.offset[c.rank()]);
    c.allreduce_sum(std::span<double>(&loss_sum_, 1));
  }
  bool overlap_next_backward(dist::Communicator& c) override {
    if (lora_) return false;  // LoRA's gradients: after the backward
    start_buckets(c);
    model_.set_backward_hook([this](int stage) { overlap_->stage_done(stage); });
    return true;
  }
  void set_lora_dropout(bool on, uint64_t seed) override {
    if (!lora_) return;
    lora_->dropout_on = on;
    lora_->dropout_seed = seed;
  }

 private:
  // The buckets' collectives, started as the backward finishes them (stage_done) or all at once
  // (finish): all-reduces, or with ZeRO-1 reduce-scatters into zero_sum_.
  void start_buckets(dist::Communicator& c) {
    if (!overlap_)
      overlap_ = std::make_unique<dist::OverlappedReduce>(model_.layout(), model_.config().n_layers, c.bucket_floats);
    std::span<float> g(model_.grads());
    if (zero_) {
      zero_sum_.resize(slices_.count[c.rank()]);
      overlap_->begin(c, [&c, g, this](size_t b, size_t e) {
        c.start_reduce_scatter_sum(g.subspan(b, e - b), b, zero_sum_, slices_);
      });
    } else {
      overlap_->begin(c, [&c, g](size_t b, size_t e) { c.start_allreduce_sum(g.subspan(b, e - b)); });
    }
    overlapping_ = true;
  }

  Model& model_;
  AdamW& optim_;
  LoraWeights* lora_;
  double loss_sum_ = 0.0;
  dist::Communicator* zero_;
  dist::Slices slices_;
  std::vector<float> zero_sum_;  // ZeRO-1: this rank's slice of the summed gradients
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

}  // namespace

std::unique_ptr<StepBackend> make_backend(const TrainOptions& o, Model& model, AdamW& optim, dist::Communicator& comm,
                                          LoraWeights* lora) {
#if MINDLLM_CUDA
  if (o.device == Device::cuda) {
#if MINDLLM_NCCL
    if (comm.engine() == "mpi") dist::select_local_gpu();  // one GPU per rank, before anything is allocated
#endif
    return std::make_unique<CudaBackend>(model, optim, o.adamw, o.batch, o.seq, precision_of(o), o.recompute,
                                         attention_impl_from_name(o.attention));
  }
#endif
  model.set_matmul_precision(precision_of(o));
  return std::make_unique<CpuBackend>(model, optim, o.zero ? &comm : nullptr, lora);
}

}  // namespace mindllm
