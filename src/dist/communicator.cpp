#include "dist/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <cstring>

#include "dist/mpi_comm.h"

namespace mindllm::dist {

namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string engine() const override { return "single"; }
  void allreduce_sum(std::span<float>) override {}
  void allreduce_sum(std::span<double>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  void all_gather(std::span<float>, const Slices&) override {}
  void gather(std::span<const float> mine, std::span<float> full, const Slices&, int) override {
    std::copy(mine.begin(), mine.end(), full.begin());
  }
  void scatter(std::span<const float> full, std::span<float> mine, const Slices&, int) override {
    std::copy(full.begin(), full.begin() + mine.size(), mine.begin());
  }
  std::vector<std::string> all_to_all(const std::vector<std::string>& out) override { return out; }
  void send(std::string_view, int) override { internal_error("send: a single process has no peer"); }
  std::string recv(int) override { internal_error("recv: a single process has no peer"); }
  void start_allreduce_sum(std::span<float>) override {}
  void start_reduce_scatter_sum(std::span<const float> bucket, size_t at, std::span<float> mine,
                                const Slices&) override {
    std::copy(bucket.begin(), bucket.end(), mine.begin() + at);  // one rank: its slice is the buffer
  }
  void poll() override {}
  void wait_all() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

// A positive integer from the environment, 0 if unset or not one.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n < (1 << 24) ? static_cast<int>(n) : 0;
}

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

}  // namespace

Slices even_slices(size_t n, int ranks) {
  Slices s;
  const size_t base = n / ranks, extra = n % ranks;
  if (base + 1 > static_cast<size_t>(std::numeric_limits<int>::max()))
    bad_input(std::to_string(n) + " parameters are too many for " + std::to_string(ranks) +
              " ranks' slices (at most 2^31-1 each): use more ranks");
  size_t at = 0;
  for (int r = 0; r < ranks; r++) {
    size_t c = base + (static_cast<size_t>(r) < extra ? 1 : 0);
    s.count.push_back(static_cast<int>(c));
    s.offset.push_back(at);
    at += c;
  }
  return s;
}

void allreduce_average(Communicator& c, std::span<float> x) {
  c.allreduce_sum(x);
  if (c.size() == 1) return;
  const float inv = 1.0f / static_cast<float>(c.size());
  for (float& v : x) v *= inv;
}

std::vector<double> all_gather(Communicator& c, double v) {
  std::vector<double> all(c.size(), 0.0);
  all[c.rank()] = v;
  c.allreduce_sum(std::span<double>(all));
  return all;
}

std::vector<std::string> all_gather(Communicator& c, const std::string& mine) {
  return c.all_to_all(std::vector<std::string>(static_cast<size_t>(c.size()), mine));
}

void broadcast(Communicator& c, std::string& s, int root) {
  uint64_t n = s.size();
  c.broadcast(std::as_writable_bytes(std::span<uint64_t>(&n, 1)), root);
  s.resize(n);
  c.broadcast(std::as_writable_bytes(std::span<char>(s.data(), s.size())), root);
}

void broadcast(Communicator& c, std::vector<float>& v, int root) {
  uint64_t n = v.size();
  c.broadcast(std::as_writable_bytes(std::span<uint64_t>(&n, 1)), root);
  v.resize(n);
  c.broadcast(std::as_writable_bytes(std::span<float>(v)), root);
}

void all_or_none(Communicator& c, const std::function<void()>& step) {
  if (c.size() == 1) return step();
  std::string failure;  // "<exit code> <message>", or empty
  try {
    step();
  } catch (const CollectiveError&) { throw; } catch (const Error& e) {
    failure = std::to_string(static_cast<int>(e.code)) + " " + e.what();
  } catch (const std::exception& e) { failure = "1 " + std::string(e.what()); }
  const std::vector<std::string> all = all_gather(c, failure);
  for (int r = 0; r < c.size(); r++) {
    if (all[r].empty()) continue;
    const size_t sp = all[r].find(' ');
    throw CollectiveError(static_cast<ExitCode>(std::stoi(all[r].substr(0, sp))),
                          "rank " + std::to_string(r) + ": " + all[r].substr(sp + 1), c.rank() == 0);
  }
}

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (int n = env_int(name)) return n;
  if (std::getenv("PMIX_RANK"))
    if (int n = env_int("SLURM_NTASKS")) return n;
  return 1;
}

bool built_with_mpi() {
#if MINDLLM_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> single_process() { return std::make_unique<SingleProcess>(); }

std::unique_ptr<Communicator> world(int* argc, char*** argv) {
  if (!launched_by_mpi()) return single_process();
#if MINDLLM_MPI
  return mpi_world(argc, argv);
#else
  int n = launched_ranks();
  if (n > 1) {  // every rank refuses; the first alone says why
    const bool first = env_int("OMPI_COMM_WORLD_RANK") == 0 && env_int("PMI_RANK") == 0 && env_int("PMIX_RANK") == 0;
    throw CollectiveError(ExitCode::bad_input,
                          "launched as " + std::to_string(n) +
                              " MPI ranks, but this mindllm was built without MPI (install libopenmpi-dev and "
                              "rebuild; docs/distributed.md)",
                          first);
  }
  return single_process();
#endif
}

}  // namespace mindllm::dist
