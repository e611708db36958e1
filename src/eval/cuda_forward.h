// Whole-sequence forwards on the GPU model (model/cuda/cuda_model.h) with the logits brought to the
// host: the one device path of `select score --device cuda` (sft/select_score.h) and of
// `eval --device cuda` (eval/scoring.h). A forward takes a few sequences right-padded to the
// longest ([B, T] tokens; causal attention, so padding changes no earlier row) and gives the logits
// of every position. There is no KV cache here: nothing is kept between forwards (a shared
// few-shot prefix is computed again for every sequence). Generation on the GPU runs on the
// inference engine with its device K/V cache instead (model/cuda/cuda_engine.h; eval/scoring.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/engine.h"
#include "model/model.h"

namespace mindllm {
class CudaModel;
}

namespace mindllm::eval {

using mindllm::check_cuda_device;  // model/engine.h

class CudaForward {
 public:
  // The model's weights are uploaded (fp32; bf16: the GPU model's mixed precision, issue 7).
  // max_batch x max_length: the shape planned at once (0: at the first forward). A forward larger
  // than the plan plans again (and uploads the weights again): give the largest shape when known.
  // Bad input without a usable GPU (check_cuda_device).
  CudaForward(const Model& model, bool bf16, int max_batch = 0, int max_length = 0);
  ~CudaForward();

  // One forward over seqs (B >= 1 sequences, each non-empty), right-padded to the longest.
  void forward(std::span<const std::span<const int32_t>> seqs);
  // The logits [vocab] at position t of sequence b of the last forward (predicting token t + 1).
  const float* logits(int b, int t) const { return logits_.data() + ((size_t)b * T_ + t) * vocab_; }
  // Tokens run through the decoder so far (padding included).
  int64_t tokens_computed() const { return tokens_; }
  bool bf16() const { return bf16_; }

 private:
  void plan(int max_batch, int max_length);

  const Model& model_;
  bool bf16_;
  std::unique_ptr<CudaModel> gpu_;
  int max_batch_ = 0, max_length_ = 0, T_ = 0, vocab_ = 0;
  int64_t tokens_ = 0;
  std::vector<int32_t> tokens_buf_;
  std::vector<float> logits_;
};

}  // namespace mindllm::eval
