# The CUDA backend built for the CPU emulator (tests/cuda/emu/README.md): the .cu files are
# translated to C++ (kernel launches become calls) and compiled by the C++ compiler against the
# emulator's cuda_runtime.h / cuda_bf16.h / mma.h / cublasLt.h. Included by the top-level
# CMakeLists.txt when MINDLLM_CUDA_EMU is on; the library replaces the nvcc-built mindllm_cuda.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(_emu ${CMAKE_SOURCE_DIR}/tests/cuda/emu)
file(GLOB _cu_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/kernels/cuda/*.cu)
set(_translated "")
foreach(_cu ${_cu_sources})
  get_filename_component(_name ${_cu} NAME_WE)
  set(_out ${CMAKE_BINARY_DIR}/cuda_emu/${_name}.cpp)
  add_custom_command(OUTPUT ${_out}
    COMMAND Python3::Interpreter ${_emu}/translate.py ${_cu} ${_out}
    DEPENDS ${_cu} ${_emu}/translate.py
    COMMENT "emu: translating ${_name}.cu")
  list(APPEND _translated ${_out})
endforeach()
add_library(mindllm_cuda STATIC ${_translated} ${_emu}/emu_runtime.cpp ${_emu}/emu_cublaslt.cpp
  ${CMAKE_SOURCE_DIR}/src/kernels/cuda/cudnn_attention.cpp)
# BEFORE: these headers stand in for the CUDA toolkit's wherever the backend's headers are seen.
target_include_directories(mindllm_cuda BEFORE PUBLIC ${_emu}/include)
target_include_directories(mindllm_cuda PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_include_directories(mindllm_cuda PRIVATE ${CMAKE_SOURCE_DIR}/src/kernels/cuda)
target_compile_definitions(mindllm_cuda PUBLIC MINDLLM_CUDA_EMU=1)
target_compile_options(mindllm_cuda PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(mindllm_lib PUBLIC mindllm_cuda)
message(STATUS "mindllm: CUDA backend on the CPU emulator (tests/cuda/emu)")
