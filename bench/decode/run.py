"""Decode and prefill speed of mindllm against llama.cpp on the same weights, with the memory
bandwidth roofline (issue 20). For each model shape and weight type:

  1. a random-initialised model in the real shape (make_model.py), quantised by mindllm twice:
     `mindllm export --format gguf --type T` (the GGUF llama.cpp runs) and `mindllm quantize --type T`
     (the directory mindllm runs, with the same blocks: both quantise the same fp32 weights with
     ggml's reference quantiser, f16 / bf16 the same rounding; with --gguf-import, mindllm runs the
     GGUF file itself, in the file's type). A shape llama.cpp cannot
     represent (MindLLM-1.3B's local attention: export exits 2) gets mindllm-only rows with the reason;
     fp32 files above 2 GiB are deleted once the run's files are made (--keep-fp32 keeps them);
  2. llama.cpp: `llama-bench -p PROMPT -n DECODE -t THREADS` (built with GGML_NATIVE=ON, see
     docs/benchmarks.md), tokens/s of pp and tg;
  3. mindllm: `mindllm generate --prompt-ids <PROMPT ids> --max-new-tokens DECODE -v`, whose
     verbose line splits prefill and decode (decode after the prompt: tg@PROMPT), and the same
     with a 4-token prompt (tg, as llama-bench's tg from an empty cache); llama-bench runs tg at
     depth 0 and at depth PROMPT (-d) to match;
  4. roofline: bytes read per decoded token (every matrix once, the output projection included,
     plus an f16 K/V cache at the mean context; GPT-Neo's local layers: their window) / the read
     bandwidth measured by stream.c (tests/e2e/test_bench_decode_shapes.py checks the weight bytes
     against the GGUF files).

Prints one line per (shape, type, threads) with both engines, their ratio and the fraction of the
roofline each reaches. The machine load (uptime) is printed with it: numbers from a loaded machine
are noisy.

    python3 bench/decode/run.py --mindllm build/mindllm --llama-bench /work/llama.cpp-build/bin/llama-bench \
        --shapes gpt2-124m,qwen2-0.5b,tinyllama-1.1b,mindllm-1.3b-global,mindllm-1.3b --types q8_0,q4_0,bf16,f16
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


def matrices(c):
    """(out, in) of every matrix a decoded token multiplies by, without the output projection."""
    if c["model_type"] == "gpt2":
        C, L = c["n_embd"], c["n_layer"]
        return [(3 * C, C), (C, C), (4 * C, C), (C, 4 * C)] * L
    if c["model_type"] == "gpt_neo":
        C, L, H = c["hidden_size"], c["num_layers"], c["intermediate_size"]
        return [(3 * C, C), (C, C), (H, C), (C, H)] * L
    C, L, H = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    KV = C // c["num_attention_heads"] * c["num_key_value_heads"]
    return [(C + 2 * KV, C), (C, C), (2 * H, C), (C, H)] * L


def kv_positions(c, ctx):
    """(K/V width, positions attention reads) per layer at context ctx (GPT-Neo's local layers: a window)."""
    if c["model_type"] == "gpt2":
        return [(c["n_embd"], ctx)] * c["n_layer"]
    if c["model_type"] == "gpt_neo":
        kinds = [k for kinds, rep in c["attention_types"] for _ in range(rep) for k in kinds]
        return [(c["hidden_size"], min(ctx, c["window_size"]) if k == "local" else ctx) for k in kinds]
    KV = c["hidden_size"] // c["num_attention_heads"] * c["num_key_value_heads"]
    return [(KV, ctx)] * c["num_hidden_layers"]


KV_BYTES = {"auto": 2, "bf16": 2, "f16": 2, "f32": 4, "q8_0": 34 / 32}  # bytes per cached value


def bytes_per_token(shape, wtype, ctx, kv="auto"):
    """Weights read per decoded token (+ a K/V cache of ctx positions: bf16 / f16 unless kv says)."""
    c = make_model.SHAPES[shape]
    C = c.get("n_embd", c.get("hidden_size"))
    out_type = "q8_0" if wtype in ("q4_0", "q4_k") else wtype  # 4-bit files keep the output projection in q8_0
    total = sum(o * ROW_BYTES[wtype](i) for o, i in matrices(c)) + c["vocab_size"] * ROW_BYTES[out_type](C)
    return total + sum(2 * width * KV_BYTES[kv] * n for width, n in kv_positions(c, ctx))


def stream_bandwidth(threads, workdir):
    exe = os.path.join(workdir, "stream")
    src = os.path.join(os.path.dirname(__file__), "stream.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O3", "-march=native", "-fopenmp", src, "-o", exe], check=True)
    out = subprocess.run([exe, str(threads)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"read ([\d.]+) GB/s", out).group(1)) * 1e9


