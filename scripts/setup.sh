#!/usr/bin/env bash
# Installs everything mindllm needs to build, test and run its demo on a fresh Debian machine.
# Idempotent: a second run installs nothing. Needs root (or sudo) for the Debian packages.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libopenblas-openmp-dev libdnnl-dev libomp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
  clang                                   # libFuzzer targets (tests/fuzz)
  clang-format                            # the C++ style (.clang-format), checked by scripts/check-format.sh
  libpcre2-dev                            # regex engine (src/core/regex.h): tokenizer Split regexes, eval filters
  zlib1g-dev libzstd-dev libopencc-dev libopencc-data libyaml-cpp-dev  # data pipeline (src/data)
  bible-kjv bible-kjv-text fortunes-zh     # the demo's embedded default corpus (English + Chinese)
  libcpp-httplib-dev                      # HTTP server (mindllm serve)
  libopenmpi-dev openmpi-bin iproute2     # data-parallel training (mpirun; tests/e2e/test_dist.py's namespaces)
  chromium chromium-driver                # headless Chromium: tests/e2e/test_serve_web.py (chat page), test_report.py
  librsvg2-dev                            # mindllm report: its SVG plots rasterized to PNG (librsvg + cairo)
)
PIP_PACKAGES=(
  "numpy" "torch" "transformers" "tokenizers" "tiktoken" "safetensors" "pytest" "lm-eval" "accelerate"
  "datasketch"
  "gguf"  # interop tests (GGUF export)
  "jinja2"  # chat-template golden tests (transformers' apply_chat_template renders with it)
  "openai"  # tests/e2e/test_serve.py: the official client against mindllm serve
  "selenium"  # tests/e2e/test_serve_web.py drives Debian's chromium through chromium-driver
  "pillow"  # tests/e2e/test_report*.py: reads the report's PNGs and Chromium's screenshots
  "peft"  # LoRA parity tests (tests/reference/test_lora_parity.py): PEFT adapters, forward, merge
  "scipy"  # recipes/sft-selection/results.py: Welch's t-test between arms (also an lm-eval dependency)
)

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ "${MINDLLM_SKIP_PIP:-0}" != 1 ]; then
  need_pip=0
  for p in "${PIP_PACKAGES[@]}"; do
    $PY -m pip show -q "$p" >/dev/null 2>&1 || need_pip=1
  done
  if [ $need_pip = 1 ]; then
    echo "setup: installing PyPI packages: ${PIP_PACKAGES[*]}"
    $PY -m pip install -q --disable-pip-version-check --root-user-action=ignore "${PIP_PACKAGES[@]}"
  fi
  # The cuDNN frontend's headers (a wheel; with torch's nvidia-cudnn-cu13 they let the CUDA build
  # compile --attention cudnn). Optional: without them the build leaves that path out, saying so.
  $PY -m pip show -q nvidia-cudnn-frontend >/dev/null 2>&1 || $PY -m pip install -q --only-binary=:all: --disable-pip-version-check --root-user-action=ignore nvidia-cudnn-frontend || echo "setup: nvidia-cudnn-frontend could not be installed; the CUDA build will have no cuDNN attention"
  # llama.cpp's Python binding builds llama.cpp from source (minutes; pip caches the wheel). Optional:
  # the GGUF-in-llama.cpp tests skip, saying so, when it cannot be installed.
  $PY -m pip show -q llama-cpp-python >/dev/null 2>&1 || CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $PY -m pip install -q --disable-pip-version-check --root-user-action=ignore llama-cpp-python || echo "setup: llama-cpp-python could not be installed; llama.cpp tests will skip"
  # Its OpenAI server's extras (fastapi, uvicorn, sse-starlette, ...): only bench/serve's peer uses
  # them. Optional: the benchmark skips that peer, saying so, without them.
  if $PY -m pip show -q llama-cpp-python >/dev/null 2>&1 && ! $PY -c "import llama_cpp.server" >/dev/null 2>&1; then
    $PY -m pip install -q --disable-pip-version-check --root-user-action=ignore "llama-cpp-python[server]" || echo "setup: llama-cpp-python's server extras could not be installed; bench/serve skips that peer"
  fi
fi
echo "setup: ok"
