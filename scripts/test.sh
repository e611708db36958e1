#!/usr/bin/env bash
# Runs every test: installs dependencies, builds, checks the C++ style (.clang-format), then the C++ unit tests (ctest), the
# reference/e2e tests against PyTorch, transformers and tokenizers (pytest), and the GPU tests on
# the CPU emulator of tests/cuda/emu (scripts/cuda-emu-check.sh; CUDA_EMU=0 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export MINDLLM_BIN="$PWD/${BUILD_DIR:-build}/mindllm"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
status=0
bash scripts/check-format.sh || status=1
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j 2) || status=1
python3 -m pytest -q tests/reference tests/e2e || status=1
if [ "${CUDA_EMU:-1}" = 1 ]; then
  bash scripts/cuda-emu-check.sh || status=1
fi
exit $status
