#!/usr/bin/env bash
# The one command for the GPU machine: builds the project there, runs every GPU test (each CUDA
# op against its CPU twin, the GPU model against the CPU model; docs/cuda.md), trains a tiny
# model with `mindllm train --device cuda` (resume on the GPU, GPU -> CPU -> GPU resume, fp32
# GPU vs CPU), runs data-parallel training over MPI + NCCL (one rank per GPU; DIST_CHECK=0 skips
# it) and prints a short table last. Sized to finish in about 8 minutes on a 16-core
# H100/H200 machine (build ~2-3 min, tests ~1-2 min, training ~1 min).
#
#   bash scripts/gpu-deps.sh                     # first, on the development machine: .deps/*.deb
#   bash scripts/gpu-check.sh                    # on the GPU machine (device call carrying .deps)
#   SANITIZE=1 bash scripts/gpu-check.sh         # also one pass under compute-sanitizer memcheck
#   GTEST_FILTER='*OpsTableGpu*attention_*' bash scripts/gpu-check.sh
#   MODE=kernels bash scripts/gpu-check.sh       # only the kernel tests (standalone project)
#   BENCH=1 bash scripts/gpu-check.sh           # then the speed benchmark (bench/train_gpu/run.sh,
#                                                # SHAPES default "gpt2-124m llama-1.3b") with the time left;
#   TRAIN_CHECK=0 GTEST_FILTER=-* BENCH=1 BUDGET=570 bash scripts/gpu-check.sh   # the benchmark alone
#                                                # (a second call on the warm machine: the build is reused)
#   TRAIN_CHECK=0 GTEST_FILTER=-* PROFILE=1 bash scripts/gpu-check.sh  # Nsight Compute per-kernel table
#                                                # + floors (bench/train_gpu/profile.sh) -> profile.txt
#   TRAIN_STEPS=8 TRAIN_BATCH=2 TRAIN_SEQ=32 ...  # shorter training checks (scripts/cuda-emu-check.sh runs
#                                                # this script on the CPU emulator of tests/cuda/emu so)
#
# The machine (Ubuntu 24.04, CUDA 13, no internet) lacks the full project's packages
# (nlohmann-json, CLI11, zstd, OpenCC, yaml-cpp, GoogleTest, OpenBLAS headers). They travel as
# Debian 12 packages in .deps/*.deb (scripts/gpu-deps.sh) and are unpacked under
# /tmp/mindllm-deps, never over /. MODE=auto (default) builds the full project and falls back to
# tests/cuda/CMakeLists.txt (CUDA + CPU kernels + GoogleTest, no model tests, no training) when
# the full project does not configure. cuDNN and NCCL exist there only inside
# pip's `nvidia` package, so those folders are handed to CMake; the cuDNN frontend's headers
# travel in .deps/cudnn-frontend/include (scripts/gpu-deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-gpu}
# Logs: $OUT on the GPU machine; elsewhere beside the build (the fallback below deletes BUILD_DIR).
RESULT_DIR=${OUT:-$BUILD_DIR-logs}
MODE=${MODE:-auto}
DEPS=/tmp/mindllm-deps
# Per-suite gtest JSON and bookkeeping stay off $OUT: the device call brings back at most 8
# files, and one JSON per suite would crowd out the logs.
CHECK_DIR=/tmp/mindllm-check
rm -rf "$CHECK_DIR" && mkdir -p "$CHECK_DIR"
mkdir -p "$RESULT_DIR"
RESULT_DIR=$(cd "$RESULT_DIR" && pwd)
t0=$(date +%s)
# Every step's timeout comes out of one budget (BUDGET seconds, default 8 minutes: the device call
# runs with timeout_s=540), so the summary tables below are always printed before the call ends.
BUDGET=${BUDGET:-480}
left() { echo $((t0 + BUDGET - $(date +%s))); }
cap() {  # cap MAX RESERVE: min(MAX, seconds left - RESERVE), at least 1
  local c=$(($(left) - $2))
  [ "$c" -gt "$1" ] && c=$1
  [ "$c" -lt 1 ] && c=1
  echo "$c"
}

