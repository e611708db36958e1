#!/usr/bin/env bash
# select score throughput against the eval-style forward on the same model, batches and rows:
#   peer     `select score --forward-only`: the inference engine's forward over the same batches
#            with the logits of the response rows, what eval's log-likelihood scorer runs
#            (model/engine.h), and nothing else
#   mindllm  `select score`: the same forward plus the per-row softmax statistics (cross-entropy,
#            entropy), the per-sample sums and the scores file
# Prints tokens/s of both and the ratio (target >= 0.9), alternating the two ROUNDS times. Model: the demo-llama preset (~4M
# parameters, 4096-token vocabulary), weights from one training step (speed does not depend on
# the weights). Data: the first SAMPLES (default 300) of ../shared/data/sft/alpaca_en_demo.json.
#   bash bench/select/bench_score.sh [BATCH] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
M="$PWD/${BUILD_DIR:-build}/mindllm"
SHARED=${SHARED:-$PWD/../shared/data}
BATCH=${1:-8}
THREADS=${2:-2}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 -c "import json, sys; json.dump(json.load(open(sys.argv[1]))[:int(sys.argv[2])], open(sys.argv[3], 'w'))" \
  "$SHARED/sft/alpaca_en_demo.json" "${SAMPLES:-300}" "$W/data.json"
"$M" tokenizer train --input "$SHARED/corpus/en/wiki_demo.txt" --vocab-size 4096 --special '<|endoftext|>' \
  --special '<|im_start|>' --special '<|im_end|>' --output "$W/tokenizer.json" --quiet
"$M" data tokenize --tokenizer "$W/tokenizer.json" --input "$SHARED/corpus/en/wiki_demo.txt" --output "$W/shards" \
  --quiet >/dev/null
cp "$W/tokenizer.json" "$W/shards/"
"$M" train --model demo-llama --data "$W/shards" --out "$W/run" --steps 1 --batch 1 --seq 64 --threads "$THREADS" \
  >/dev/null 2>&1
CKPT="$W/run/ckpt/$(cat "$W/run/ckpt/latest")"
run() {
  "$M" select score --model "$CKPT" --data "$W/data.json" --out "$W/s.jsonl" --chat-template chatml \
    --batch "$BATCH" --threads "$THREADS" --no-ifd --quiet --json "$@" |
    python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["tokens_per_s"])'
}
# ROUNDS alternations (default 3), so a load that changes during the run weighs on both sides alike; the
# ratio of each round and their median.
ratios=()
for r in $(seq "${ROUNDS:-3}"); do
  peer=$(run --forward-only)
  ours=$(run)
  ratio=$(python3 -c "import sys; p, o = map(float, sys.argv[1:]); print(f'{o / p:.3f}')" "$peer" "$ours")
  ratios+=("$ratio")
  printf 'round %d: eval-style forward %.0f tokens/s, select score %.0f tokens/s, ratio %s (load %s)\n' \
    "$r" "$peer" "$ours" "$ratio" "$(cut -d' ' -f1 /proc/loadavg)"
done
python3 -c "import statistics, sys; print(f'median ratio {statistics.median(map(float, sys.argv[1:])):.3f} over {len(sys.argv) - 1} rounds (batch $BATCH, threads $THREADS)')" "${ratios[@]}"
