#include "train/dist/nccl.h"

#if MINDLLM_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#endif

namespace mindllm::dist {

bool built_with_nccl() {
#if MINDLLM_NCCL
  return true;
#else
  return false;
#endif
}

#if MINDLLM_NCCL
namespace {

void check_nccl(const char* what, ncclResult_t r) {
  if (r != ncclSuccess) internal_error(std::string(what) + " failed: " + ncclGetErrorString(r));
}

void check_cuda(const char* what, cudaError_t e) {
  if (e != cudaSuccess) internal_error(std::string(what) + " failed: " + cudaGetErrorString(e));
}

class NcclReducer : public DeviceReducer {
 public:
  explicit NcclReducer(Communicator& host) : bucket_(host.bucket_floats) {
    ncclUniqueId id{};
    if (host.rank() == 0) check_nccl("ncclGetUniqueId", ncclGetUniqueId(&id));
    host.broadcast(std::as_writable_bytes(std::span<ncclUniqueId>(&id, 1)), 0);
    check_nccl("ncclCommInitRank", ncclCommInitRank(&comm_, host.size(), id, host.rank()));
  }
  ~NcclReducer() override { ncclCommDestroy(comm_); }
  void allreduce_sum(float* x, size_t n) override {
    const size_t bucket = std::max<size_t>(bucket_, 1);
    check_nccl("ncclGroupStart", ncclGroupStart());
    for (size_t o = 0; o < n; o += bucket)
      check_nccl("ncclAllReduce",
                 ncclAllReduce(x + o, x + o, std::min(bucket, n - o), ncclFloat, ncclSum, comm_, cudaStreamLegacy));
    check_nccl("ncclGroupEnd", ncclGroupEnd());
    check_cuda("cudaStreamSynchronize", cudaStreamSynchronize(cudaStreamLegacy));
  }

 private:
  ncclComm_t comm_ = nullptr;
  size_t bucket_;
};

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

}  // namespace

void select_local_gpu() {
  int n = 0;
  check_cuda("cudaGetDeviceCount", cudaGetDeviceCount(&n));
  if (n > 0) check_cuda("cudaSetDevice", cudaSetDevice(local_rank() % n));
}

std::unique_ptr<DeviceReducer> nccl_reducer(Communicator& host) { return std::make_unique<NcclReducer>(host); }
#endif

}  // namespace mindllm::dist
