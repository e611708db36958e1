#!/usr/bin/env bash
# Builds the tokenizer libFuzzer targets with clang (Debian's), the tokenizer sources instrumented
# too (-fsanitize=fuzzer-no-link would be needed on mindllm_lib for the CMake MINDLLM_FUZZ build to
# give the fuzzer coverage of the library). Output: ${OUT:-build-fuzz}/fuzz_tokenizer_{json,roundtrip,regex}
#   bash tests/fuzz/build_tokenizer_fuzzers.sh
#   build-fuzz/fuzz_tokenizer_json -max_total_time=60 -max_len=4096 tests/fuzz/corpus_tokenizer_json
#   build-fuzz/fuzz_tokenizer_regex -max_total_time=60   (input: pattern NUL text)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fopenmp -Isrc"
# The trainer reads inputs through the data pipeline's reader (gzip/zstd); Split regexes run on PCRE2.
SRCS="src/tokenizer/*.cpp src/core/file_io.cpp src/core/regex.cpp src/data/reader.cpp src/data/stream.cpp src/data/utf8.cpp"
LIBS="$(pkg-config --libs libpcre2-8 libzstd zlib)"
for t in json roundtrip regex; do
  clang++ $FLAGS $SRCS tests/fuzz/fuzz_tokenizer_$t.cpp -o "$OUT/fuzz_tokenizer_$t" $LIBS
done
echo "built $OUT/fuzz_tokenizer_json $OUT/fuzz_tokenizer_roundtrip $OUT/fuzz_tokenizer_regex"
