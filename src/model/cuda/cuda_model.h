// The decoder on the GPU: Model::forward/backward (model/model.h) op for op over the cuda::
// kernels, plus the AdamW step, all in one cuda::Arena planned before the first step (no
// allocation in the step loop). Built only with MINDLLM_CUDA.
//
// Mixed precision (Precision::bf16, issue 7): fp32 master weights, gradients and AdamW moments;
// a bf16 compute copy of the weights (written by the AdamW kernel in the same pass); bf16
// activations; fp32 norm statistics, attention statistics and losses. Precision::fp32 runs
// every op in fp32 and matches the CPU model to ~1e-5 (the tests' reference).
//
// Attention: in bf16 with head dims the flash kernels take (64, 128), kernels/cuda/flash_attention
// (a logsumexp per row saved, no T x T matrix: what large shapes need); otherwise the simple
// kernels of kernels/cuda/attention, which keep the [B, H, T, T] fp32 probabilities per layer.
//
// Weights, gradients and moments use the CPU model's flat layout (model/params.h), so they move
// between the two as whole buffers and checkpoints are the same files on either device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cuda/device.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/neftune.h"
#include "model/params.h"

namespace mindllm {

// The bf16 attention kernels: mindllm's flash kernels (kernels/cuda/flash_attention.h, head dims 64
// and 128) or cuDNN's fused attention (kernels/cuda/cudnn_attention.h; needs cuDNN at run time).
// fp32 always uses the simple kernels of kernels/cuda/attention.h.
enum class AttentionImpl { flash, cudnn };
// "flash" or "cudnn" (the --attention flag); anything else is bad input.
AttentionImpl attention_impl_from_name(const std::string& name);

struct CudaStepResult {
  float loss = 0.0f;       // mean of the micro-batch mean losses
  double grad_norm = 0.0;  // global L2 norm before clipping
  bool skipped = false;    // loss or norm not finite: no update (as the CPU trainer)
};

class CudaModel {
 public:
  // Plans and allocates every buffer for micro-batches of up to max_batch x seq tokens. `spans`
  // cut the flat buffer for AdamW (with decay flags; train/optimizer.h) and are uploaded once.
  // recompute_mlp: the MLP's intermediates (the up/gate projection and the activation, the
  // largest activations: about half of them for LLaMA shapes) live in one buffer shared by all
  // layers and are recomputed from the saved MLP input in the backward (one extra GEMM per layer,
  // same results to the bit).
  // attention: cudnn is refused (bad_input, with the reason) in fp32, without cuDNN, or for a shape
  // cuDNN has no engine for.
  CudaModel(const ModelConfig& cfg, int max_batch, int seq, Precision precision,
            const std::vector<cpu::AdamWSpan>& spans, bool recompute_mlp = false,
            AttentionImpl attention = AttentionImpl::flash);

  // The bytes that constructor would allocate in its one cudaMalloc (host arithmetic: no GPU
  // needed), e.g. to check that a shape fits a card before renting one. The CUDA context and
  // cuBLASLt's 32 MiB workspace come on top (together ~0.5-1 GiB).
  static size_t planned_bytes(const ModelConfig& cfg, int max_batch, int seq, Precision precision, size_t n_spans,
                              bool recompute_mlp = false, AttentionImpl attention = AttentionImpl::flash);

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  Precision precision() const { return precision_; }
  bool flash_attention() const { return flash_; }  // a logsumexp per row, no T x T matrix
  AttentionImpl attention_impl() const { return cudnn_ ? AttentionImpl::cudnn : AttentionImpl::flash; }
  bool recompute_mlp() const { return recompute_mlp_; }
  size_t arena_bytes() const { return arena_.bytes(); }

  // Host <-> device copies of the flat buffers (layout().total floats each); each waits.
  void upload_params(const std::vector<float>& params);  // also refreshes the bf16 copy
  void download_params(std::vector<float>& params) const;
  void download_grads(std::vector<float>& grads) const;
  float* device_grads() const { return at<float>(grads_); }  // the flat gradient buffer (data-parallel sums)
  void upload_optimizer(const std::vector<float>& m, const std::vector<float>& v, int steps);
  void download_optimizer(std::vector<float>& m, std::vector<float>& v) const;
  int optimizer_steps() const { return adam_steps_; }

