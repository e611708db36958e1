#!/usr/bin/env bash
# Per-kernel profile of `mindllm train --device cuda` with Nsight Compute (issue 8: "work from a
# profile"): every kernel of two training steps of a benchmark shape cut to LAYERS layers (each
# layer runs the same kernels, so two layers show them all at full width; the head and AdamW are
# the real ones, AdamW over fewer parameters). For each kernel: calls, total time, and Nsight's
# speed-of-light percentages (SM throughput, memory throughput; the larger is how close the
# kernel runs to its floor). Then bench/train_gpu/floors.py's per-op floors for the full shape.
#
#   bash bench/train_gpu/profile.sh     # on the GPU machine, after scripts/gpu-check.sh built it
#
# Environment: SHAPE (default llama-1.3b), LAYERS (2), BATCH (the shape's), MINDLLM_BIN (default
# build-gpu/mindllm, gpu-check.sh's), MINDLLM_ARGS (e.g. "--attention cudnn"), NCU (default ncu),
# TIMEOUT (seconds, default 300), OUT_CSV (keep Nsight's CSV there).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPE=${SHAPE:-llama-1.3b}
LAYERS=${LAYERS:-2}
MINDLLM_BIN=${MINDLLM_BIN:-build-gpu/mindllm}
NCU=${NCU:-ncu}
command -v "$NCU" >/dev/null || { echo "profile: $NCU (Nsight Compute) not found" >&2; exit 2; }
[ -x "$MINDLLM_BIN" ] || { echo "profile: no mindllm binary at $MINDLLM_BIN (MINDLLM_BIN=...)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/mindllm-profile.XXXXXX")
trap 'rm -rf "$W"' EXIT

read -r BATCH0 SEQ VOCAB < <(python3 - "$SHAPE" "$LAYERS" "$W/config.json" <<'PY'
import json, sys
sys.path.insert(0, "bench/train_gpu")
from torch_train import SHAPES
cfg, batch, seq = SHAPES[sys.argv[1]]
cfg = dict(cfg)
cfg["n_layer" if cfg["model_type"] == "gpt2" else "num_hidden_layers"] = int(sys.argv[2])
json.dump(cfg, open(sys.argv[3], "w"), indent=1)
print(batch, seq, cfg["vocab_size"])
PY
)
BATCH=${BATCH:-$BATCH0}
python3 bench/bench_tools.py shards "$W/data" --vocab "$VOCAB" --train-tokens $((4 * BATCH * SEQ + 4096)) \
  --val-tokens $((BATCH * SEQ + 4096))
echo "== $SHAPE with $LAYERS layers, batch $BATCH x $SEQ, 2 steps under $NCU" >&2
metrics=gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed
# shellcheck disable=SC2086  # MINDLLM_ARGS is a list of flags
timeout -k 10 "${TIMEOUT:-300}" "$NCU" --csv --page raw --print-units base --metrics "$metrics" --target-processes all \
  "$MINDLLM_BIN" train --model "$W/config.json" --data "$W/data" --out "$W/run" --device cuda --steps 2 \
  --batch "$BATCH" --seq "$SEQ" --warmup 1 --eval-batches 1 --log-every 1 ${MINDLLM_ARGS:-} \
  >"$W/ncu.csv" 2>"$W/ncu.log" || { echo "profile: ncu failed (exit $?):" >&2; tail -n 20 "$W/ncu.log" >&2; exit 1; }
[ -n "${OUT_CSV:-}" ] && cp "$W/ncu.csv" "$OUT_CSV"
python3 bench/train_gpu/profile_table.py "$W/ncu.csv"
echo
python3 bench/train_gpu/floors.py --shape "$SHAPE" --batch "$BATCH"
