#!/usr/bin/env bash
# The CUDA backend without a GPU: builds it for the CPU emulator of tests/cuda/emu (README there),
# runs every GPU test (tests/cuda) on it twice — two thread schedules, two poison bytes, since a
# missing barrier shows under one or the other — and then scripts/gpu-check.sh's training checks
# (`mindllm train --device cuda`, GPU resume, GPU -> CPU -> GPU resume, fp32 GPU vs CPU) on a
# shorter run. Part of scripts/test.sh. No substitute for a GPU run: see the README.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${EMU_BUILD_DIR:-build-emu}
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMINDLLM_CUDA_EMU=ON >/dev/null
fi
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
exit $status
