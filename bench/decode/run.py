"""Decode and prefill speed of mindllm against llama.cpp on the same weights, with the memory
bandwidth roofline (issue 20). For each model shape and weight type:

  1. a random-initialised model in the real shape (make_model.py), quantised by mindllm twice:
     `mindllm export --format gguf --type T` (the GGUF llama.cpp runs) and `mindllm quantize --type T`
     (the directory mindllm runs, with the same blocks: both quantise the same fp32 weights with
     ggml's reference quantiser; with --gguf-import, mindllm runs the GGUF file itself);
  2. llama.cpp: `llama-bench -p PROMPT -n DECODE -t THREADS` (built with GGML_NATIVE=ON, see
     docs/benchmarks.md), tokens/s of pp and tg;
  3. mindllm: `mindllm generate --prompt-ids <PROMPT ids> --max-new-tokens DECODE -v`, whose
     verbose line splits prefill and decode (decode after the prompt: tg@PROMPT), and the same
     with a 4-token prompt (tg, as llama-bench's tg from an empty cache); llama-bench runs tg at
     depth 0 and at depth PROMPT (-d) to match;
  4. roofline: bytes read per decoded token (every matrix once, the output projection included,
     plus an f16 K/V cache at the mean context) / the read bandwidth measured by stream.c.

Prints one line per (shape, type, threads) with both engines, their ratio and the fraction of the
roofline each reaches. The machine load (uptime) is printed with it: numbers from a loaded machine
are noisy.

    python3 bench/decode/run.py --mindllm build/mindllm --llama-bench /tmp/llama.cpp/build/bin/llama-bench
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import make_model  # noqa: E402

ROW_BYTES = {"f32": lambda n: 4 * n, "f16": lambda n: 2 * n, "bf16": lambda n: 2 * n,
             "q8_0": lambda n: n // 32 * 34, "q4_0": lambda n: n // 32 * 18,
             # q4_k: 144 bytes per 256; rows that are not whole 256s are q4_0 (as mindllm quantises)
             "q4_k": lambda n: n // 256 * 144 if n % 256 == 0 else n // 32 * 18}


def bytes_per_token(shape, wtype, ctx):
    """Weights read per decoded token (+ an f16 K/V cache of ctx positions)."""
    c = make_model.SHAPES[shape]
    if c["model_type"] == "gpt2":
        C, L, V, H, KV = c["n_embd"], c["n_layer"], c["vocab_size"], 4 * c["n_embd"], c["n_embd"]
        mats = [(3 * C, C), (C, C), (H, C), (C, H)] * L
    else:
        C, L, V, H = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
        KV = C // c["num_attention_heads"] * c["num_key_value_heads"]
        mats = [(C + 2 * KV, C), (C, C), (2 * H, C), (C, H)] * L
    out_type = "q8_0" if wtype in ("q4_0", "q4_k") else wtype  # 4-bit files keep the output projection in q8_0
    total = sum(o * ROW_BYTES[wtype](i) for o, i in mats) + V * ROW_BYTES[out_type](C)
    return total + 2 * L * KV * 2 * ctx


def stream_bandwidth(threads, workdir):
    exe = os.path.join(workdir, "stream")
    src = os.path.join(os.path.dirname(__file__), "stream.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O3", "-march=native", "-fopenmp", src, "-o", exe], check=True)
    out = subprocess.run([exe, str(threads)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"read ([\d.]+) GB/s", out).group(1)) * 1e9


def run_mindllm(binary, model, prompt, decode, threads):
    ids = " ".join(str(1000 + i % 5000) for i in range(prompt))
    cmd = [binary, "generate", "--model", model, "--prompt-ids", ids, "--max-new-tokens", str(decode + 1),
           "--temperature", "0", "--threads", str(threads), "--no-stop-at-eos", "-v"]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    m = re.search(r"prefill \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\), decode \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", err)
    return float(m.group(1)), float(m.group(2))


def run_llama(binary, gguf, prompt, decode, threads, reps):
    """llama-bench: pp<prompt> from an empty cache, tg<decode> at depth 0 and at depth <prompt>."""
    def bench(args):
        cmd = [binary, "-m", gguf, "-t", str(threads), "-r", str(reps), "-o", "json"] + args
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    pp = bench(["-p", str(prompt), "-n", "0"])[0]["avg_ts"]
    tg = {r.get("n_depth", 0): r["avg_ts"] for r in bench(["-p", "0", "-n", str(decode), "-d", f"0,{prompt}"])}
    return pp, tg[0], tg[prompt]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mindllm", default="build/mindllm")
    ap.add_argument("--llama-bench", default="", help="llama.cpp's llama-bench (skipped when empty)")
    ap.add_argument("--shapes", default="gpt2-124m,qwen2-0.5b")
    ap.add_argument("--types", default="q8_0,q4_0")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--workdir", default="/tmp/mindllm-bench-decode")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--gguf-import", action="store_true", help="mindllm runs the GGUF file itself")
    ap.add_argument("--reps", type=int, default=2, help="llama-bench repetitions")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for shape in a.shapes.split(","):
        src = os.path.join(a.workdir, shape)
        if not os.path.exists(os.path.join(src, "model.safetensors")):
            make_model.make(shape, src, a.data)
        for wtype in a.types.split(","):
            gguf = os.path.join(a.workdir, f"{shape}-{wtype}.gguf")
            qdir = os.path.join(a.workdir, f"{shape}-{wtype}")
            if not os.path.exists(gguf):
                subprocess.run([a.mindllm, "export", "--model", src, "--format", "gguf", "--type", wtype, "--out", gguf],
                               check=True, capture_output=True)
            if not a.gguf_import and not os.path.exists(os.path.join(qdir, "model.safetensors")):
                subprocess.run([a.mindllm, "quantize", "--model", src, "--type", wtype, "--out", qdir],
                               check=True, capture_output=True)
            for threads in [int(t) for t in a.threads.split(",")]:
                bw = stream_bandwidth(threads, a.workdir)
                limit = bw / bytes_per_token(shape, wtype, a.prompt + a.decode // 2)
                limit0 = bw / bytes_per_token(shape, wtype, a.decode // 2)
                model = gguf if a.gguf_import else qdir
                load = os.getloadavg()[0]
                pp, tg = run_mindllm(a.mindllm, model, a.prompt, a.decode, threads)
                _, tg0 = run_mindllm(a.mindllm, model, 4, a.decode, threads)
                line = (f"{shape} {wtype} t={threads} load {load:.1f}: read {bw / 1e9:.1f} GB/s; "
                        f"mindllm pp{a.prompt} {pp:.1f} tok/s, tg{a.decode} {tg0:.2f} tok/s "
                        f"({tg0 / limit0:.0%} of roofline {limit0:.1f}), tg{a.decode}@{a.prompt} {tg:.2f} tok/s "
                        f"({tg / limit:.0%} of {limit:.1f})")
                if a.llama_bench:
                    lpp, ltg0, ltg = run_llama(a.llama_bench, gguf, a.prompt, a.decode, threads, a.reps)
                    line += (f"; llama.cpp pp {lpp:.1f}, tg {ltg0:.2f} ({ltg0 / limit0:.0%}), tg@{a.prompt} {ltg:.2f} "
                             f"({ltg / limit:.0%}); mindllm/llama.cpp pp {pp / lpp:.2f}x, tg {tg0 / ltg0:.2f}x, "
                             f"tg@{a.prompt} {tg / ltg:.2f}x")
                print(line + f" (load after {os.getloadavg()[0]:.1f})", flush=True)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
