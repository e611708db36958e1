#!/usr/bin/env bash
# The CUDA backend without a GPU: builds it for the CPU emulator of tests/cuda/emu (README there),
# runs every GPU test (tests/cuda) on it twice — two thread schedules, two poison bytes, since a
# missing barrier shows under one or the other — and then scripts/gpu-check.sh's training checks
# (`mindllm train --device cuda`, GPU resume, GPU -> CPU -> GPU resume, fp32 GPU vs CPU) on a
# shorter run. Part of scripts/test.sh. No substitute for a GPU run: see the README.
#   EMU_ASAN=1 bash scripts/cuda-emu-check.sh   # the same under AddressSanitizer (build-emu-asan,
#                                               # ~10 min more to build): kernels' out-of-bounds accesses
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EMU_ASAN:-0}" = 1 ]; then
  BUILD=${EMU_BUILD_DIR:-build-emu-asan}
  # Release, as scripts/gpu-check.sh configures it again (its training checks run here too)
  flags=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=-fsanitize=address -fno-omit-frame-pointer -g"
         -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
else
  BUILD=${EMU_BUILD_DIR:-build-emu}
  flags=(-DCMAKE_BUILD_TYPE=Release)
fi
# Configured every time (seconds): the flags must be these even in a build directory made before.
cmake -S . -B "$BUILD" -G Ninja "${flags[@]}" -DMINDLLM_CUDA_EMU=ON >/dev/null
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target mindllm mindllm_cuda_tests
status=0
for run in "lockstep ff" "reverse 7f"; do
  read -r schedule poison <<<"$run"
  echo "== GPU tests on the CPU emulator: schedule $schedule, poison 0x$poison"
  MINDLLM_EMU_SCHEDULE=$schedule MINDLLM_EMU_POISON=$poison OMP_NUM_THREADS=1 \
    ctest --test-dir "$BUILD" -L cuda -j "${JOBS:-$(nproc)}" --timeout 900 --output-on-failure || status=1
done
echo "== scripts/gpu-check.sh's training checks on the CPU emulator"
BUILD_DIR=$BUILD TRAIN_STEPS=8 TRAIN_BATCH=2 TRAIN_SEQ=32 GTEST_FILTER=-* BUDGET=900 OMP_NUM_THREADS=2 \
  bash scripts/gpu-check.sh || status=1

# same_losses LABEL CPU_METRICS GPU_METRICS: 3 logged losses each, equal to 1e-5 relative.
same_losses() {
  python3 - "$2" "$3" "$1" <<'PY'
import json, sys
def losses(p):
    try:
        return [json.loads(l)["loss"] for l in open(p) if l.strip()]
    except OSError:
        return []
cpu, gpu = losses(sys.argv[1]), losses(sys.argv[2])
ok = len(cpu) == len(gpu) == 3 and all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(cpu, gpu))
print(f"{sys.argv[3]:<11} {'ok' if ok else 'FAIL':<5} cpu {cpu} | cuda {gpu}")
sys.exit(0 if ok else 1)
PY
}

# The other two families through the CLI, with gradient accumulation and --recompute: 3 steps
# in fp32 on the emulated GPU must log the CPU's losses (to 1e-5), on gpu-check.sh's data.
echo "== train --device cuda, fp32, every family: losses against the CPU"
W=/tmp/mindllm-train-check
for model in tiny-gpt2 tiny-neo tiny-llama; do
  for dev in cpu cuda; do
    rm -rf "$W/fam-$model-$dev"
    extra=()
    [ "$dev" = cuda ] && extra=(--recompute)
    "$BUILD/mindllm" train --model "$model" --data "$W/data" --out "$W/fam-$model-$dev" --batch 2 --seq 32 \
      --grad-accum 2 --steps 3 --lr 3e-3 --warmup 1 --schedule constant --eval-batches 1 --threads 1 \
      --device "$dev" --precision fp32 "${extra[@]}" >"$W/fam-$model-$dev.log" 2>&1 ||
      { echo "$model on $dev failed: $(tail -1 "$W/fam-$model-$dev.log")"; status=1; }
  done
  same_losses "$model" "$W/fam-$model-cpu/metrics.jsonl" "$W/fam-$model-cuda/metrics.jsonl" || status=1
done

# Instruction tuning on the emulated GPU: variable-length padded batches with loss masks and
# NEFTune noise, 3 steps in fp32 must log the CPU's losses (to 1e-5).
echo "== sft --device cuda, fp32, with --neftune-alpha: losses against the CPU"
for i in $(seq 1 40); do printf 'Question %d: what is %d plus %d? Answer: %d.\n' "$i" "$i" "$i" $((2 * i)); done >"$W/sft-text.txt"
for i in $(seq 1 12); do
  printf '{"messages": [{"role": "user", "content": "What is %d plus %d?"}, {"role": "assistant", "content": "%d."}]}\n' "$i" "$i" $((2 * i))
done >"$W/sft.jsonl"
"$BUILD/mindllm" tokenizer train --input "$W/sft-text.txt" --vocab-size 300 --special '<|endoftext|>' \
  --special '<|im_start|>' --special '<|im_end|>' --output "$W/sft-tok.json" --quiet || status=1
for dev in cpu cuda; do
  rm -rf "$W/sft-$dev"
  "$BUILD/mindllm" sft --model "$W/fam-tiny-llama-cpu/ckpt/step-0000003" --tokenizer "$W/sft-tok.json" \
    --data "$W/sft.jsonl" --chat-template chatml --out "$W/sft-$dev" --batch 3 --seq 48 --grad-accum 2 --steps 3 \
    --lr 3e-3 --neftune-alpha 5 --threads 1 --device "$dev" --precision fp32 >"$W/sft-$dev.log" 2>&1 ||
    { echo "sft on $dev failed: $(tail -1 "$W/sft-$dev.log")"; status=1; }
done
same_losses sft "$W/sft-cpu/metrics.jsonl" "$W/sft-cuda/metrics.jsonl" || status=1

# Packed samples on the emulated GPU (position ids through RoPE and the learned position
# embeddings, block-diagonal attention): gpt2 and llama, 3 steps in fp32 = the CPU's losses.
echo "== sft --packing --device cuda, fp32: losses against the CPU"
for model in tiny-gpt2 tiny-llama; do
  for dev in cpu cuda; do
    rm -rf "$W/pack-$model-$dev"
    "$BUILD/mindllm" sft --model "$W/fam-$model-cpu/ckpt/step-0000003" --tokenizer "$W/sft-tok.json" \
      --data "$W/sft.jsonl" --chat-template chatml --out "$W/pack-$model-$dev" --batch 2 --seq 32 --grad-accum 2 \
      --steps 3 --lr 3e-3 --packing --threads 1 --device "$dev" --precision fp32 >"$W/pack-$model-$dev.log" 2>&1 ||
      { echo "sft --packing ($model) on $dev failed: $(tail -1 "$W/pack-$model-$dev.log")"; status=1; }
  done
  same_losses "pack-$model" "$W/pack-$model-cpu/metrics.jsonl" "$W/pack-$model-cuda/metrics.jsonl" || status=1
done
exit $status
