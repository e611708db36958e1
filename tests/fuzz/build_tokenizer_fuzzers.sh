#!/usr/bin/env bash
# Builds the tokenizer libFuzzer targets with clang (Debian's), the tokenizer sources instrumented
# too (-fsanitize=fuzzer-no-link would be needed on mindllm_lib for the CMake MINDLLM_FUZZ build to
# give the fuzzer coverage of the library). Output: ${OUT:-build-fuzz}/fuzz_tokenizer_{json,roundtrip}
#   bash tests/fuzz/build_tokenizer_fuzzers.sh
#   build-fuzz/fuzz_tokenizer_json -max_total_time=60 -max_len=4096 tests/fuzz/corpus_tokenizer_json
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp -Isrc"
SRCS="src/tokenizer/*.cpp src/core/file_io.cpp"
for t in json roundtrip; do
  clang++ $FLAGS $SRCS tests/fuzz/fuzz_tokenizer_$t.cpp -o "$OUT/fuzz_tokenizer_$t"
done
echo "built $OUT/fuzz_tokenizer_json $OUT/fuzz_tokenizer_roundtrip"
