// The ranks of a job and their collectives (DESIGN.md: dist): data-parallel training (train/dist)
// and data preparation across ranks (data/prepare_dist.cpp) share them. One interface,
// three engines: a single process (no peers), Open MPI (MPI_Allreduce on the CPU; built when
// CMake finds MPI) and NCCL for device buffers (train/dist/nccl.h; CUDA builds with NCCL and MPI).
// Never a home-made transport: launch, bootstrap and CPU collectives are Open MPI's.
//
// Failure model: a collective blocks until every rank joins it. An error that only one rank sees
// (a bad checkpoint on rank 0) must abort the job (abort(): MPI_Abort kills every rank); an
// error every rank raises at the same point (mismatched options, Ctrl-C) is a CollectiveError:
// one rank reports it, all shut down cleanly and exit with its code. A rank that dies (SIGKILL)
// is noticed by mpirun, which ends the job and names it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace mindllm::dist {

// A flat buffer of n elements cut into one contiguous slice per rank, in rank order, sizes
// differing by at most one (ZeRO-1's shards).
struct Slices {
  std::vector<int> count;      // per rank (MPI's int counts: at most 2^31-1 elements per rank)
  std::vector<size_t> offset;  // where each rank's slice starts
};
Slices even_slices(size_t n, int ranks);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string engine() const = 0;  // "single" | "mpi"
  // x := sum over ranks of x, in place, every rank getting the same bits. Spans longer than
  // bucket_floats go as several collectives of at most that many elements (flat-buffer slices).
  virtual void allreduce_sum(std::span<float> x) = 0;
  virtual void allreduce_sum(std::span<double> x) = 0;
  // root's bytes to every rank (same length on all).
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  virtual void barrier() = 0;
  // ZeRO-1 over the slices `s` of a flat buffer x (all ranks pass the same s):
  // x := every rank's slice of x, in place (each rank contributes its own slice);
  virtual void all_gather(std::span<float> x, const Slices& s) = 0;
  // root's full := every rank's `mine` at its slice; mine := root's full slice of this rank.
  virtual void gather(std::span<const float> mine, std::span<float> full, const Slices& s, int root) = 0;
  virtual void scatter(std::span<const float> full, std::span<float> mine, const Slices& s, int root) = 0;
  // Byte messages (data prepare's key exchange): out[r] goes to rank r (every rank passes size()
  // strings); returns what each rank sent to this one, indexed by source rank. Any sizes.
  virtual std::vector<std::string> all_to_all(const std::vector<std::string>& out) = 0;
  // Point to point, any size: a send is matched by the destination's recv from this rank.
  virtual void send(std::string_view bytes, int dest) = 0;
  virtual std::string recv(int source) = 0;
  // Overlapped reduction: starts x := sum over ranks of x (one collective; every rank starts the
  // same spans in the same order); poll() lets started ones progress; wait_all() completes them.
  virtual void start_allreduce_sum(std::span<float> x) = 0;
  // ZeRO-1's reduction of one bucket (MPI_Ireduce_scatter): `bucket` holds elements [at, at +
  // bucket.size()) of a flat buffer cut into the slices `s`; the sum over ranks of the part of it
  // in this rank's slice goes to `mine` (this rank's slice, s.count[rank()] elements) at the same
  // place. bucket and mine stay untouched until wait_all().
  virtual void start_reduce_scatter_sum(std::span<const float> bucket, size_t at, std::span<float> mine,
                                        const Slices& s) = 0;
  virtual void poll() = 0;
  virtual void wait_all() = 0;
  // Ends every rank of the job with exit code `code` (this process does not return).
  [[noreturn]] virtual void abort(int code) = 0;

  size_t bucket_floats = size_t(1) << 22;  // 16 MiB of fp32 per collective
};

// x := mean over ranks of x (sum, then x / size).
void allreduce_average(Communicator& c, std::span<float> x);
// Every rank's `v`, indexed by rank (one collective; exact for integers below 2^53).
std::vector<double> all_gather(Communicator& c, double v);
// Byte messages (all_to_all, send): a trivially copyable value appended; a message read as an array.
template <class T>
void append_bytes(std::string& msg, const T& v) {
  msg.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
std::vector<T> bytes_as(const std::string& msg) {
  std::vector<T> v(msg.size() / sizeof(T));
  if (!v.empty()) std::memcpy(static_cast<void*>(v.data()), msg.data(), v.size() * sizeof(T));
  return v;
}

// Every rank's bytes, indexed by rank.
std::vector<std::string> all_gather(Communicator& c, const std::string& mine);
// Broadcasts a string / a vector of floats from root (lengths first).
void broadcast(Communicator& c, std::string& s, int root);
void broadcast(Communicator& c, std::vector<float>& v, int root);

// The job this process belongs to: Open MPI's world when launched by mpirun/srun (and built with
// MPI; MPI_Init here, MPI_Finalize when the communicator is destroyed), else a single process.
// A multi-rank launch of a build without MPI is bad input (one line naming the rank count).
std::unique_ptr<Communicator> world(int* argc, char*** argv);
std::unique_ptr<Communicator> single_process();
// The rank count the launcher announced in the environment (1 if none).
int launched_ranks();
bool built_with_mpi();

// An error that every rank raises at the same point of the job; `report`: this rank prints it
// (exactly one rank does), the others exit quietly with the same code.
struct CollectiveError : Error {
  bool report;
  CollectiveError(ExitCode c, const std::string& msg, bool report_it) : Error(c, msg), report(report_it) {}
};

// Runs `step` on every rank and agrees on the outcome: when it threw on some rank, every rank
// throws the same CollectiveError (the lowest such rank's message as "rank R: ...", its exit
// code; rank 0 reports it), so no rank goes on alone. Collective.
void all_or_none(Communicator& c, const std::function<void()>& step);

}  // namespace mindllm::dist
