// The gradient reduction overlapped with the backward (docs/distributed.md): the flat gradient
// buffer in the buckets Communicator::allreduce_sum uses (bucket_floats from offset 0, so the sums
// are those of the reduction after the backward, bit for bit), each bucket's MPI_Iallreduce (or
// ZeRO-1's MPI_Ireduce_scatter) started as soon as the last micro-batch's backward has finished
// every parameter in it. Layers
// run backward last to first, so the buckets start from the end of the buffer.
#pragma once
#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "model/params.h"
#include "dist/communicator.h"

namespace mindllm::dist {

class OverlappedReduce {
 public:
  // Buckets of `bucket_floats` over the layout's buffer, in the order they become ready.
  OverlappedReduce(const ParamLayout& layout, int n_layers, size_t bucket_floats);
  // Launches the collective of elements [begin, end) of the layout's buffer: an all-reduce, or
  // ZeRO-1's reduce-scatter (Communicator::start_reduce_scatter_sum).
  using StartBucket = std::function<void(size_t begin, size_t end)>;
  // Before the backward that finishes the gradients.
  void begin(Communicator& c, StartBucket start);
  // The backward finished `stage` (Model::set_backward_hook): starts the buckets now complete.
  void stage_done(int stage);
  // Starts what is left (a backward with nothing to count calls no hook) and waits for all.
  void finish();
  size_t buckets() const { return order_.size(); }

 private:
  struct Bucket {
    size_t begin, end;
    int ready;  // the stage after which every gradient in it is final
  };
  std::vector<Bucket> order_;  // by ready stage, then from the end of the buffer
  size_t next_ = 0;
  Communicator* comm_ = nullptr;
  StartBucket start_;
};

}  // namespace mindllm::dist
