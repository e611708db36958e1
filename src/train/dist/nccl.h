// Sums of device (GPU) buffers across the ranks of a job with NCCL (ncclAllReduce), bootstrapped
// by an id that rank 0 broadcasts over the job's MPI communicator. One rank per GPU: each rank
// takes the GPU of its local rank on its node. Built with the CUDA backend when CMake finds NCCL
// and MPI (MINDLLM_NCCL); the CPU's collectives stay MPI's.
#pragma once
#include <cstddef>
#include <memory>

#include "dist/communicator.h"

namespace mindllm::dist {

class DeviceReducer {
 public:
  virtual ~DeviceReducer() = default;
  // x := sum over ranks of x, in place, on the device (in buckets of host.bucket_floats); queued
  // after the work already on the default stream, waited for before returning.
  virtual void allreduce_sum(float* device_x, size_t n) = 0;
};

bool built_with_nccl();

#if MINDLLM_NCCL
// cudaSetDevice(local rank % visible GPUs): before anything is allocated on the GPU.
void select_local_gpu();
// ncclCommInitRank over `host`'s ranks (collective).
std::unique_ptr<DeviceReducer> nccl_reducer(Communicator& host);
#endif

}  // namespace mindllm::dist
