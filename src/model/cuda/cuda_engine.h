// The inference engine on the GPU: the CPU Engine's contract (model/engine.h: forward over a
// batch mixing prefill chunks and decode tokens of independent sequences, each entry's keys and
// values appended to its sequence, logits only of the wanted rows) with the K/V cache's blocks
// in one device pool (DeviceKvStorage; the cache's bookkeeping is KvCache's, on the host).
//
// The weights are uploaded once (fp32; with Precision::bf16 also the bf16 compute copy and bf16
// activations, as CudaModel). Every activation buffer is planned once for `max_tokens` rows in
// one cuda::Arena; a larger batch runs in pieces of max_tokens rows (in order: a piece's rows
// attend to the keys earlier pieces stored). Per forward only the batch's token ids, positions
// and block tables go up and the wanted rows' logits come down. The decoder block is
// model/decoder.h's over the shared forward ops (model/cuda/cuda_ops.h) plus paged attention
// (kernels/cuda/attention_paged.h). Built only with MINDLLM_CUDA.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/types.h"
#include "kernels/cuda/device.h"
#include "model/engine.h"
#include "model/model.h"

namespace mindllm {

// A K/V cache's blocks in device memory: capacity blocks allocated at once (the cache's budget).
class DeviceKvStorage : public KvStorage {
 public:
  DeviceKvStorage(int64_t capacity, size_t block_bytes);
  void grow(int64_t n_blocks, size_t block_bytes) override;
  uint8_t* block(int b) const override { return pool_.data() + (size_t)b * block_bytes_; }
  void copy_block(int dst, int src, size_t block_bytes) override;  // on the device
  bool on_host() const override { return false; }

 private:
  cuda::DeviceBuffer<uint8_t> pool_;
  int64_t capacity_;
  size_t block_bytes_;
};

class CudaEngine : public InferenceEngine {
 public:
  // The model must outlive the engine (its fp32 weights are read once, here). Bad input without a
  // usable GPU, for quantised weights, or when the buffers do not fit the GPU.
  CudaEngine(const Model& model, Precision precision, int max_tokens = 512);
  ~CudaEngine() override;

  // fp32 keys and values for fp32, bf16 for Precision::bf16.
  KvType kv_type() const override;
  // max_positions > 0: the device pool is sized by it (bad input when it does not fit).
  KvCache make_cache(int block_size, int64_t max_positions, KvType type) const override;
  void forward(KvCache& cache, std::span<const BatchEntry> batch, std::vector<float>& logits) override;

 private:
  template <typename A>
  struct PagedOps;
  template <typename A>
  void run_piece(const KvCache& cache, int r0, int r1, std::vector<float>& logits);
  template <typename T>
  T* at(size_t off) const {
    return off == kAbsent ? nullptr : arena_.at<T>(off);
  }

  Precision precision_;
  int max_tokens_;
  cuda::Arena arena_;
  size_t params_ = 0, params_bf16_ = kAbsent, x_ = 0, xn_ = 0, qkv_ = 0, att_ = 0, h_ = 0, n2_ = 0, fc_ = 0, act_ = 0,
         r_ = 0, gath_ = 0, logits_ = 0, n1m_ = 0, n1r_ = 0, n2m_ = 0, n2r_ = 0;
  BatchPlan plan_;
  std::vector<int> row_seq_;              // per row of the batch: its index in plan_.seqs
  std::vector<int32_t> meta_;             // a piece's tokens | positions | table offsets | block tables (host)
  cuda::DeviceBuffer<int32_t> meta_dev_;  // the same on the device (grows, never per call once large enough)
};

}  // namespace mindllm
