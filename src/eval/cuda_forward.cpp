#include "eval/cuda_forward.h"

#include <algorithm>

#include "core/error.h"
#if MINDLLM_CUDA
#include "kernels/cuda/device.h"
#include "model/cuda/cuda_model.h"
#else
namespace mindllm {
class CudaModel {};  // no GPU model in this build: the constructor refuses before making one
}  // namespace mindllm
#endif

namespace mindllm::eval {

CudaForward::CudaForward(const Model& model, bool bf16, int max_batch, int max_length)
    : model_(model), bf16_(bf16), vocab_(model.config().vocab_size) {
  check_cuda_device();
  if (max_batch > 0 && max_length > 0) plan(max_batch, max_length);
}

CudaForward::~CudaForward() = default;

void CudaForward::plan(int max_batch, int max_length) {
#if MINDLLM_CUDA
  gpu_.reset();  // the old arena goes first: both together may not fit
  gpu_ = std::make_unique<CudaModel>(model_.config(), max_batch, max_length, bf16_ ? Precision::bf16 : Precision::fp32,
                                     std::vector<cpu::AdamWSpan>{});
  gpu_->upload_params(model_.params());
  max_batch_ = max_batch, max_length_ = max_length;
#endif
}

void CudaForward::forward(std::span<const std::span<const int32_t>> seqs) {
  MINDLLM_CHECK(!seqs.empty(), "CudaForward: no sequence");
  const int B = static_cast<int>(seqs.size());
  int T = 1;
  for (auto s : seqs) {
    MINDLLM_CHECK(!s.empty(), "CudaForward: an empty sequence");
    T = std::max(T, static_cast<int>(s.size()));
  }
  if (B > max_batch_ || T > max_length_) {
    // Grow the plan: the longest length rounded up to a power of two (a generation growing by a
    // token per forward plans again log2(length) times), within the model's positions.
    int len = std::max(T, max_length_), p = 1;
    while (p < len) p *= 2;
    if (model_.config().learned_positions) p = std::min(p, std::max(len, model_.config().max_positions));
    plan(std::max(B, max_batch_), p);
  }
#if MINDLLM_CUDA
  tokens_buf_.assign((size_t)B * T, 0);
  for (int b = 0; b < B; b++) std::copy(seqs[b].begin(), seqs[b].end(), tokens_buf_.begin() + (size_t)b * T);
  gpu_->forward(tokens_buf_.data(), nullptr, B, T);
  logits_ = gpu_->download_logits();
  T_ = T;
  tokens_ += (int64_t)B * T;
#endif
}

}  // namespace mindllm::eval
