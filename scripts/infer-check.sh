#!/usr/bin/env bash
# The inference engine on the GPU through the CLI (issue 16): for each model directory,
# `generate --device cuda` gives the CPU's greedy tokens, and for the first one `serve --device
# cuda` answers one greedy completion with generate's text. Run by scripts/gpu-check.sh (on a GPU)
# and scripts/cuda-emu-check.sh (on the CPU emulator); a few seconds on a GPU.
#   bash scripts/infer-check.sh BUILD_DIR TOKENIZER MODEL_DIR...
set -uo pipefail
BUILD=$1 TOK=$2
shift 2
status=0
PROMPT="Question 3: what is 3 plus"
gen() {  # model dir, device -> JSON summary on stdout
  "$BUILD/mindllm" generate --model "$1" --tokenizer "$TOK" --prompt "$PROMPT" --max-new-tokens 8 --temperature 0 \
    --threads 1 --device "$2" --json 2>&1
}
for model in "$@"; do
  cpu=$(gen "$model" cpu) cuda=$(gen "$model" cuda)
  python3 - "$model" "$cpu" "$cuda" <<'PY' || status=1
import json, sys
from pathlib import Path
def parse(s):
    try:
        return json.loads(s.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": s.strip()[-300:]}
p = Path(sys.argv[1])
name = p.parent.parent.name if p.parent.name == "ckpt" else p.name  # a run's checkpoint: the run's name
cpu, gpu = parse(sys.argv[2]), parse(sys.argv[3])
ok = "tokens" in cpu and cpu.get("tokens") == gpu.get("tokens") and len(cpu["tokens"]) > 0
print(f"{'gen-' + name:<16} {'ok' if ok else 'FAIL':<5} cpu {cpu.get('tokens', cpu)} | cuda {gpu.get('tokens', gpu)}")
sys.exit(0 if ok else 1)
PY
done

# Quantised weights are refused on the GPU with one line.
msg=$("$BUILD/mindllm" generate --model "$1" --prompt-ids "1 2 3" --weights q8_0 --device cuda 2>&1) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && [[ "$msg" == *"--device cuda"* ]]; then
  echo "gen-cuda-q8_0    ok    $msg"
else
  echo "gen-cuda-q8_0    FAIL  exit $rc: $msg"
  status=1
fi

# One greedy completion from `serve --device cuda` = generate's text on the CPU.
model=$1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$BUILD/mindllm" serve --model "$model" --tokenizer "$TOK" --port "$port" --device cuda --parallel 2 --ctx 64 \
  --threads 1 2>"$log" &
pid=$!
python3 - "$port" "$(gen "$model" cpu)" "$log" <<'PY' || status=1
import json, sys, time, urllib.request
port, cpu, log = int(sys.argv[1]), json.loads(sys.argv[2].strip().splitlines()[-1]), sys.argv[3]
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))
deadline, text = time.time() + 300, None
while time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        break
    except OSError:
        time.sleep(0.2)
try:
    r = post("/v1/completions", {"prompt": "Question 3: what is 3 plus", "max_tokens": 8, "temperature": 0})
    text = r["choices"][0]["text"]
except Exception as e:
    text = f"error: {e}; {open(log).read()[-300:]}"
ok = text == cpu.get("text")
print(f"{'serve-cuda':<16} {'ok' if ok else 'FAIL':<5} {text!r} | generate on the CPU: {cpu.get('text')!r}")
sys.exit(0 if ok else 1)
PY
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -f "$log"
exit $status