def run_mindllm(binary, model, prompt, decode, threads, reps, kv="auto"):
    """(prefill, decode) tokens/s, each the best of reps runs (llama.cpp's too: run_llama)."""
    ids = " ".join(str(1000 + i % 5000) for i in range(prompt))
    cmd = [binary, "generate", "--model", model, "--prompt-ids", ids, "--max-new-tokens", str(decode + 1),
           "--temperature", "0", "--threads", str(threads), "--no-stop-at-eos", "--kv-cache", kv, "-v"]
    best = (0.0, 0.0)
    for _ in range(reps):
        err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
        m = re.search(r"prefill \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\), decode \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", err)
        best = (max(best[0], float(m.group(1))), max(best[1], float(m.group(2))))
    return best


def run_llama(binary, gguf, prompt, decode, threads, reps, kv="auto"):
    """llama-bench: pp<prompt> from an empty cache, tg<decode> at depth 0 and at depth <prompt>.
    Returns (pp, tg0, tg, note). Where llama-bench dies of a signal (its AMX q8_0 / q4_0 path
    raised SIGILL on a Sapphire Rapids VM, 2026-12-07) it runs again with --repack 0, as a user
    would, and the note says so. kv other than auto: the cache type of K and V (-ctk, -ctv)."""
    extra, cache = [], [] if kv == "auto" else ["-ctk", kv, "-ctv", kv]

    def bench(args):
        cmd = [binary, "-m", gguf, "-t", str(threads), "-r", str(reps), "-o", "json"] + cache + extra + args
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode < 0 and not extra:
            extra.extend(["--repack", "0"])
            return bench(args)
        if r.returncode:
            raise subprocess.CalledProcessError(r.returncode, cmd, r.stdout, r.stderr)
        return json.loads(r.stdout)
    def best(r):  # the best repetition, as mindllm's (older llama-bench JSON has only the mean)
        return max(r.get("samples_ts") or [r["avg_ts"]])
    pp = best(bench(["-p", str(prompt), "-n", "0"])[0])
    tg = {r.get("n_depth", 0): best(r) for r in bench(["-p", "0", "-n", str(decode), "-d", f"0,{prompt}"])}
    return pp, tg[0], tg[prompt], " [llama.cpp --repack 0: its default died of a signal]" if extra else ""


BIG = 2 << 30  # fp32 files above this are deleted once every file of the run is made (--keep-fp32 keeps them)