echo "== machine"
timeout -k 5 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 ||
  echo "nvidia-smi: not available"
nvcc --version 2>/dev/null | tail -1 || true

prefix=()
cmake_extra=()
NV=$(python3 -c "import nvidia; print(nvidia.__path__[0])" 2>/dev/null || true)
if [ -n "$NV" ]; then
  for d in cudnn nccl cublas cuda_runtime; do [ -d "$NV/$d" ] && prefix+=("$NV/$d"); done
  echo "pip nvidia packages: $NV"
  # libcudnn.so.9 (loaded at run time by --attention cudnn) opens its engine libraries by name.
  [ -d "$NV/cudnn/lib" ] && export LD_LIBRARY_PATH=$NV/cudnn/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if compgen -G ".deps/*.deb" >/dev/null; then
  rm -rf "$DEPS"
  for f in .deps/*.deb; do dpkg -x "$f" "$DEPS"; done
  # Relocate: absolute symlinks (libz.so -> /lib/...) and the prefixes of pkg-config files.
  find "$DEPS" -type l -lname '/*' | while read -r l; do ln -sfn "$DEPS$(readlink "$l")" "$l"; done
  find "$DEPS" -name '*.pc' -exec sed -i -E "s#^(prefix|exec_prefix|libdir|includedir)=/#\1=$DEPS/#" {} +
  prefix+=("$DEPS/usr")
  libdirs=$DEPS/usr/lib/x86_64-linux-gnu:$DEPS/lib/x86_64-linux-gnu:$DEPS/usr/lib/x86_64-linux-gnu/openblas-openmp
  export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PKG_CONFIG_PATH=$DEPS/usr/lib/x86_64-linux-gnu/pkgconfig:$DEPS/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  command -v pkg-config >/dev/null || cmake_extra+=(-DPKG_CONFIG_EXECUTABLE="$DEPS/usr/bin/pkgconf")
  blas=$DEPS/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a
  [ -f "$blas" ] && cmake_extra+=(-DOPENBLAS_LIBRARY="$blas"
                                  -DCBLAS_INCLUDE_DIR="$DEPS/usr/include/x86_64-linux-gnu/openblas-openmp")
  echo "unpacked $(ls .deps/*.deb | wc -l) carried packages into $DEPS"
  # Open MPI (for the data-parallel stage below), relocated to where it was unpacked; a machine's
  # own MPI, if it has one, comes first.
  if ! command -v mpirun >/dev/null && [ -x "$DEPS/usr/bin/orterun" ]; then
    export OPAL_PREFIX=$DEPS/usr
    cmake_extra+=(-DMPI_C_COMPILER="$DEPS/usr/bin/mpicc.openmpi")
    MPIRUN=$DEPS/usr/bin/orterun
  fi
fi
prefix_path=$(IFS=';'; echo "${prefix[*]:-}")
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

configure() {  # source dir, then extra arguments
  local src=$1
  shift
  timeout -k 10 "$(cap 240 60)" cmake -S "$src" -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$prefix_path" "$@" >>"$RESULT_DIR/configure.log" 2>&1
}
build() {  # targets
  timeout -k 10 "$(cap 420 60)" cmake --build "$BUILD_DIR" --target "$@" -j "$(nproc)" >>"$RESULT_DIR/build.log" 2>&1
}
build_errors() {
  grep -E "error|Error" "$RESULT_DIR/build.log" | head -30
}

echo "== configure + build ($BUILD_DIR, sm_90)"
# A failure here still ends with the summary (no tests, the reason above it); a full project that
# configures but does not build falls back to the kernels-only project too.
built=""
: >"$RESULT_DIR/configure.log"
: >"$RESULT_DIR/build.log"
if [ "$MODE" != kernels ]; then
  if ! configure . -DMINDLLM_CUDA=ON "${cmake_extra[@]}"; then
    tail -15 "$RESULT_DIR/configure.log"
    echo "the full project did not configure (carried .deps missing? scripts/gpu-deps.sh): kernel tests only"
  elif build mindllm mindllm_cuda_tests; then
    built=full
  elif grep -q "cudnn_attention" "$RESULT_DIR/build.log" &&
    configure . -DMINDLLM_CUDA=ON -DMINDLLM_CUDNN=OFF "${cmake_extra[@]}" && build mindllm mindllm_cuda_tests; then
    # The cuDNN frontend's headers did not compile here: everything else still runs.
    grep -m 10 -E "error" "$RESULT_DIR/build.log"
    echo "cudnn_attention.cpp did not build with the cuDNN frontend: built with -DMINDLLM_CUDNN=OFF"
    built=full
  else
    build_errors
    echo "the full project did not build (full log: $RESULT_DIR/build.log): kernel tests only"
  fi
  [ -z "$built" ] && rm -rf "$BUILD_DIR"
fi
if [ -z "$built" ]; then
  if ! configure tests/cuda "${cmake_extra[@]}"; then
    tail -20 "$RESULT_DIR/configure.log"
    echo "configure failed (GoogleTest or OpenBLAS missing? run scripts/gpu-deps.sh and carry .deps)"
  elif ! build mindllm_cuda_tests; then
    build_errors
    echo "build failed (full log: $RESULT_DIR/build.log)"
  else
    built=kernels
  fi
fi
t1=$(date +%s)
status=0
if [ -n "$built" ]; then
  echo "built ($built) in $((t1 - t0)) s"
else
  echo "nothing built in $((t1 - t0)) s: no tests"
  status=1
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
filter=${GTEST_FILTER:-*}
: >"$RESULT_DIR/cuda_tests.log"
: >"$CHECK_DIR/suites.txt"
if [ -n "$built" ]; then
  echo "== GPU tests"
  # One process per test suite: a sticky CUDA error (an illegal address poisons the context for
  # the rest of the process) or a crash in one suite cannot take the other suites' results along.
  # Each line of suites.txt: the suite's tests as one gtest filter (the GTEST_FILTER subset).
  bin=$BUILD_DIR/mindllm_cuda_tests
  timeout -k 5 60 "$bin" --gtest_list_tests --gtest_filter="$filter" 2>>"$RESULT_DIR/cuda_tests.log" </dev/null | awk '
    /^[^ ]/ { if (f != "") print f; s = $1; f = ""; next }
    /^  /   { f = f (f != "" ? ":" : "") s $1 }
    END     { if (f != "") print f }' >"$CHECK_DIR/suites.txt"
  [ -s "$CHECK_DIR/suites.txt" ] || [ "$filter" = "-*" ] || { echo "no GPU tests listed (see cuda_tests.log)"; status=1; }
  reserve=20
  [ "$built" = full ] && [ "${TRAIN_CHECK:-1}" = 1 ] && reserve=100  # the training checks' share
  tests_end=$(($(date +%s) + $(cap 360 $reserve)))
  i=0
  : >"$CHECK_DIR/suite_status.txt"
  while read -r tests; do
    i=$((i + 1))
    n=$((tests_end - $(date +%s)))
    if [ "$n" -lt 5 ]; then
      printf '%s\tnot run (time budget)\n' "${tests%%.*}" >>"$CHECK_DIR/suite_status.txt"
      status=1
      continue
    fi
    timeout -k 10 "$n" "$bin" --gtest_filter="$tests" --gtest_output="json:$CHECK_DIR/cuda_tests-$i.json" \
      >>"$RESULT_DIR/cuda_tests.log" 2>&1 </dev/null
    rc=$?
    [ $rc = 0 ] || status=1
    { [ $rc = 124 ] || [ $rc = 137 ]; } && echo "${tests%%.*}: timed out after $n s"
    printf '%s\texit %s\tcuda_tests-%s.json\n' "${tests%%.*}" "$rc" "$i" >>"$CHECK_DIR/suite_status.txt"
  done <"$CHECK_DIR/suites.txt"
  grep -E "Failure|rel err|Which is|error|Expected|CUDA" "$RESULT_DIR/cuda_tests.log" | head -60
fi
t2=$(date +%s)

sanitize_note="not run (SANITIZE=1 runs it)"
if [ -n "$built" ] && [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck"
  if timeout -k 10 "$(cap 240 20)" compute-sanitizer --tool memcheck --error-exitcode 9 "$BUILD_DIR/mindllm_cuda_tests" \
       --gtest_filter="$filter" >"$RESULT_DIR/memcheck.log" 2>&1; then
    sanitize_note="clean"
  else
    sanitize_note="FAILED (see $RESULT_DIR/memcheck.log)"
    grep -m 20 -E "Invalid|ERROR SUMMARY" "$RESULT_DIR/memcheck.log"
    status=1
  fi
fi

# `mindllm train --device cuda` on tiny-llama (learnable synthetic shards), each run logged to
# train_check.log: A = N = 40 GPU steps (TRAIN_STEPS, a multiple of 4); B = N/2 GPU steps then
# --resume to N on the GPU (must equal A byte for byte); C = B's step-N/2 checkpoint resumed on
# the CPU to 3N/4, then on the GPU to N; D/E = N/4 steps on the CPU and on the GPU in fp32 (losses
# must agree). A constant schedule, so a run of N/2 steps is the first half of a run of N.
W=-
N=${TRAIN_STEPS:-40}
if [ "$built" = full ] && [ "${TRAIN_CHECK:-1}" = 1 ]; then
  echo "== mindllm train --device cuda"
  W=/tmp/mindllm-train-check  # the runs' checkpoints stay off $OUT; the log goes there
  rm -rf "$W" && mkdir -p "$W"
  # Plain Python (no numpy/torch: the e2e tests' writer in tests/reference imports torch).
  python3 - "$W/data" <<'PY'
import random, struct, sys
from pathlib import Path
def write_shard(path, tokens, vocab):  # llm.c format: 256 int32 header, then uint16 ids
    header = [20240520, 1, len(tokens), vocab] + [0] * 252
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(struct.pack(f"<{len(tokens)}H", *tokens))
rng = random.Random(0)
words = [[rng.randrange(512) for _ in range(rng.randrange(3, 7))] for _ in range(300)]
seq = [t for _ in range(30000) for t in words[rng.randrange(len(words))]]
d = Path(sys.argv[1]); d.mkdir(parents=True)
write_shard(d / "train-000.bin", seq[:100000], 512)
write_shard(d / "val-000.bin", seq[100000:], 512)
PY
  log=$RESULT_DIR/train_check.log
  : >"$log"
  train() {  # out dir, then extra flags
    local out=$1
    shift
    echo "+ mindllm train --out $out $*" >>"$log"
    if [ "$(left)" -lt 30 ]; then
      echo "  train $out $*: not run (time budget)" | tee -a "$log"
      return
    fi
    # -k: the trainer takes SIGTERM as "checkpoint and stop", which a hung GPU never reaches.
    timeout -k 10 "$(cap 120 15)" "$BUILD_DIR/mindllm" train --model tiny-llama --data "$W/data" --out "$W/$out" --batch "${TRAIN_BATCH:-8}" --seq "${TRAIN_SEQ:-128}" \
      --lr 3e-3 --warmup 5 --schedule constant --eval-batches 4 --log-every 10 --threads "$OMP_NUM_THREADS" \
      "$@" >>"$log" 2>&1 ||
      echo "  train $out $* failed (exit $?)" | tee -a "$log"
  }
  train A --steps $N --device cuda --ckpt-every $((N / 2))
  train B --steps $((N / 2)) --device cuda
  [ -d "$W/B" ] && cp -r "$W/B" "$W/C"
  train B --steps $N --device cuda --resume
  train C --steps $((3 * N / 4)) --device cpu --resume
  train C --steps $N --device cuda --resume
  train D --steps $((N / 4)) --device cpu
  train E --steps $((N / 4)) --device cuda --precision fp32
  # F: A with cuDNN's fused attention instead of mindllm's flash kernels (when cuDNN loads).
  if "$BUILD_DIR/mindllm" --version 2>/dev/null | grep -q "cuDNN attention (--attention cudnn): available"; then
    train F --steps $N --device cuda --attention cudnn
  else
    echo "  cuDNN attention unavailable: $("$BUILD_DIR/mindllm" --version 2>&1 | grep cuDNN)" | tee -a "$log"
  fi
  # The inference engine on the GPU (issue 16): generate --device cuda = the CPU's greedy tokens on
  # D's checkpoint, serve --device cuda = generate's text (a few seconds; a tokenizer made here).
  echo "== generate / serve --device cuda (the inference engine)"
  ckpt=$(ls -d "$W"/D/ckpt/step-* 2>/dev/null | tail -1)
  for i in $(seq 1 40); do printf 'Question %d: what is %d plus %d? Answer: %d.\n' "$i" "$i" "$i" $((2 * i)); done >"$W/tok.txt"
  if [ -z "$ckpt" ] || [ "$(left)" -lt 40 ]; then
    echo "  not run (no checkpoint of D, or the time budget)" | tee -a "$log"
  elif ! "$BUILD_DIR/mindllm" tokenizer train --input "$W/tok.txt" --vocab-size 300 --output "$W/tok.json" --quiet \
    >>"$log" 2>&1; then
    echo "  tokenizer train failed" | tee -a "$log"
    status=1
  else
    timeout -k 5 "$(cap 120 15)" bash scripts/infer-check.sh "$BUILD_DIR" "$W/tok.json" "$ckpt" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  fi
fi
t3=$(date +%s)

# The speed benchmark (issue 8): mindllm train --device cuda against the PyTorch peer of GPU.md on
# the same GPU, each shape's last line kept for the summary. Opt-in (it needs minutes: PyTorch
# compiles), with whatever the budget has left after a 20 s reserve for the summary.
bench_lines=""
if [ "${BENCH:-0}" = 1 ] && [ "$built" = full ]; then
  echo "== GPU benchmark (bench/train_gpu/run.sh)"
  n=$(($(left) - 20))
  if [ "$n" -lt 60 ]; then
    bench_lines="benchmark: not run (time budget: ${n} s left)"
  else
    # Each shape's JSON and logs go to $CHECK_DIR (the 8-file limit on $OUT); bench.log has their
    # tails, and each shape's mindllm.log is copied next to it.
    SHAPES=${SHAPES:-"gpt2-124m llama-1.3b"} MINDLLM_BIN=$BUILD_DIR/mindllm RESULTS_DIR=$CHECK_DIR/bench \
      timeout -k 10 "$n" bash bench/train_gpu/run.sh >"$RESULT_DIR/bench.log" 2>&1
    rc=$?
    for f in "$CHECK_DIR"/bench/*/mindllm.log; do
      [ -f "$f" ] && cp "$f" "$RESULT_DIR/$(basename "$(dirname "$f")")-mindllm.log"
    done
    { [ $rc = 124 ] || [ $rc = 137 ]; } && echo "benchmark stopped after $n s (time budget)" >>"$RESULT_DIR/bench.log"
    bench_lines=$(grep -E "^train_gpu |^\(|stopped after" "$RESULT_DIR/bench.log")
    [ -n "$bench_lines" ] || bench_lines="benchmark: no result (see bench.log)"
  fi