  // Zeroes the gradients and the step's loss sum.
  void zero_grads();
  // Queues the forward pass over host tokens[B*T] (B <= max_batch, T <= seq); with targets
  // (< 0 ignored) loss_weight x the batch's mean loss is added to the step's loss sum on the device.
  // positions: packed rows, as Model::forward (null: 0..T-1 in every row).
  void forward(const int32_t* tokens, const int32_t* targets, int B, int T, double loss_weight = 1.0,
               const int32_t* positions = nullptr);
  // NEFTune noise on the input embeddings of the following forward passes with targets (off: {}):
  // the values the CPU model adds (model/neftune.h), made on the host.
  void set_embedding_noise(const EmbeddingNoise& e) { noise_ = e; }
  // Queues dL/dparams += for the last forward with targets, L = loss_scale * mean loss.
  void backward(float loss_scale = 1.0f);
  // The step's loss sum (waits).
  double loss_sum() const;
  // Forward with targets alone; returns its mean loss (waits). Resets the step's loss sum.
  float loss(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* positions = nullptr);
  // Gradient norm, clip factor and AdamW update on the device (hp.step is this model's own
  // count), then one wait for the step's loss and norm. The loss is loss_sum() / grad_accum.
  CudaStepResult step(const cpu::AdamWParams& hp, float clip, int grad_accum);
  // The logits [B*T, V] of the last forward, as floats (waits).
  std::vector<float> download_logits() const;

 private:
  struct LayerBufs {
    // probs: the attention probabilities [B, H, T, T], or with flash attention the logsumexp [B, H, T]
    size_t x_norm, n1_mean, n1_rstd, qkv, probs, att, r1, h, n2, n2_mean, n2_rstd, fc, act, r2;
  };
  // Step scalars, one device struct: downloaded with one copy at the end of a step.
  struct Scalars {
    double loss_sum, sum_sq;
    float clip_scale;
  };

  // Checks the shape and plans the arena; allocates nothing (the public constructor does).
  CudaModel(const ModelConfig& cfg, int max_batch, int seq, Precision precision, size_t n_spans, bool recompute_mlp,
            AttentionImpl attention);
  void plan(int max_batch, int seq);
  template <typename T>
  T* at(size_t offset) const {
    return offset == kAbsent ? nullptr : arena_.at<T>(offset);
  }
  template <typename A>
  const A* weights() const;
  Scalars* scalars() const { return at<Scalars>(scalars_); }
  const int32_t* positions() const { return packed_ ? at<int32_t>(positions_) : nullptr; }  // device, or null
  void check_batch(const int32_t* tokens, const int32_t* targets, int B, int T);

  template <typename A>
  struct Ops;  // the decoder's Ops (model/decoder.h) on this model
  template <typename A>
  LayerActs<A> layer_acts(int l) const;
  template <typename A>
  void forward_t(bool with_targets, double loss_weight);
  template <typename A>
  void backward_t(float loss_scale);
  template <typename A>
  void attend(int l, A* att, const A* qkv, float* stats);  // the attention op of layer l, flash or simple
  template <typename A>
  void attend_backward(int l, A* dqkv, const A* d_att, const A* qkv, const A* att, const float* stats);

  ModelConfig cfg_;
  ParamLayout layout_;
  Precision precision_;
  bool flash_ = false, cudnn_ = false, recompute_mlp_ = false;
  int max_batch_ = 0, seq_ = 0;
  EmbeddingNoise noise_;
  int B_ = 0, T_ = 0, n_targets_ = 0;  // the last forward's shape and counted targets
  bool packed_ = false;                // the last forward had position ids (positions_, seg_start_)
  int adam_steps_ = 0;
  size_t n_spans_ = 0;

  cuda::Arena arena_;
  size_t params_ = 0, grads_ = 0, m_ = 0, v_ = 0, params_bf16_ = kAbsent, spans_ = 0, tokens_ = 0, targets_ = 0,
         positions_ = 0, seg_start_ = 0, scalars_ = 0;
  std::vector<size_t> res_;  // residual stream: input of each layer, then the output
  std::vector<LayerBufs> layers_;
  size_t lnf_ = 0, lnf_mean_ = 0, lnf_rstd_ = 0, logits_ = 0, losses_ = 0;
  // d_scores_: the simple backward's [B, H, T, T] scratch, or flash's delta [B, H, T]
  size_t d_res_ = 0, d_h_ = 0, d_tmp_ = 0, d_r_ = 0, d_lnf_ = 0, d_qkv_ = 0, d_att_ = 0, d_fc_ = 0, d_act_ = 0,
         d_scores_ = 0;
};

}  // namespace mindllm
