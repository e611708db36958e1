// A data-parallel rank's slice of each global batch. With N ranks and --grad-accum A, a global
// batch (one optimizer step) is N x A micro-batches, numbered as one process with --grad-accum
// N x A numbers them: rank r takes micro-batches r*A .. r*A + A-1 of the step, so the job reads
// exactly the data order of that single process (and a checkpoint resumes with any N' x A' =
// N x A). Validation: rank r takes the inner source's batches i with i mod N = r.
#pragma once
#include "train/batches.h"

namespace mindllm::dist {

// The micro-batch of the whole step that rank `rank` reads as its `micro`-th (A = grad_accum).
inline int global_micro(int rank, int grad_accum, int micro) { return rank * grad_accum + micro; }

class RankBatches : public BatchSource {
 public:
  RankBatches(BatchSource& inner, int rank, int ranks, int grad_accum)
      : inner_(inner), rank_(rank), ranks_(ranks), grad_accum_(grad_accum) {}
  void train_batch(int step, int micro, Batch* out) override {
    inner_.train_batch(step, global_micro(rank_, grad_accum_, micro), out);
  }
  int val_batches() const override {
    int n = inner_.val_batches();
    return n > rank_ ? (n - rank_ + ranks_ - 1) / ranks_ : 0;
  }
  void val_batch(int i, Batch* out) override { inner_.val_batch(i * ranks_ + rank_, out); }
  nlohmann::json position(int next_step) const override { return inner_.position(next_step); }
  std::string describe() const override { return inner_.describe(); }
  nlohmann::json manifest() const override { return inner_.manifest(); }

 private:
  BatchSource& inner_;
  int rank_, ranks_, grad_accum_;
};

}  // namespace mindllm::dist