fi
# Per-kernel profile (issue 8), opt-in: PROFILE=1. Nsight Compute over two steps of the 1.3B
# shape cut to 2 layers, then the floors (bench/train_gpu/profile.sh); the table goes to profile.txt.
if [ "${PROFILE:-0}" = 1 ] && [ "$built" = full ]; then
  echo "== profile (bench/train_gpu/profile.sh)"
  n=$(($(left) - 20))
  if [ "$n" -lt 60 ]; then
    echo "profile: not run (time budget: ${n} s left)" | tee "$RESULT_DIR/profile.txt"
  else
    MINDLLM_BIN=$BUILD_DIR/mindllm TIMEOUT=$((n - 10)) bash bench/train_gpu/profile.sh >"$RESULT_DIR/profile.txt" 2>&1 ||
      echo "profile: failed (see profile.txt)"
    head -n 40 "$RESULT_DIR/profile.txt"
  fi
fi
# The data-parallel stage (issue 21): `mpirun -np <GPUs> mindllm train --device cuda` (NCCL's
# all-reduce; np 1 on a one-GPU machine still runs it) against one process with --grad-accum
# <GPUs>, on the training check's data (scripts/gpu-dist-check.sh; its runs go to train_check.log).
# Skips with one line when the build has no MPI or NCCL or the machine no mpirun.
dist_line=""
if [ "$built" = full ] && [ "${DIST_CHECK:-1}" = 1 ]; then
  echo "== mpirun -np <GPUs> mindllm train --device cuda (NCCL)"
  if [ ! -d "$W/data" ]; then
    dist_line="dist stage: skipped: it trains on the training check's data (TRAIN_CHECK=1)"
  else
    dist_line=$(MPIRUN=${MPIRUN:-$(command -v mpirun || true)} BIN=$BUILD_DIR/mindllm DATA=$W/data \
      LOG="$RESULT_DIR/train_check.log" BUDGET="$(cap 150 20)" bash scripts/gpu-dist-check.sh | tail -1)
    grep -q "FAIL" <<<"$dist_line" && status=1
  fi
  echo "$dist_line"
