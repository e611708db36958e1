#!/usr/bin/env bash
# GPU training benchmark (issue 8): for each shape, `mindllm train --device cuda` and the PyTorch
# peer (torch_train.py: fp32 master weights, bf16 autocast, SDPA flash, fused AdamW, torch.compile)
# train the identical model back to back on the same GPU, on random tokens. Prints tokens/s, MFU
# (GPU.md's formula, over 989 TFLOP/s) and the ratio, one final line per shape. Records nothing:
# copy results into docs/benchmarks.md by hand, with the date and machine.
#
# Shapes (GPU.md): llama-1.3b (seq 2048, micro-batch 8), llama-3b (2048 x 4), gpt2-124m
# (1024 x 64), llama-124m (1024 x 64). The model is defined once, in torch_train.py
# (--print-config writes the Hugging Face config.json that both sides read).
#
# Sized for a short GPU session: the three default shapes with 2 warmup + 6 timed steps take
# about 4 minutes on an H200 (most of it PyTorch's compilation and model set-up).
#
# Environment:
#   SHAPES / SHAPE   shapes to run (default "llama-1.3b llama-3b gpt2-124m")
#   WARMUP, STEPS    untimed and timed steps (default 2 and 6)
#   BATCH            micro-batch for every shape instead of the shape's own (e.g. 2 for llama-3b
#                    on an 80 GB H100 if it runs out of memory)
#   MINDLLM_ARGS     extra `mindllm train` flags, e.g. "--recompute" (llama-3b on an 80 GB H100)
#   ATTENTION        mindllm's attention implementations to time, each against the same PyTorch
#                    run: "flash" (default), "cudnn", or "flash cudnn" (a line per shape and
#                    implementation, labelled shape/impl)
#   COMPILE          regional (default) | full | none (PyTorch eager, GPU.md's eager peer)
#   IMPL             plain (default) | hf (transformers' LlamaForCausalLM / GPT2LMHeadModel)
#   MINDLLM_BIN      mindllm binary to time (default build/mindllm if present); BUILD=1 builds one
#                    in BUILD_DIR (default build-train-gpu) first
#   SKIP_MINDLLM=1 / SKIP_TORCH=1
#   MINDLLM_TIMEOUT, TORCH_TIMEOUT   seconds per run (default 240 and 300)
#   RESULTS_DIR      copy each side's JSON and log there (e.g. $OUT on the GPU machine)
#   TINY=1           smoke test of the harness without a GPU: each shape's family at 2 layers x 128,
#                    seq 64, batch 2; PyTorch on TORCH_DEVICE (default cpu, eager), mindllm on
#                    MINDLLM_DEVICE (default cuda; cpu exercises the whole mindllm path)
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=bench/train_gpu
SHAPES=${SHAPES:-${SHAPE:-"llama-1.3b llama-3b gpt2-124m"}}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-6}
TINY_ARG=()
if [ "${TINY:-0}" = 1 ]; then
  TINY_ARG=(--tiny)
  TORCH_DEVICE=${TORCH_DEVICE:-cpu}
  COMPILE=${COMPILE:-none}
