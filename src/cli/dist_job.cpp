#include "cli/dist_job.h"

#include <cstdio>
#include <memory>

namespace mindllm::cli {

int run_as_job(const std::string& name, int argc, char** argv, const std::function<void(dist::Communicator&)>& body) {
  std::unique_ptr<dist::Communicator> job;
  try {
    job = dist::world(&argc, &argv);
    body(*job);
    return 0;
  } catch (const dist::CollectiveError& e) {
    job.reset();  // every rank is here: MPI_Finalize
    if (e.report) std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    return static_cast<int>(e.code);
  } catch (const std::exception& e) {
    if (!job || job->size() == 1) throw;  // main prints it
    const auto* err = dynamic_cast<const Error*>(&e);
    const int code = err ? static_cast<int>(err->code) : 1;
    std::fprintf(stderr, "%s: error: rank %d: %s\n", name.c_str(), job->rank(), e.what());
    std::fflush(stderr);
    job->abort(code);
    return code;  // not reached: abort() ends the process
  }
}

}  // namespace mindllm::cli
