#!/usr/bin/env python3
"""Load benchmark of `mindllm serve` against llama.cpp's server on the same GGUF and threads
(issue 18), loopback only, bounded in clients, tokens and time.

    python3 bench/serve/bench_serve.py --model CKPT_DIR [--threads 2] [--clients 32] [--tokens 64]
        [--mindllm build/mindllm] [--gguf FILE] [--peer llama-cpp-python|none] [--out results.json]

Phases, each against every server (one server runs at a time, on the same cores):
  scaling   1 stream, then 8 concurrent streams (aggregate tokens/s, the ratio: the issue wants >= 3x)
  load      --clients concurrent streaming clients (p50/p99 time to first token, tokens/s aggregate
            and per stream)
Every request is a streamed chat-less completion (`/v1/completions`, temperature 0.8, seed i, the
same prompts on both sides) of --tokens tokens (EOS is not suppressed: tokens are counted from the
usage chunk where the server sends one, else one per text event). The client is raw http.client in threads with minimal parsing, the same for both servers,
so its CPU cost is the same on both sides (it shares the cores with the server).

The peer is llama-cpp-python's OpenAI server (`python -m llama_cpp.server`, same GGUF exported by
`mindllm export --format gguf`, --n_threads = --threads). It needs llama-cpp-python (scripts/setup.sh
builds it) and its server extras, a bench-only install:
    pip install 'llama-cpp-python[server]'   # fastapi, uvicorn, sse-starlette, starlette-context, pydantic-settings
It serves one request at a time (no batching across requests); the table says so.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PROMPTS = ["And God said", "In the beginning", "The LORD is my shepherd", "春眠不觉晓", "床前明月光",
           "And it came to pass", "Blessed are the", "白日依山尽"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench_serve: the server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("bench_serve: the server did not become ready")


def stream_one(port, model, i, tokens, out):
    """One streamed completion; out[i] = (ttft s, tokens, first-to-last s, wall s)."""
    body = json.dumps({"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens,
                       "temperature": 0.8, "seed": i, "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        out[i] = RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
        return
    first = last = usage = None
    n = 0
    buf = b""
    while True:
        data = r.read1(65536)
        if not data:
            break
        buf += data
        *events, buf = buf.split(b"\n\n")
        for e in events:
            if not e.startswith(b"data: ") or e == b"data: [DONE]":
                continue
            j = json.loads(e[6:])
            if j.get("usage") and not j.get("choices"):
                usage = j["usage"]["completion_tokens"]  # exact where the server sends it
            if not j.get("choices"):
                continue
            if j["choices"][0].get("text"):  # one token per event on both servers (text held back: merged)
                now = time.perf_counter()
                first = first or now
                last = now
                n += 1
    c.close()
    end = time.perf_counter()
    out[i] = (first - t0 if first else end - t0, usage if usage is not None else n, (last - first) if first else 0.0,
              end - t0)


def run_clients(port, model, clients, tokens):
    out = [None] * clients
    threads = [threading.Thread(target=stream_one, args=(port, model, i, tokens, out)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for o in out:
        if isinstance(o, Exception) or o is None:
            sys.exit(f"bench_serve: a client failed: {o}")
    return out, wall


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def measure(name, port, model, a):
    res = {"server": name}
    run_clients(port, model, 1, 8)  # warm up
    one, wall1 = run_clients(port, model, 1, a.tokens)
    eight, wall8 = run_clients(port, model, 8, a.tokens)
    res["one_stream_tok_s"] = one[0][1] / wall1
    res["eight_streams_tok_s"] = sum(o[1] for o in eight) / wall8
    res["scaling_8_over_1"] = res["eight_streams_tok_s"] / res["one_stream_tok_s"]
    load, wall = run_clients(port, model, a.clients, a.tokens)
    ttft = [o[0] for o in load]
    res.update({"clients": a.clients, "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99),
                "aggregate_tok_s": sum(o[1] for o in load) / wall, "wall_s": wall,
                "per_stream_tok_s_median": statistics.median(o[1] / o[2] for o in load if o[2] > 0),
                "tokens": sum(o[1] for o in load)})
    print(json.dumps(res), flush=True)
    return res


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_mindllm(a):
    port = free_port()
    p = subprocess.Popen([a.mindllm, "serve", "--model", a.model, "--port", str(port), "--threads", str(a.threads),
                          "--parallel", str(a.clients), "--max-queue", str(4 * a.clients), "--ctx", str(a.ctx)],
                         stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, p, "/health")
        name = os.path.basename(os.path.normpath(a.model))
        return measure("mindllm serve", port, name, a)
    finally:
        stop(p)


def bench_llama_cpp_python(a, gguf):
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as e:
        print(f"bench_serve: peer skipped: llama-cpp-python's server is not installed ({e}); "
              "pip install 'llama-cpp-python[server]'", flush=True)
        return None
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
                          "--port", str(port), "--n_threads", str(a.threads), "--n_threads_batch", str(a.threads),
                          "--n_ctx", str(a.ctx), "--model_alias", "peer"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, p, "/v1/models")
        return measure("llama-cpp-python server (one request at a time)", port, "peer", a)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="mindllm checkpoint directory")
    ap.add_argument("--mindllm", default="build/mindllm")
    ap.add_argument("--gguf", help="the model as GGUF (default: exported with mindllm export into a temp dir)")
    ap.add_argument("--peer", default="llama-cpp-python", choices=["llama-cpp-python", "none"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64, help="tokens per request")
    ap.add_argument("--ctx", type=int, default=256, help="positions per sequence on both servers")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    if not 1 <= a.clients <= 64 or not 1 <= a.tokens <= 512:
        sys.exit("bench_serve: --clients must be in 1..64 and --tokens in 1..512 (a bounded benchmark)")
    print(f"bench_serve: {os.uname().nodename}, load {os.getloadavg()[0]:.2f}, threads {a.threads}", flush=True)
    results = [bench_mindllm(a)]
    if a.peer != "none":
        with tempfile.TemporaryDirectory() as tmp:
            gguf = a.gguf or os.path.join(tmp, "model.gguf")
            if not a.gguf:
                subprocess.run([a.mindllm, "export", "--model", a.model, "--format", "gguf", "--dtype", "f32",
                                "--out", gguf], check=True, stdout=subprocess.DEVNULL)
            peer = bench_llama_cpp_python(a, gguf)
        if peer:
            results.append(peer)
            m = results[0]
            print(f"ratio mindllm / peer: aggregate {m['aggregate_tok_s'] / peer['aggregate_tok_s']:.2f}x, "
                  f"TTFT p50 {peer['ttft_p50_s'] / m['ttft_p50_s']:.2f}x faster", flush=True)
    print(f"bench_serve: load after {os.getloadavg()[0]:.2f}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
