// Runs a command's work as one rank of a job (dist/communicator.h): under mpirun/srun with
// MPI, every rank runs `body` with the job's communicator; otherwise one process does.
#pragma once
#include <functional>
#include <string>

#include "dist/communicator.h"

namespace mindllm::cli {

// Errors: one that every rank raised together (dist::CollectiveError) is printed by one rank,
// every rank shuts MPI down and exits with its code; one that a single rank raised alone is
// printed with its rank ("rank 1: ...") and ends the whole job (MPI_Abort) with its exit code,
// since the other ranks wait in a collective. Returns the exit code.
int run_as_job(const std::string& name, int argc, char** argv, const std::function<void(dist::Communicator&)>& body);

}  // namespace mindllm::cli