fi
t4=$(date +%s)

echo
echo "== summary: build $((t1 - t0)) s, tests $((t2 - t1)) s, training $((t3 - t2)) s, benchmark $((t4 - t3)) s, memcheck: $sanitize_note"
python3 - "$CHECK_DIR" "$W" "${N:-40}" "$filter" <<'PY' || status=1
import json, sys
from pathlib import Path
failed = 0
rows = []
results = Path(sys.argv[1])
status_file = results / "suite_status.txt"
for line in (status_file.read_text().splitlines() if status_file.exists() else []):
    suite, how, *out = line.split("\t")
    try:
        doc = json.load(open(results / out[0])) if out else None
    except Exception:
        doc = None
    if doc is None:  # crashed, timed out or not run: no JSON from that process
        rows.append((suite + ".*", "FAIL", "-", how + ", no results (see cuda_tests.log)"))
        continue
    for s in doc.get("testsuites", []):
        for t in s.get("testsuite", []):
            res = "FAIL" if t.get("failures") else ("skip" if t.get("result") == "SKIPPED" else "ok")
            rows.append((f'{s["name"]}.{t["name"]}', res, t.get("max_rel_err", "-"), t.get("time", "")))
if not rows and sys.argv[4] == "-*":
    print("GPU tests: none selected (GTEST_FILTER=-*)")
