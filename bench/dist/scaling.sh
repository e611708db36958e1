#!/usr/bin/env bash
# 1 -> N ranks on this machine's CPU: the same global batch (B x A x N) trained by one process with
# --grad-accum N*A and all cores, and by `mpirun -np N` with --grad-accum A and cores/N threads
# each, with the gradient reduction overlapped with the backward (the default) and after it
# (--no-overlap), in buckets of BUCKET_MB; ZERO=1 runs the ranks with --zero 1 (the buckets
# reduce-scattered, during the backward or after it). Prints tokens/s (mean of the timed steps after WARMUP,
# from metrics.jsonl), the ratios, and the load. Results go to docs/distributed.md and
# docs/benchmarks.md.
#   bash bench/dist/scaling.sh                  # MODEL=demo-llama STEPS=12 N=2 BUCKET_MB=2
#   ZERO=1 bash bench/dist/scaling.sh           # ZeRO-1: overlapped reduce-scatter vs not
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${MINDLLM_BIN:-build/mindllm}
MODEL=${MODEL:-demo-llama} STEPS=${STEPS:-12} WARMUP=${WARMUP:-2} N=${N:-2} B=${B:-4} T=${T:-256} A=${A:-1}
BUCKET_MB=${BUCKET_MB:-2}
zero=()
[ "${ZERO:-0}" = 1 ] && zero=(--zero 1)
CORES=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/data" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/reference")
from mindllm_ref import write_shard
from pathlib import Path
d = Path(sys.argv[1]); d.mkdir()
rng = np.random.default_rng(0)
write_shard(d / "train-000.bin", rng.integers(0, 512, 200000), 512)
PY
common=(train --model "$MODEL" --data "$work/data" --batch "$B" --seq "$T" --steps "$STEPS" --log-every 1000 --eval-batches 1)
rate() { python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]; print(round(sum(x['tokens_per_s'] for x in m)/len(m)))" "$1" "$WARMUP"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" "${common[@]}" --out "$work/one" --grad-accum $((N * A)) --threads "$CORES" 2>/dev/null
one=$(rate "$work/one/metrics.jsonl")
ranks() {
  mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none -np "$N" \
    "$BIN" "${common[@]}" --out "$work/$1" --grad-accum "$A" --threads $((CORES / N > 0 ? CORES / N : 1)) \
    --bucket-mb "$BUCKET_MB" "${zero[@]}" "${@:2}" 2>/dev/null
  rate "$work/$1/metrics.jsonl"
}
many=$(ranks many)
after=$(ranks after --no-overlap)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $MODEL, global batch $((B * A * N)) x $T tokens, $CORES cores, buckets of $BUCKET_MB MiB${zero:+, --zero 1}"
echo "1 process x $CORES threads: $one tokens/s"
echo "$N ranks x $((CORES / N > 0 ? CORES / N : 1)) threads (mpirun), reduction overlapped: $many tokens/s"
echo "$N ranks, reduction after the backward (--no-overlap): $after tokens/s"
python3 -c "print('ratio, $N ranks / 1 process: %.2f overlapped, %.2f not; overlapped / not: %.3f' % ($many / $one, $after / $one, $many / $after))"
