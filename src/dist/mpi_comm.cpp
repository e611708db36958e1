#include "dist/mpi_comm.h"

#if MINDLLM_MPI
#include <mpi.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <string>
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
  // Rounds of at most 1 GiB in all per rank (MPI's int counts and displacements).
  std::vector<std::string> all_to_all(const std::vector<std::string>& out) override {
    const size_t n = static_cast<size_t>(size_);
    std::vector<uint64_t> send_n(n), recv_n(n);
    uint64_t largest = 0;
    for (size_t r = 0; r < n; r++) largest = std::max<uint64_t>(largest, send_n[r] = out[r].size());
    check("MPI_Alltoall", MPI_Alltoall(send_n.data(), 1, MPI_UINT64_T, recv_n.data(), 1, MPI_UINT64_T, comm_));
    check("MPI_Allreduce", MPI_Allreduce(MPI_IN_PLACE, &largest, 1, MPI_UINT64_T, MPI_MAX, comm_));
    std::vector<std::string> in(n);
    for (size_t r = 0; r < n; r++) in[r].resize(recv_n[r]);
    const uint64_t chunk = std::max<uint64_t>(1, (uint64_t(1) << 30) / n);
    std::vector<int> sc(n), sd(n), rc(n), rd(n);
    std::string sbuf, rbuf;
    for (uint64_t at = 0; at < largest; at += chunk) {
      sbuf.clear();
      int stotal = 0, rtotal = 0;
      for (size_t r = 0; r < n; r++) {
        sc[r] = static_cast<int>(send_n[r] > at ? std::min(chunk, send_n[r] - at) : 0);
        rc[r] = static_cast<int>(recv_n[r] > at ? std::min(chunk, recv_n[r] - at) : 0);
        sd[r] = stotal, rd[r] = rtotal;
        stotal += sc[r], rtotal += rc[r];
        sbuf.append(out[r], std::min<uint64_t>(at, send_n[r]), static_cast<size_t>(sc[r]));
      }
      rbuf.resize(static_cast<size_t>(rtotal));
      check("MPI_Alltoallv", MPI_Alltoallv(sbuf.data(), sc.data(), sd.data(), MPI_BYTE, rbuf.data(), rc.data(),
                                           rd.data(), MPI_BYTE, comm_));
      for (size_t r = 0; r < n; r++)
        if (rc[r] > 0) std::copy_n(rbuf.data() + rd[r], rc[r], in[r].data() + at);
    }
    return in;
  }
  void send(std::string_view bytes, int dest) override {
    uint64_t len = bytes.size();
    check("MPI_Send", MPI_Send(&len, 1, MPI_UINT64_T, dest, kBytesTag, comm_));
    for (uint64_t o = 0; o < len; o += kChunk) {
      int k = static_cast<int>(std::min<uint64_t>(kChunk, len - o));
      check("MPI_Send", MPI_Send(bytes.data() + o, k, MPI_BYTE, dest, kBytesTag, comm_));
    }
  }
  std::string recv(int source) override {
    uint64_t len = 0;
    check("MPI_Recv", MPI_Recv(&len, 1, MPI_UINT64_T, source, kBytesTag, comm_, MPI_STATUS_IGNORE));
    std::string s(len, '\0');
    for (uint64_t o = 0; o < len; o += kChunk) {
      int k = static_cast<int>(std::min<uint64_t>(kChunk, len - o));
      check("MPI_Recv", MPI_Recv(s.data() + o, k, MPI_BYTE, source, kBytesTag, comm_, MPI_STATUS_IGNORE));
    }
    return s;
  }
  void start_allreduce_sum(std::span<float> x) override {
    if (size_ == 1 || x.empty()) return;
    if (x.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
      internal_error("start_allreduce_sum: a bucket of " + std::to_string(x.size()) +
                     " floats is over MPI's int count");
    pending_.emplace_back();
    check("MPI_Iallreduce", MPI_Iallreduce(MPI_IN_PLACE, x.data(), static_cast<int>(x.size()), MPI_FLOAT, MPI_SUM,
                                           comm_, &pending_.back()));
  }
  void start_reduce_scatter_sum(std::span<const float> bucket, size_t at, std::span<float> mine,
                                const Slices& s) override {
    if (bucket.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
      internal_error("start_reduce_scatter_sum: a bucket of " + std::to_string(bucket.size()) +
                     " floats is over MPI's int count");
    std::vector<int>& counts = counts_.emplace_back(size_);  // each rank's part of the bucket
    const size_t end = at + bucket.size();
    for (int r = 0; r < size_; r++) {
      const size_t lo = std::max(at, s.offset[r]), hi = std::min(end, s.offset[r] + s.count[r]);
      counts[r] = hi > lo ? static_cast<int>(hi - lo) : 0;
    }
    const size_t mine_at = counts[rank_] > 0 ? std::max(at, s.offset[rank_]) - s.offset[rank_] : 0;
    pending_.emplace_back();
    check("MPI_Ireduce_scatter", MPI_Ireduce_scatter(bucket.data(), mine.data() + mine_at, counts.data(), MPI_FLOAT,
                                                     MPI_SUM, comm_, &pending_.back()));
  }
  void poll() override {
    int done = 0;
    if (!pending_.empty())
      check("MPI_Testall", MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE));
  }
  void wait_all() override {
    if (pending_.empty()) return;
    check("MPI_Waitall", MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE));
    pending_.clear();
    counts_.clear();
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

  static constexpr int kBytesTag = 7;
  static constexpr uint64_t kChunk = uint64_t(1) << 30;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_;     // started Iallreduces and Ireduce_scatters, completed by wait_all()
  std::deque<std::vector<int>> counts_;  // the Ireduce_scatters' counts, which MPI reads until then
};

}  // namespace

std::unique_ptr<Communicator> mpi_world(int* argc, char*** argv) {
  return std::make_unique<MpiCommunicator>(argc, argv);
}

}  // namespace mindllm::dist
#endif  // MINDLLM_MPI
