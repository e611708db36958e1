#!/usr/bin/env bash
# Data preparation across ranks (docs/distributed.md): `mindllm data prepare` on the shared corpora
# (../shared/data/corpus: the C4 and Wikipedia samples, Tiny Shakespeare, the four classical
# Chinese novels, the Chinese statutes; ~17 MB, paragraphs as documents) by one process with all
# cores, and by `mpirun -np 1` and `mpirun -np N` with cores/N threads per rank. Prints each wall
# time, the ratios, whether the outputs are the same bytes (they must be), and the load. Results
# go to docs/benchmarks.md.
#   bash bench/dist/prepare_scaling.sh          # N=2 UNIT=paragraph REPEAT=1
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${MINDLLM_BIN:-build/mindllm}
CORPUS=${CORPUS:-../shared/data/corpus}
N=${N:-2} UNIT=${UNIT:-paragraph} REPEAT=${REPEAT:-1}
CORES=$(nproc)
PER_RANK=$((CORES / N > 0 ? CORES / N : 1))
[ -d "$CORPUS" ] || { echo "no $CORPUS (the shared data): nothing to measure"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
inputs=(-i "$CORPUS/en" -i "$CORPUS/zh" -i "$CORPUS/law-zh")
mpi=(mpirun --allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none)
# seconds NAME CMD...: the wall time of CMD (its output in $work/NAME), the best of REPEAT runs.
seconds() {
  local name=$1 best="" s e
  shift
  for _ in $(seq "$REPEAT"); do
    rm -rf "${work:?}/$name"
    s=$(date +%s.%N)
    "$@" "${inputs[@]}" --text-unit "$UNIT" -o "$work/$name" >/dev/null 2>"$work/$name.log"
    e=$(date +%s.%N)
    best=$(python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=sys.argv[3]; print(f'{min(t, float(b)) if b else t:.2f}')" "$s" "$e" "$best")
  done
  echo "$best"
}
same() {  # the output parts byte for byte (report.json differs in its timing and index fields)
  diff -rq -x report.json "$work/one" "$work/$1" >/dev/null && echo "same bytes" || echo "DIFFERENT"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
one=$(seconds one "$BIN" data prepare --threads "$CORES")
mpi1=$(seconds mpi1 "${mpi[@]}" -np 1 "$BIN" data prepare --threads "$CORES")
many=$(seconds many "${mpi[@]}" -np "$N" "$BIN" data prepare --threads "$PER_RANK")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work"/{one,many}/report.json <<'PY'
import json, sys
one, many = (json.load(open(p)) for p in sys.argv[1:])
d = one["documents"]
print(f"documents: {d['read']} read, {d['kept']} kept, {d['removed']} removed (np N: {many['documents']['kept']} kept)")
print(f"report timing: 1 process {one['timing']['seconds']:.2f} s, np N {many['timing']['seconds']:.2f} s")
PY
echo "corpus $CORPUS ($(du -shL "$CORPUS" | cut -f1)), --text-unit $UNIT, $CORES cores, best of $REPEAT"
echo "1 process x $CORES threads:          $one s"
echo "mpirun -np 1 x $CORES threads:       $mpi1 s ($(same mpi1))"
echo "mpirun -np $N x $PER_RANK threads:        $many s ($(same many))"
python3 -c "import sys; o,m,n=map(float,sys.argv[1:]); print(f'speed-up, np $N / 1 process: {o/n:.2f}x; np $N / np 1: {m/n:.2f}x')" "$one" "$mpi1" "$many"
