#!/usr/bin/env bash
# End-to-end throughput: `data prepare` then `data tokenize` on the whole shared corpus
# (Chinese novels and statutes, English Wikipedia, C4, Shakespeare; ~17 MB), with MB/s of input
# and peak memory (GNU time); also CPU seconds (user + sys), which a shared, loaded machine
# distorts far less than wall time. usage: bash bench/data/bench_pipeline.sh [build/mindllm] [threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/mindllm}
THREADS=${2:-2}
CORPUS=../shared/data/corpus
TOK=../shared/data/tokenizers/qwen3/tokenizer.json
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MB=$(du -sb "$CORPUS" | awk '{printf "%.1f", $1/1e6}')
run() {  # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err"; exit 1; }
  read -r secs kb usr sys <"$OUT/time"
  echo "$label: ${secs} s, $(awk -v m="$MB" -v s="$secs" 'BEGIN{printf "%.1f", m/s}') MB/s of raw input, peak RSS $((kb / 1024)) MiB," \
    "CPU $(awk -v u="$usr" -v s="$sys" 'BEGIN{printf "%.2f", u+s}') s ($(awk -v m="$MB" -v u="$usr" -v s="$sys" 'BEGIN{printf "%.1f", m/(u+s)}') MB per CPU-second)"
}
echo "input: $MB MB ($CORPUS), threads $THREADS"
run "prepare (paragraph docs)" "$BIN" data prepare -q --threads "$THREADS" --text-unit paragraph -i "$CORPUS" -o "$OUT/clean"
run "tokenize (qwen3 tokenizer)" "$BIN" data tokenize -q --threads "$THREADS" --tokenizer "$TOK" -i "$OUT/clean" -o "$OUT/shards"
python3 -c "import json,sys; r=json.load(open('$OUT/clean/report.json')); m=json.load(open('$OUT/shards/manifest.json')); print('kept docs', r['documents']['kept'], 'of', r['documents']['read'], '; train tokens', m['train']['tokens'])"
