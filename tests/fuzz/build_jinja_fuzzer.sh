#!/usr/bin/env bash
# Builds the Jinja (chat template) libFuzzer target with clang, the engine instrumented too, and
# writes seeds (the built-in and reference-test templates, Qwen3's when the shared data has it).
# Output: ${OUT:-build-fuzz}/fuzz_jinja and ${OUT:-build-fuzz}/seeds_jinja/
#   bash tests/fuzz/build_jinja_fuzzer.sh
#   build-fuzz/fuzz_jinja -max_total_time=120 -max_len=4096 -dict=tests/fuzz/jinja.dict build-fuzz/corpus_jinja build-fuzz/seeds_jinja
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT/seeds_jinja" "$OUT/corpus_jinja"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc"
clang++ $FLAGS src/sft/jinja*.cpp tests/fuzz/fuzz_jinja.cpp -o "$OUT/fuzz_jinja"
python3 - "$OUT/seeds_jinja" <<'PY'
import json, sys
from pathlib import Path
src = Path("tests/reference/test_chat_template.py").read_text()
# The template tables only (the module imports pytest/transformers): exec the part up to CONVERSATIONS.
ns = {}
exec(src[src.index("BUILTINS = {"):src.index("# Conversations:")], ns)
out = Path(sys.argv[1])
for name, (_, _, source) in {**ns["BUILTINS"], **ns["REAL"]}.items():
    (out / f"{name}.jinja").write_text(source, encoding="utf-8")
qwen3 = Path("../shared/data/tokenizers/qwen3/tokenizer_config.json")
if qwen3.exists():
    (out / "qwen3.jinja").write_text(json.loads(qwen3.read_text())["chat_template"], encoding="utf-8")
PY
echo "built $OUT/fuzz_jinja, seeds in $OUT/seeds_jinja"
