#!/usr/bin/env bash
# The one command for the GPU machine: builds the CUDA backend there, runs every GPU test (each
# CUDA op against its CPU twin, docs/cuda.md) and prints a short table last. Sized to finish in
# about 8 minutes on a 16-core H100/H200 machine (build ~1-2 min, tests ~1-2 min).
#
#   bash scripts/gpu-check.sh                    # build-gpu/, results in $OUT or build-gpu/
#   SANITIZE=1 bash scripts/gpu-check.sh         # also one pass under compute-sanitizer memcheck
#   GTEST_FILTER='CudaAttention*' bash scripts/gpu-check.sh
#
# It builds tests/cuda/CMakeLists.txt, a standalone project with only the CUDA kernels, the CPU
# kernels they are checked against and GoogleTest: the machine lacks the data pipeline's packages
# that the full project needs. It has no internet; GoogleTest (or OpenBLAS headers), if missing
# there, can travel as Debian packages in .deps/*.deb (docs/cuda.md), unpacked to /tmp, never
# over /. cuDNN and NCCL (not used yet) exist there only inside pip's `nvidia` package, so those
# folders are handed to CMake.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-gpu}
RESULT_DIR=${OUT:-$BUILD_DIR}
mkdir -p "$RESULT_DIR"
t0=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
nvcc --version 2>/dev/null | tail -1 || true

prefix=()
NV=$(python3 -c "import nvidia; print(nvidia.__path__[0])" 2>/dev/null || true)
if [ -n "$NV" ]; then
  for d in cudnn nccl cublas cuda_runtime; do [ -d "$NV/$d" ] && prefix+=("$NV/$d"); done
  echo "pip nvidia packages: $NV"
fi
if compgen -G ".deps/*.deb" >/dev/null; then
  for f in .deps/*.deb; do dpkg -x "$f" /tmp/mindllm-deps; done
  prefix+=(/tmp/mindllm-deps/usr)
  export LD_LIBRARY_PATH=/tmp/mindllm-deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  echo "unpacked $(ls .deps/*.deb | wc -l) carried packages into /tmp/mindllm-deps"
fi
prefix_path=$(IFS=';'; echo "${prefix[*]:-}")

echo "== configure + build ($BUILD_DIR, sm_90)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if ! cmake -S tests/cuda -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$prefix_path" >"$RESULT_DIR/configure.log" 2>&1; then
  tail -20 "$RESULT_DIR/configure.log"
  echo "configure failed (GoogleTest or OpenBLAS missing? docs/cuda.md: carry them in .deps/)"
  exit 1
fi
if ! cmake --build "$BUILD_DIR" --target mindllm_cuda_tests -j "$(nproc)" >"$RESULT_DIR/build.log" 2>&1; then
  grep -E "error|Error" "$RESULT_DIR/build.log" | head -30
  echo "build failed (full log: $RESULT_DIR/build.log)"
  exit 1
fi
t1=$(date +%s)
echo "built in $((t1 - t0)) s"

echo "== GPU tests"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
filter=${GTEST_FILTER:-*}
timeout 360 "$BUILD_DIR/mindllm_cuda_tests" --gtest_filter="$filter" \
  --gtest_output="json:$RESULT_DIR/cuda_tests.json" >"$RESULT_DIR/cuda_tests.log" 2>&1
status=$?
[ $status = 124 ] && echo "GPU tests timed out after 360 s"
grep -E "Failure|rel err|Which is|error|Expected|CUDA" "$RESULT_DIR/cuda_tests.log" | head -60
t2=$(date +%s)

sanitize_note="not run (SANITIZE=1 runs it)"
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  echo "== compute-sanitizer memcheck"
  if timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "$BUILD_DIR/mindllm_cuda_tests" \
       --gtest_filter="$filter" >"$RESULT_DIR/memcheck.log" 2>&1; then
    sanitize_note="clean"
  else
    sanitize_note="FAILED (see $RESULT_DIR/memcheck.log)"
    grep -m 20 -E "Invalid|ERROR SUMMARY" "$RESULT_DIR/memcheck.log"
    status=1
  fi
fi

echo
echo "== summary: build $((t1 - t0)) s, tests $((t2 - t1)) s, memcheck: $sanitize_note"
python3 - "$RESULT_DIR/cuda_tests.json" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no test results ({e}): the test binary crashed or timed out; see cuda_tests.log")
    sys.exit(0)
rows = []
for suite in doc.get("testsuites", []):
    for t in suite.get("testsuite", []):
        res = "FAIL" if t.get("failures") else ("skip" if t.get("result") == "SKIPPED" else "ok")
        rows.append((f'{suite["name"]}.{t["name"]}', res, t.get("max_rel_err", "-"), t.get("time", "")))
w = max(len(r[0]) for r in rows) if rows else 10
print(f'{"test":<{w}}  {"result":<6}  {"max rel err":>11}  time')
for r in rows:
    print(f"{r[0]:<{w}}  {r[1]:<6}  {r[2]:>11}  {r[3]}")
n_fail = sum(r[1] == "FAIL" for r in rows)
print(f"{len(rows)} tests: {sum(r[1]=='ok' for r in rows)} ok, {n_fail} failed, {sum(r[1]=='skip' for r in rows)} skipped")
PY
exit "$status"
