# Dependencies of the data pipeline (src/data), all Debian packages (scripts/setup.sh):
# zlib and zstd for compressed inputs/outputs, OpenCC for Traditional->Simplified conversion,
# yaml-cpp for YAML configs. (NFKC uses the tokenizer's generated tables, not ICU.)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MINDLLM_ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(MINDLLM_OPENCC REQUIRED IMPORTED_TARGET opencc)
find_package(yaml-cpp REQUIRED)
target_link_libraries(mindllm_lib PUBLIC ZLIB::ZLIB PkgConfig::MINDLLM_ZSTD PkgConfig::MINDLLM_OPENCC
  yaml-cpp)