def prepare(a, shape):
    """Makes what the run needs of one shape: {type: (gguf or None, mindllm's model or None, note)}."""
    src = os.path.join(a.workdir, shape)
    fp32 = os.path.join(src, "model.safetensors")
    made, runs = False, {}
    for wtype in a.types.split(","):
        gguf = os.path.join(a.workdir, f"{shape}-{wtype}.gguf")
        qdir = os.path.join(a.workdir, f"{shape}-{wtype}")
        refused = os.path.join(a.workdir, f"{shape}-{wtype}.gguf.refused")  # export's one-line reason
        on_gguf = a.gguf_import
        need_q = not on_gguf and not os.path.exists(os.path.join(qdir, "model.safetensors"))
        if (need_q or not (os.path.exists(gguf) or os.path.exists(refused))) and not os.path.exists(fp32):
            print(f"making the fp32 {shape} model in {src} ...", flush=True)
            make_model.make(shape, src, a.data, mindllm=a.mindllm)
            made = True
        if not os.path.exists(gguf) and not os.path.exists(refused):
            cmd = [a.mindllm, "export", "--model", src, "--format", "gguf", "--type", wtype, "--out", gguf]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode == 2:  # a model llama.cpp cannot represent (e.g. GPT-Neo's local attention)
                with open(refused, "w") as f:
                    f.write(r.stderr.strip().splitlines()[-1])
            elif r.returncode:
                sys.exit(f"export {shape} {wtype} failed: {r.stderr.strip()}")
        if need_q:
            subprocess.run([a.mindllm, "quantize", "--model", src, "--type", wtype, "--out", qdir],
                           check=True, capture_output=True)
        note = open(refused).read().strip() if os.path.exists(refused) else ""
        have_gguf = gguf if not note else None
        runs[wtype] = (have_gguf, have_gguf if on_gguf else qdir, note)
    if (made or os.path.exists(fp32)) and os.path.getsize(fp32) > BIG and not a.keep_fp32:
        os.remove(fp32)  # made again (same seed, same bits) when a later run needs another type
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mindllm", default="build/mindllm")
    ap.add_argument("--llama-bench", default="", help="llama.cpp's llama-bench (skipped when empty)")
    ap.add_argument("--shapes", default="gpt2-124m,qwen2-0.5b", help=f"of {','.join(make_model.SHAPES)}")
    ap.add_argument("--types", default="q8_0,q4_0", help=f"of {','.join(ROW_BYTES)}")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--workdir", default="/tmp/mindllm-bench-decode")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--gguf-import", action="store_true", help="mindllm runs the GGUF file itself")
    ap.add_argument("--keep-fp32", action="store_true", help=f"keep fp32 model files above {BIG >> 30} GiB")
    ap.add_argument("--reps", type=int, default=2, help="repetitions; each engine's best counts")
    ap.add_argument("--make-only", action="store_true", help="make the models and files, measure nothing")
    ap.add_argument("--kv-cache", default="auto", choices=["auto", "f32", "bf16", "q8_0"],
                    help="K/V cache type of both engines (auto: mindllm's bf16, llama.cpp's f16)")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for shape in a.shapes.split(","):
        runs = prepare(a, shape)
        if a.make_only:
            continue
        for wtype, (gguf, model, note) in runs.items():
            if note:
                print(f"{shape} {wtype}: no GGUF, so no llama.cpp row ({note})", flush=True)
            if not model:
                print(f"{shape} {wtype}: mindllm has no {wtype} weights and no GGUF to run: skipped", flush=True)
                continue
            for threads in [int(t) for t in a.threads.split(",")]:
                bw = stream_bandwidth(threads, a.workdir)
                limit = bw / bytes_per_token(shape, wtype, a.prompt + a.decode // 2, a.kv_cache)
                limit0 = bw / bytes_per_token(shape, wtype, a.decode // 2, a.kv_cache)
                load = os.getloadavg()[0]
                pp, tg = run_mindllm(a.mindllm, model, a.prompt, a.decode, threads, a.reps, a.kv_cache)
                _, tg0 = run_mindllm(a.mindllm, model, 4, a.decode, threads, a.reps, a.kv_cache)
                line = (f"{shape} {wtype} t={threads} load {load:.1f}: read {bw / 1e9:.1f} GB/s; "
                        f"mindllm pp{a.prompt} {pp:.1f} tok/s, tg{a.decode} {tg0:.2f} tok/s "
                        f"({tg0 / limit0:.0%} of roofline {limit0:.1f}), tg{a.decode}@{a.prompt} {tg:.2f} tok/s "
                        f"({tg / limit:.0%} of {limit:.1f})")
                if a.llama_bench and gguf:
                    lpp, ltg0, ltg, lnote = run_llama(a.llama_bench, gguf, a.prompt, a.decode, threads, a.reps,
                                                      a.kv_cache)
                    line += (f"; llama.cpp pp {lpp:.1f}, tg {ltg0:.2f} ({ltg0 / limit0:.0%}), tg@{a.prompt} {ltg:.2f} "
                             f"({ltg / limit:.0%}); mindllm/llama.cpp pp {pp / lpp:.2f}x, tg {tg0 / ltg0:.2f}x, "
                             f"tg@{a.prompt} {tg / ltg:.2f}x{lnote}")
                print(line + f" (load after {os.getloadavg()[0]:.1f})", flush=True)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
