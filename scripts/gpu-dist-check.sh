#!/usr/bin/env bash
# The data-parallel stage of scripts/gpu-check.sh (issue 21, docs/distributed.md): `mpirun -np G
# mindllm train --device cuda --grad-accum 1`, one rank per visible GPU, against one process with
# --grad-accum G on the same data - the same global batch, so the same losses within fp32
# summation noise (bound: 1e-4 relative, in fp32). On a one-GPU machine G = 1: the NCCL path
# still runs (ncclCommInitRank and ncclAllReduce over one rank; the log must say "NCCL").
# Prints what it runs to LOG and one last line on stdout:
#   "dist stage: ok ..." | "dist stage: FAIL ..." (exit 1) | "dist stage: skipped: <why>" (exit 0)
# Skips when the binary lacks MPI or NCCL, when there is no mpirun, or when BUDGET is too short.
#
#   BIN=build-gpu/mindllm DATA=/tmp/mindllm-train-check/data BUDGET=120 bash scripts/gpu-dist-check.sh
#   DEVICE=cpu NP=2 ...      # the same comparison on the CPU over MPI (tests/e2e/test_dist.py)
set -uo pipefail
BIN=${BIN:?BIN: the mindllm binary}
DATA=${DATA:?DATA: a token shard directory}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-/tmp/mindllm-dist-check}
LOG=${LOG:-/dev/null}
BUDGET=${BUDGET:-120}
STEPS=${STEPS:-6}
MPIRUN=${MPIRUN-$(command -v mpirun || true)}
t0=$(date +%s)
result() {
  echo "dist stage: $*"
  exit 0
}
fail() {
  echo "dist stage: FAIL: $*"
  exit 1
}

version=$("$BIN" --version 2>&1)
grep -q "data parallel (mpirun -np N): MPI" <<<"$version" || result "skipped: $BIN was built without MPI"
[ "$DEVICE" = cuda ] && ! grep -q "data parallel (mpirun -np N): MPI, NCCL" <<<"$version" &&
  result "skipped: $BIN was built without NCCL"
[ -n "$MPIRUN" ] && [ -x "$MPIRUN" ] || result "skipped: no mpirun (Open MPI) on this machine"
if [ "$DEVICE" = cuda ]; then
  visible=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')  # all of them; CUDA_VISIBLE_DEVICES narrows
  [ "$visible" -ge 1 ] || result "skipped: no GPU listed by nvidia-smi"
  [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && visible=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .)
  NP=${NP:-$visible}
else
  NP=${NP:-2}
fi
[ "$BUDGET" -ge 40 ] || result "skipped: ${BUDGET} s of the time budget left (40 needed)"
each=$(((BUDGET - 5) / 2))

rm -rf "$WORK" && mkdir -p "$WORK"
flags=(train --model tiny-llama --data "$DATA" --batch "${BATCH:-4}" --seq "${SEQ:-64}" --steps "$STEPS"
       --lr 3e-3 --schedule constant --eval-batches 2 --log-every 1 --device "$DEVICE" --precision fp32
       --threads "${THREADS:-1}")
echo "+ mindllm ${flags[*]} --out $WORK/one --grad-accum $NP" >>"$LOG"
timeout -k 10 "$each" "$BIN" "${flags[@]}" --out "$WORK/one" --grad-accum "$NP" >>"$LOG" 2>&1 ||
  fail "one process with --grad-accum $NP exited $? (see the log)"
# Shared memory between the ranks of this node, without the ptrace-based single copy (not
# permitted in containers); ob1 rather than UCX (no InfiniBand to probe).
mpi=("$MPIRUN" --allow-run-as-root --oversubscribe --mca pml ob1 --mca btl self,vader
     --mca btl_vader_single_copy_mechanism none -np "$NP")
echo "+ ${mpi[*]} mindllm ${flags[*]} --out $WORK/ranks --grad-accum 1" >>"$LOG"
timeout -k 10 "$each" "${mpi[@]}" "$BIN" "${flags[@]}" --out "$WORK/ranks" --grad-accum 1 >"$WORK/ranks.log" 2>&1
rc=$?
cat "$WORK/ranks.log" >>"$LOG"
[ $rc = 0 ] || fail "mpirun -np $NP exited $rc: $(grep -m1 -iE "error|abort" "$WORK/ranks.log")"
grep -q "data parallel: $NP ranks" "$WORK/ranks.log" || fail "the job did not report $NP data-parallel ranks"
[ "$DEVICE" = cuda ] && ! grep -q "NCCL" "$WORK/ranks.log" && fail "the job did not reduce with NCCL"

python3 - "$WORK" "$NP" "$STEPS" "$DEVICE" "$(($(date +%s) - t0))" <<'PY'
import json, sys
from pathlib import Path
work, np_, steps, device, secs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def losses(run):
    p = work / run / "metrics.jsonl"
    return [json.loads(l)["loss"] for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
one, ranks = losses("one"), losses("ranks")
if len(one) != steps or len(ranks) != steps:
    print(f"dist stage: FAIL: {len(one)} and {len(ranks)} of {steps} steps logged")
    sys.exit(1)
diff = max(abs(a - b) / abs(a) for a, b in zip(one, ranks))
how = "NCCL" if device == "cuda" else "MPI"
verdict = "ok" if diff <= 1e-4 else "FAIL"
print(f"dist stage: {verdict}: mpirun -np {np_} --device {device} ({how}) vs 1 process --grad-accum {np_}, "
      f"{steps} steps: max loss rel diff {diff:.1e} (bound 1e-4), losses {ranks[0]:.4f} -> {ranks[-1]:.4f}, {secs} s")
sys.exit(0 if verdict == "ok" else 1)
PY
