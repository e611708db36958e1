// The Open MPI engine of dist::Communicator (built when CMake finds MPI: MINDLLM_MPI).
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace mindllm::dist {

#if MINDLLM_MPI
// MPI_Init_thread (FUNNELED: only the main thread calls MPI); MPI_COMM_WORLD duplicated.
// Destroying it calls MPI_Finalize.
std::unique_ptr<Communicator> mpi_world(int* argc, char*** argv);
#endif

}  // namespace mindllm::dist