fi
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
MINDLLM_DEVICE=${MINDLLM_DEVICE:-cuda}
COMPILE=${COMPILE:-regional}
IMPL=${IMPL:-plain}
ATTENTION=${ATTENTION:-flash}
MINDLLM_TIMEOUT=${MINDLLM_TIMEOUT:-240}
TORCH_TIMEOUT=${TORCH_TIMEOUT:-300}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mindllm-bench-train-gpu.XXXXXX")
MINDLLM_PID=""
cleanup() {
  if [ -n "$MINDLLM_PID" ]; then kill -9 "$MINDLLM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if command -v nvidia-smi >/dev/null; then
  echo "== $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)" >&2
fi

# The mindllm side: a binary that starts (its shared libraries found), or a reason to skip it.
MINDLLM=""
MINDLLM_SKIP=""
if [ "${SKIP_MINDLLM:-0}" = 1 ]; then
  MINDLLM_SKIP="SKIP_MINDLLM=1"
elif [ -n "${MINDLLM_BIN:-}" ]; then
  MINDLLM=$MINDLLM_BIN
elif [ "${BUILD:-0}" = 1 ]; then
  BUILD_DIR=${BUILD_DIR:-build-train-gpu}
  echo "== building mindllm (Release, sm_90) in $BUILD_DIR" >&2
  if { [ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_CUDA_ARCHITECTURES=90 -DMINDLLM_TESTS=OFF >"$WORK/configure.log" 2>&1; } &&
     cmake --build "$BUILD_DIR" --target mindllm -j "$(nproc)" >"$WORK/build.log" 2>&1; then
    MINDLLM=$BUILD_DIR/mindllm
  else
    MINDLLM_SKIP="the build failed: $(tail -n 3 "$WORK"/*.log | tr '\n' ' ' | cut -c1-300)"
  fi
elif [ -x build/mindllm ]; then
  MINDLLM=build/mindllm
else
  MINDLLM_SKIP="no mindllm binary (set MINDLLM_BIN=path or BUILD=1)"
fi
if [ -n "$MINDLLM" ]; then
  if [ ! -x "$MINDLLM" ]; then
    MINDLLM_SKIP="$MINDLLM is not an executable"
    MINDLLM=""
  elif missing=$(ldd "$MINDLLM" 2>/dev/null | grep "not found" | awk '{print $1}' | tr '\n' ' ') && [ -n "$missing" ]; then
    MINDLLM_SKIP="$MINDLLM cannot start, libraries not found: $missing(LD_LIBRARY_PATH?)"
    MINDLLM=""
  else
    echo "== $("$MINDLLM" --version 2>&1 | head -1)" >&2
  fi
fi
[ -n "$MINDLLM_SKIP" ] && echo "mindllm: skipped: $MINDLLM_SKIP" >&2

# Runs `mindllm train --device cuda` for one shape; writes $dir/mindllm.json on success. The
# process is stopped (SIGKILL) once the last step's metrics line is written: the final checkpoint
# (weights and AdamW moments: ~35 GB for 3B) is not part of the benchmark, and an interrupted
# checkpoint write leaves only a temporary directory (checkpoints are renamed into place).
run_mindllm() {
  local shape=$1 dir=$2 batch=$3 seq=$4 vocab=$5 fpt=$6
  local total=$((WARMUP + STEPS)) metrics=$dir/run/metrics.jsonl start=$SECONDS
  python3 bench/bench_tools.py shards "$dir/data" --vocab "$vocab"
  echo "== mindllm train --device $MINDLLM_DEVICE: $shape, batch $batch x seq $seq, $WARMUP warmup + $STEPS timed steps" >&2
  "$MINDLLM" train --model "$dir/config.json" --data "$dir/data" --out "$dir/run" --device "$MINDLLM_DEVICE" \
    --steps "$total" --batch "$batch" --seq "$seq" --lr 3e-4 --warmup 2 --eval-batches 1 --log-every 1 \
    ${ATTENTION_ARGS:-} ${MINDLLM_ARGS:-} >"$dir/mindllm.log" 2>&1 &
  MINDLLM_PID=$!
  while kill -0 "$MINDLLM_PID" 2>/dev/null; do
    if [ -f "$metrics" ] && [ "$(grep -c . "$metrics")" -ge "$total" ]; then
      kill -9 "$MINDLLM_PID" 2>/dev/null || true
      break
    fi
    if [ $((SECONDS - start)) -ge "$MINDLLM_TIMEOUT" ]; then
      echo "mindllm: $shape: no result after ${MINDLLM_TIMEOUT}s, stopped" >&2
      kill -9 "$MINDLLM_PID" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  wait "$MINDLLM_PID" 2>/dev/null || true
  MINDLLM_PID=""
  tail -n 4 "$dir/mindllm.log" >&2
  if [ -f "$metrics" ] && [ "$(grep -c . "$metrics")" -gt "$WARMUP" ]; then
    python3 bench/bench_tools.py metrics "$metrics" --warmup "$WARMUP" --flops-per-token "$fpt" >"$dir/mindllm.json"
    cat "$dir/mindllm.json" >&2
  else
    local why
    why=$(grep -v '^\s*$' "$dir/mindllm.log" | tail -n 1 | cut -c1-200)
    echo "mindllm: $shape: no timed steps (${why:-no output})" >&2
    # A binary without the CUDA training path answers the same for every shape.
    if grep -qi "no CUDA training backend\|no usable GPU\|--device cuda.*not\|unknown.*device" "$dir/mindllm.log"; then
      MINDLLM_SKIP="no CUDA training path in this binary: $why"
      MINDLLM=""
    fi
  fi
  rm -rf "$dir/run" "$dir/data"
}

run_torch() {
  local shape=$1 dir=$2 batch=$3 seq=$4
  echo "== PyTorch ($IMPL, compile=$COMPILE): $shape, batch $batch x seq $seq, $WARMUP warmup + $STEPS timed steps" >&2
  if timeout "$TORCH_TIMEOUT" python3 $BENCH/torch_train.py --shape "$shape" --config "$dir/config.json" \
       "${TINY_ARG[@]}" --device "$TORCH_DEVICE" --batch "$batch" --seq "$seq" --warmup "$WARMUP" --steps "$STEPS" --compile "$COMPILE" --impl "$IMPL" \
       >"$dir/torch.json" 2>"$dir/torch.log"; then
    cat "$dir/torch.json" >&2
  else
    echo "pytorch: $shape failed (exit $?): $(grep -v '^\s*$' "$dir/torch.log" | tail -n 3 | tr '\n' ' ' | cut -c1-400)" >&2
    : >"$dir/torch.json"
  fi
}

: >"$WORK/summary.txt"
for shape in $SHAPES; do
  dir=$WORK/$shape
  mkdir -p "$dir"
  python3 $BENCH/torch_train.py --shape "$shape" "${TINY_ARG[@]}" --print-config >"$dir/config.json"
  read -r batch seq vocab fpt < <(python3 $BENCH/torch_train.py --shape "$shape" "${TINY_ARG[@]}" --print-shape)
  batch=${BATCH:-$batch}
  # One mindllm run per attention implementation (ATTENTION), all against one PyTorch run.
  for att in $ATTENTION; do
    : >"$dir/mindllm.json"
    # --attention is a GPU flag (TINY=1 smoke runs may use MINDLLM_DEVICE=cpu).
    ATTENTION_ARGS=""
    [ "$MINDLLM_DEVICE" = cuda ] && ATTENTION_ARGS="--attention $att"
    [ -n "$MINDLLM" ] && run_mindllm "$shape" "$dir" "$batch" "$seq" "$vocab" "$fpt"
    mv "$dir/mindllm.json" "$dir/mindllm-$att.json"
    [ -f "$dir/mindllm.log" ] && cp "$dir/mindllm.log" "$dir/mindllm-$att.log"
  done
  if [ "${SKIP_TORCH:-0}" != 1 ]; then
    run_torch "$shape" "$dir" "$batch" "$seq"
  else
    : >"$dir/torch.json"
  fi
  for att in $ATTENTION; do
    label=$shape
    [ "$ATTENTION" != flash ] && label=$shape/$att
    line=$(python3 bench/bench_tools.py summary "$label" "$dir/mindllm-$att.json" "$dir/torch.json")
    echo "$line" >>"$WORK/summary.txt"
  done
  if [ -n "${RESULTS_DIR:-}" ]; then
    mkdir -p "$RESULTS_DIR/train_gpu-$shape"
    cp "$dir"/*.json "$dir"/*.log "$RESULTS_DIR/train_gpu-$shape/" 2>/dev/null || true
  fi
done

echo
[ -n "$MINDLLM_SKIP" ] && echo "(mindllm skipped: $MINDLLM_SKIP)"
cat "$WORK/summary.txt"
echo "($(date -u +%Y-%m-%d), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo 'no GPU'); warmup $WARMUP, timed $STEPS; pytorch $IMPL, compile $COMPILE)"
