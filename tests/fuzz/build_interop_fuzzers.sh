#!/usr/bin/env bash
# Builds the file-reader libFuzzer targets with clang (the readers instrumented too):
# ${OUT:-build-fuzz}/fuzz_interop_{torch_bin,gguf,safetensors} and fuzz_shard (token shards). Seeds: python3 tests/fuzz/seeds_interop.py DIR
#   bash tests/fuzz/build_interop_fuzzers.sh
#   build-fuzz/fuzz_interop_torch_bin -max_total_time=60 -max_len=65536 build-fuzz/seeds_bin
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp -Isrc"
CORE="src/core/torch_bin.cpp src/core/gguf.cpp src/core/safetensors.cpp src/core/dtype.cpp src/core/file_io.cpp"
clang++ $FLAGS $CORE tests/fuzz/fuzz_interop_torch_bin.cpp -lz -o "$OUT/fuzz_interop_torch_bin"
clang++ $FLAGS $CORE tests/fuzz/fuzz_interop_gguf.cpp -lz -o "$OUT/fuzz_interop_gguf"
clang++ $FLAGS $CORE tests/fuzz/fuzz_interop_safetensors.cpp -lz -o "$OUT/fuzz_interop_safetensors"
clang++ $FLAGS src/data/shard.cpp src/core/file_io.cpp tests/fuzz/fuzz_shard.cpp -o "$OUT/fuzz_shard"
echo "built $OUT/fuzz_interop_torch_bin $OUT/fuzz_interop_gguf $OUT/fuzz_interop_safetensors $OUT/fuzz_shard"
