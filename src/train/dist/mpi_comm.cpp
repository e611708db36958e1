#include "train/dist/mpi_comm.h"

#if MINDLLM_MPI
#include <mpi.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace mindllm::dist {

namespace {

[[noreturn]] void mpi_failed(const char* what, int rc) {
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  internal_error(std::string(what) + " failed: " + std::string(msg, len));
}

void check(const char* what, int rc) {
  if (rc != MPI_SUCCESS) mpi_failed(what, rc);
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv) {
    int provided = 0;
    check("MPI_Init_thread", MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    check("MPI_Comm_dup", MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    // Errors come back as codes (and become exceptions) instead of killing the process silently.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string engine() const override { return "mpi"; }
  void allreduce_sum(std::span<float> x) override { reduce(x.data(), x.size(), MPI_FLOAT); }
  void allreduce_sum(std::span<double> x) override { reduce(x.data(), x.size(), MPI_DOUBLE); }
  void broadcast(std::span<std::byte> data, int root) override {
    constexpr size_t kMax = size_t(1) << 30;
    for (size_t o = 0; o < data.size(); o += kMax) {
      int n = static_cast<int>(std::min(kMax, data.size() - o));
      check("MPI_Bcast", MPI_Bcast(data.data() + o, n, MPI_BYTE, root, comm_));
    }
  }
  void barrier() override { check("MPI_Barrier", MPI_Barrier(comm_)); }
  void reduce_scatter_sum(std::span<const float> x, std::span<float> out, const Slices& s) override {
    check("MPI_Reduce_scatter", MPI_Reduce_scatter(x.data(), out.data(), s.count.data(), MPI_FLOAT, MPI_SUM, comm_));
  }
  void all_gather(std::span<float> x, const Slices& s) override {
    if (s.offset.back() <= static_cast<size_t>(std::numeric_limits<int>::max())) {
      std::vector<int> displs(s.offset.begin(), s.offset.end());
      check("MPI_Allgatherv",
            MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, x.data(), s.count.data(), displs.data(), MPI_FLOAT, comm_));
      return;
    }
    for (int r = 0; r < size_; r++)  // offsets past MPI's int displacements: one broadcast per slice
      check("MPI_Bcast", MPI_Bcast(x.data() + s.offset[r], s.count[r], MPI_FLOAT, r, comm_));
  }
  // Point to point (only at start and checkpoints): no int displacements.
  void gather(std::span<const float> mine, std::span<float> full, const Slices& s, int root) override {
    if (rank_ != root) {
      check("MPI_Send", MPI_Send(mine.data(), s.count[rank_], MPI_FLOAT, root, 0, comm_));
      return;
    }
    std::copy(mine.begin(), mine.end(), full.begin() + s.offset[root]);
    for (int r = 0; r < size_; r++)
      if (r != root)
        check("MPI_Recv", MPI_Recv(full.data() + s.offset[r], s.count[r], MPI_FLOAT, r, 0, comm_, MPI_STATUS_IGNORE));
  }
  void scatter(std::span<const float> full, std::span<float> mine, const Slices& s, int root) override {
    if (rank_ != root) {
      check("MPI_Recv", MPI_Recv(mine.data(), s.count[rank_], MPI_FLOAT, root, 0, comm_, MPI_STATUS_IGNORE));
      return;
    }
    for (int r = 0; r < size_; r++)
      if (r != root) check("MPI_Send", MPI_Send(full.data() + s.offset[r], s.count[r], MPI_FLOAT, r, 0, comm_));
    std::copy(full.begin() + s.offset[root], full.begin() + s.offset[root] + s.count[root], mine.begin());
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps the compiler's promise
  }

 private:
  // In buckets of at most bucket_floats elements (and below INT_MAX for MPI's int counts).
  template <typename T>
  void reduce(T* x, size_t n, MPI_Datatype type) {
    if (size_ == 1) return;
    const size_t bucket = std::clamp<size_t>(bucket_floats, 1, std::numeric_limits<int>::max());
    for (size_t o = 0; o < n; o += bucket) {
      int count = static_cast<int>(std::min(bucket, n - o));
      check("MPI_Allreduce", MPI_Allreduce(MPI_IN_PLACE, x + o, count, type, MPI_SUM, comm_));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> mpi_world(int* argc, char*** argv) {
  return std::make_unique<MpiCommunicator>(argc, argv);
}

}  // namespace mindllm::dist
#endif  // MINDLLM_MPI
