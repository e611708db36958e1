# Distributed training and data preparation (src/dist: the ranks' communicator; src/train/dist:
# data parallelism; docs/distributed.md). Open MPI (Debian libopenmpi-dev) is
# optional: with it `mpirun -np N mindllm train` is data-parallel; without it the binary builds
# and refuses a launch of several ranks. NCCL (the CUDA toolkit's, or pip's nvidia-nccl) adds the
# GPU collectives when the CUDA backend is on (not for the emulator).
option(MINDLLM_MPI "Data-parallel training over MPI when CMake finds MPI" ON)
if(MINDLLM_MPI)
  find_package(MPI COMPONENTS C QUIET)
endif()
if(MINDLLM_MPI AND MPI_C_FOUND)
  # Only the files that use MPI see its headers and switches (the rest keep their ccache hits).
  set(_dist ${CMAKE_SOURCE_DIR}/src/train/dist)
  target_link_libraries(mindllm_lib PUBLIC ${MPI_C_LIBRARIES})
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/dist/communicator.cpp ${CMAKE_SOURCE_DIR}/src/dist/mpi_comm.cpp PROPERTIES
    COMPILE_DEFINITIONS "MINDLLM_MPI=1;OMPI_SKIP_MPICXX=1" INCLUDE_DIRECTORIES "${MPI_C_INCLUDE_DIRS}")
  message(STATUS "mindllm: MPI ${MPI_C_VERSION} (${MPI_C_LIBRARIES}): data-parallel training")
  if(MINDLLM_CUDA AND NOT MINDLLM_CUDA_EMU)
    execute_process(COMMAND python3 -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
      OUTPUT_VARIABLE _purelib OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_purelib}/nvidia/nccl/include)
    find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
      HINTS ${CUDAToolkit_LIBRARY_DIR} ${_purelib}/nvidia/nccl/lib)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      target_link_libraries(mindllm_lib PUBLIC ${NCCL_LIBRARY})
      set_source_files_properties(${_dist}/nccl.cpp ${CMAKE_SOURCE_DIR}/src/train/step_backend.cpp PROPERTIES
        COMPILE_DEFINITIONS MINDLLM_NCCL=1 INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
      message(STATUS "mindllm: NCCL ${NCCL_LIBRARY}: data-parallel training on GPUs")
    else()
      message(STATUS "mindllm: NCCL not found: data-parallel training on the CPU only")
    endif()
  endif()
else()
  message(STATUS "mindllm: MPI not found: single-process training (a launch of several ranks is refused)")
endif()
