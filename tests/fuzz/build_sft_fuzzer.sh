#!/usr/bin/env bash
# Builds the instruction-data libFuzzer target (src/sft/sft_data.cpp) with clang and writes seeds
# (one sample of each format, as a JSON array and as JSON lines).
# Output: ${OUT:-build-fuzz}/fuzz_sft_data and ${OUT:-build-fuzz}/seeds_sft/
#   bash tests/fuzz/build_sft_fuzzer.sh
#   build-fuzz/fuzz_sft_data -max_total_time=120 -max_len=4096 build-fuzz/corpus_sft build-fuzz/seeds_sft
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT/seeds_sft" "$OUT/corpus_sft"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc"
clang++ $FLAGS src/sft/sft_data.cpp src/data/stream.cpp src/data/utf8.cpp src/tokenizer/unicode.cpp \
  src/tokenizer/unicode_tables.cpp tests/fuzz/fuzz_sft_data.cpp -lz -lzstd -o "$OUT/fuzz_sft_data"
a='{"instruction": "q", "input": "i", "output": "a", "history": [["u", "b"]]}'
s='{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}'
m='{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]}'
printf '[%s, %s, %s]' "$a" "$s" "$m" >"$OUT/seeds_sft/array.json"
printf '%s\n%s\n%s\n' "$a" "$s" "$m" >"$OUT/seeds_sft/lines.jsonl"
echo "built $OUT/fuzz_sft_data, seeds in $OUT/seeds_sft"