elif not rows:
    print("no test results: nothing built, or the test binary listed no tests (see build.log, cuda_tests.log)")
    failed += 1
else:
    w = max(len(r[0]) for r in rows)
    print(f'{"test":<{w}}  {"result":<6}  {"max rel err":>11}  time')
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:<6}  {r[2]:>11}  {r[3]}")
    print(f"{len(rows)} tests: {sum(r[1]=='ok' for r in rows)} ok, {sum(r[1]=='FAIL' for r in rows)} failed, "
          f"{sum(r[1]=='skip' for r in rows)} skipped")

train = Path(sys.argv[2])
if sys.argv[2] != "-":
    def metrics(run):
        p = train / run / "metrics.jsonl"
        rows = [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []
        for r in rows:  # a non-finite loss is written as null
            for k in ("loss", "val_loss", "tokens_per_s"):
                if k in r and r[k] is None:
                    r[k] = float("nan")
        return rows
    def weights(run, step):
        p = train / run / "ckpt" / f"step-{step:07d}" / "model.safetensors"
        return p.read_bytes() if p.exists() else None
    a, b, c, d, e, f = (metrics(r) for r in "ABCDEF")
    checks = []
    def check(name, ok, detail):
        checks.append((name, "ok" if ok else "FAIL", detail))
    n = int(sys.argv[3])
    if len(a) == n:  # 40 steps: the loss falls by more than 1 nat; a shorter run: it falls
        k = min(5, n // 4)
        first, last = sum(x["loss"] for x in a[:k]) / k, sum(x["loss"] for x in a[-k:]) / k
        check("train --device cuda: loss falls", last < first - (1.0 if n >= 40 else 0.0),
              f"loss {first:.3f} -> {last:.3f}, val {a[-1].get('val_loss', float('nan')):.3f}, "
              f"{sum(x['tokens_per_s'] for x in a[-(n // 4):]) / (n // 4):,.0f} tok/s")
    else:
        check("train --device cuda: loss falls", False, f"{len(a)} of {n} steps logged")
    wa, wb = weights("A", n), weights("B", n)
    check("GPU resume = uninterrupted (bytes)", wa is not None and wa == wb,
          f"model.safetensors at step {n} " + ("identical" if wa and wa == wb else "differ or missing"))
    ok = len(c) == n and all(x["loss"] == y["loss"] for x, y in zip(a[:n // 2], c[:n // 2]))
    gap = abs(c[-1].get("val_loss", 0) - a[-1].get("val_loss", 0)) if ok else float("nan")
    check("GPU -> CPU -> GPU resume", ok and gap < 0.1 * a[-1].get("val_loss", 1),
          f"{len(c)} steps; val loss {c[-1].get('val_loss', float('nan')) if c else float('nan'):.4f} "
          f"vs GPU-only {a[-1].get('val_loss', float('nan')) if a else float('nan'):.4f}")
    if len(d) == n // 4 and len(e) == n // 4:
        errs = [abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(d, e)]
        err = max(errs) if all(v == v for v in errs) else float("nan")  # max() can skip a NaN
        check(f"fp32 GPU vs CPU, {n // 4} steps", err < 1e-3, f"max loss rel diff {err:.2e}")
    else:
        check(f"fp32 GPU vs CPU, {n // 4} steps", False, f"cpu {len(d)}, gpu {len(e)} steps logged")
    if (train / "F").exists():  # bf16 both: the same curve within bf16 noise, not the same bytes
        if len(f) == n and len(a) == n:
            la, lf = sum(x["loss"] for x in a[-5:]) / 5, sum(x["loss"] for x in f[-5:]) / 5
            check("--attention cudnn tracks flash", abs(lf - la) < 0.05 * la,
                  f"last-5 mean loss {lf:.4f} vs {la:.4f}, {sum(x['tokens_per_s'] for x in f[-(n // 4):]) / (n // 4):,.0f} tok/s")
        else:
            check("--attention cudnn tracks flash", False, f"{len(f)} of {n} steps logged")
    w = max(len(x[0]) for x in checks)
    print(f'\n{"training check":<{w}}  result  detail')
    for n, r, det in checks:
        print(f"{n:<{w}}  {r:<6}  {det}")
    failed += sum(x[1] == "FAIL" for x in checks)
sys.exit(1 if failed else 0)
PY
[ -n "$bench_lines" ] && printf '\n%s\n' "$bench_lines"
[ -n "$dist_line" ] && printf '\n%s\n' "$dist_line"
exit "$status"
