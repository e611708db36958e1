#!/usr/bin/env python3
"""Load benchmark of `mindllm serve` against llama.cpp's servers on the same GGUF weights and the
same threads (issue 18), loopback only, bounded in clients, tokens and time.

    python3 bench/serve/bench_serve.py --model CKPT_DIR [--threads 2] [--clients 32] [--tokens 64]
        [--ctx 256] [--mindllm build/mindllm] [--gguf FILE] [--dtype f32|q8_0]
        [--peer llama-server] [--peer llama-cpp-python] [--peer none] [--llama-server PATH]
        [--phases scaling,load,chat] [--repeat 3] [--chat-tokens 400] [--out results.json]

Phases, each against every server (one server runs at a time, on the same cores):
  scaling   1 stream, then 8 concurrent streams, best of --repeat (3) rounds (aggregate tokens/s, the
            ratio: the issue wants >= 3x)
  load      --clients concurrent streaming clients (p50/p99 time to first token, tokens/s aggregate
            and per stream)
  chat      a long conversation's second turn: turn 1 is a --chat-tokens prompt (text of
            ../shared/data's tinyshakespeare, else a made-up text) answered with 32 tokens; turn 2 resends
            it with the answer and a new question. Time to first token of each turn, median of 3
            conversations, one sequence (--parallel 1). mindllm runs twice: with its prefix cache and
            with --no-prefix-cache; llama.cpp's servers keep their own prompt cache (llama-server's
            per-slot cache_prompt, llama-cpp-python's reuse of the previous prompt's prefix).
Every request is a streamed chat-less completion (`/v1/completions`, temperature 0.8, seed i, the
same prompts on every server; the chat phase at temperature 0) of --tokens tokens (EOS is not
suppressed: tokens are counted from the usage the server sends, else one per text event). The
client is raw http.client in threads with minimal parsing, the same for every server, so its CPU
cost is the same on all sides (it shares the cores with the server).

Peers, on the GGUF `mindllm export --format gguf --type DTYPE` writes (mindllm serves the model
directory in the same precision: f32 weights, or its q8_0 blocks with --dtype q8_0):
  llama-server       llama.cpp's own server (--llama-server PATH, default $LLAMA_SERVER or on $PATH;
                     built from the llama.cpp sources of llama-cpp-python's sdist, see
                     docs/benchmarks.md): continuous batching over --parallel = --clients slots,
                     one unified K/V cache of clients x ctx positions (the same budget as mindllm's
                     --parallel x --ctx), f16 K/V (its default), -t/-tb = --threads
  llama-cpp-python   `python -m llama_cpp.server` (bench-only extra, scripts/setup.sh:
                     pip install 'llama-cpp-python[server]'); serves one request at a time
A peer that is not installed is skipped, saying so.
"""
import argparse
import http.client
import json
import os
import shutil
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
CHAT_TEXT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "corpus", "en",
                         "tinyshakespeare.txt")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, path, timeout=300):
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


def stream_completion(port, body):
    """One streamed completion: (ttft s, completion tokens, first-to-last s, wall s, text, prompt tokens)."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
    first = last = usage = None
    n, text, buf = 0, [], b""
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
            if j.get("usage"):
                usage = j["usage"]  # exact where the server sends it (some servers: in the last choice chunk)
            for ch in j.get("choices") or []:
                if ch.get("text"):  # one token per event on every server (held-back text merges)
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    n += 1
                    text.append(ch["text"])
    c.close()
    end = time.perf_counter()
    tokens = usage["completion_tokens"] if usage else n
    return (first - t0 if first else end - t0, tokens, (last - first) if first else 0.0, end - t0, "".join(text),
            usage["prompt_tokens"] if usage else None)


def run_clients(port, model, clients, tokens):
    out = [None] * clients

    def one(i):
        try:
            out[i] = stream_completion(port, {"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens,
                                              "temperature": 0.8, "seed": i})
        except Exception as e:  # noqa: BLE001 (reported below)
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
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


def measure_load(name, port, model, a):
    res = {"server": name, "phase": "load", "load_before": round(os.getloadavg()[0], 2)}
    run_clients(port, model, 1, 8)  # warm up
    if "scaling" in a.phases:
        # Best of --repeat rounds of (1 stream, then 8): a run of a few seconds on a shared machine
        # is easily slowed by another process; the best round is the least disturbed.
        res["one_stream_tok_s"] = res["eight_streams_tok_s"] = 0.0
        for _ in range(a.repeat):
            one, wall1 = run_clients(port, model, 1, a.tokens)
            eight, wall8 = run_clients(port, model, 8, a.tokens)
            res["one_stream_tok_s"] = max(res["one_stream_tok_s"], one[0][1] / wall1)
            res["eight_streams_tok_s"] = max(res["eight_streams_tok_s"], sum(o[1] for o in eight) / wall8)
        res["scaling_8_over_1"] = res["eight_streams_tok_s"] / res["one_stream_tok_s"]
    if "load" in a.phases:
        load, wall = run_clients(port, model, a.clients, a.tokens)
        ttft = [o[0] for o in load]
        res.update({"clients": a.clients, "ttft_p50_s": pct(ttft, 50), "ttft_p99_s": pct(ttft, 99),
                    "aggregate_tok_s": sum(o[1] for o in load) / wall, "wall_s": wall,
                    "per_stream_tok_s_median": statistics.median(o[1] / o[2] for o in load if o[2] > 0),
                    "tokens": sum(o[1] for o in load)})
    res["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res), flush=True)
    return res


def post_json(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = json.loads(r.read())
    c.close()
    return out


def chat_texts(port, tokens, conversations=3):
    """(turn-1 prompt of `tokens` tokens, turn-2 question) per conversation, from a real text where
    there is one; cut to length with mindllm's /tokenize and /detokenize (the same tokenizer as the
    GGUF's)."""
    if os.path.exists(CHAT_TEXT):
        with open(CHAT_TEXT, encoding="utf-8") as f:
            words = f.read().split()
    else:
        words = ("the quick brown fox jumps over the lazy dog while seven wise owls count the silver stars "
                 "above a quiet harbour where old ships rest").split() * 2000
    out, pos = [], 0
    for _ in range(conversations):
        ids = post_json(port, "/tokenize", {"content": " ".join(words[pos:pos + 4 * tokens])})["tokens"]
        turn1 = post_json(port, "/detokenize", {"tokens": ids[:tokens]})["content"]
        pos += 4 * tokens
        out.append((turn1, " ".join(words[pos:pos + 12])))
        pos += 12
    return out


def measure_chat(name, port, model, a):
    """Time to first token of turn 1 and of turn 2 (turn 1 + its answer + a question)."""
    res = {"server": name, "phase": "chat", "load_before": round(os.getloadavg()[0], 2)}
    stream_completion(port, {"model": model, "prompt": "warm up", "max_tokens": 4, "temperature": 0})
    t1, t2, p1, p2 = [], [], [], []
    if not a.chat_texts:  # the first server measured is mindllm's
        a.chat_texts = chat_texts(port, a.chat_tokens)
    for turn1, question in a.chat_texts:
        ttft, _, _, _, answer, pt = stream_completion(port, {"model": model, "prompt": turn1, "max_tokens": 32,
                                                             "temperature": 0})
        t1.append(ttft)
        p1.append(pt)
        ttft, _, _, _, _, pt = stream_completion(port, {"model": model, "prompt": turn1 + answer + "\n\n" + question,
                                                        "max_tokens": 8, "temperature": 0})
        t2.append(ttft)
        p2.append(pt)
    res.update({"turn1_prompt_tokens": p1[0], "turn2_prompt_tokens": p2[0], "turn1_ttft_s": statistics.median(t1),
                "turn2_ttft_s": statistics.median(t2), "load_after": round(os.getloadavg()[0], 2)})
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


def serve_mindllm(a, parallel, ctx, *flags):
    port = free_port()
    p = subprocess.Popen([a.mindllm, "serve", "--model", a.serve_model, "--port", str(port), "--threads", str(a.threads),
                          "--parallel", str(parallel), "--max-queue", str(4 * parallel), "--ctx", str(ctx), *flags],
                         stderr=subprocess.DEVNULL)
    wait_ready(port, p, "/health")
    return p, port, os.path.basename(os.path.normpath(a.serve_model))


def serve_llama_server(a, parallel, ctx):
    port = free_port()
    # Continuous batching over `parallel` slots sharing one K/V cache of parallel x ctx positions.
    p = subprocess.Popen([a.llama_server, "-m", a.gguf_path, "--host", "127.0.0.1", "--port", str(port),
                          "-t", str(a.threads), "-tb", str(a.threads), "-np", str(parallel), "-c", str(parallel * ctx),
                          "--kv-unified", "-cb", "-b", "512", "-ub", "512", "--alias", "peer", "--no-webui"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, p, "/health")
    return p, port, "peer"


def serve_llama_cpp_python(a, parallel, ctx):
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", a.gguf_path, "--host", "127.0.0.1",
                          "--port", str(port), "--n_threads", str(a.threads), "--n_threads_batch", str(a.threads),
                          "--n_ctx", str(ctx), "--model_alias", "peer"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, p, "/v1/models")
    return p, port, "peer"


def peer_available(name, a):
    if name == "llama-server":
        if a.llama_server and os.access(a.llama_server, os.X_OK):
            return True
        print("bench_serve: peer llama-server skipped: no llama-server binary (--llama-server PATH or $LLAMA_SERVER)",
              flush=True)
        return False
    try:
        import llama_cpp.server  # noqa: F401
        return True
    except ImportError as e:
        print(f"bench_serve: peer llama-cpp-python skipped: its server is not installed ({e}); "
              "pip install 'llama-cpp-python[server]'", flush=True)
        return False


def run_servers(a):
    """[(name, start(parallel, ctx))] for every server to measure, mindllm first."""
    servers = [("mindllm serve", lambda par, ctx: serve_mindllm(a, par, ctx))]
    peers = [p for p in a.peer if p != "none" and peer_available(p, a)]
    if "llama-server" in peers:
        servers.append(("llama.cpp llama-server (continuous batching)",
                        lambda par, ctx: serve_llama_server(a, par, ctx)))
    if "llama-cpp-python" in peers:
        servers.append(("llama-cpp-python server (one request at a time)",
                        lambda par, ctx: serve_llama_cpp_python(a, par, ctx)))
    return servers


def bench(a):
    results = []
    servers = run_servers(a)
    if "scaling" in a.phases or "load" in a.phases:
        for name, start in servers:
            p, port, model = start(a.clients, a.ctx)
            try:
                results.append(measure_load(name, port, model, a))
            finally:
                stop(p)
    if "chat" in a.phases:
        ctx = a.chat_tokens + 256  # turn 2: turn 1, 32 answer tokens, a 12-word question, 8 new tokens
        chat = servers[:1] + [("mindllm serve --no-prefix-cache",
                               lambda par, c: serve_mindllm(a, par, c, "--no-prefix-cache"))] + servers[1:]
        for name, start in chat:
            p, port, model = start(1, ctx)
            try:
                results.append(measure_chat(name, port, model, a))
            finally:
                stop(p)
    mine = {r["phase"]: r for r in results if r["server"] == "mindllm serve"}
    for r in results:
        m = mine.get(r["phase"])
        if r["server"] == "mindllm serve" or not m:
            continue
        if r["phase"] == "load" and "aggregate_tok_s" in r:
            print(f"ratio mindllm / {r['server']}: aggregate tokens/s {m['aggregate_tok_s'] / r['aggregate_tok_s']:.2f}x, "
                  f"TTFT p50 {r['ttft_p50_s'] / m['ttft_p50_s']:.2f}x faster", flush=True)
        if r["phase"] == "chat":
            print(f"ratio turn-2 TTFT, {r['server']} / mindllm serve: {r['turn2_ttft_s'] / m['turn2_ttft_s']:.2f}x",
                  flush=True)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="mindllm checkpoint directory")
    ap.add_argument("--mindllm", default="build/mindllm")
    ap.add_argument("--gguf", help="the model as GGUF (default: exported with mindllm export into a temp dir)")
    ap.add_argument("--dtype", default="f32", choices=["f32", "q8_0"],
                    help="weights on every server (q8_0: mindllm serves `mindllm quantize --type q8_0`'s directory)")
    ap.add_argument("--peer", action="append", choices=["llama-server", "llama-cpp-python", "none"],
                    help="peers to run (repeatable; default: both, each where installed)")
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER") or shutil.which("llama-server"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64, help="tokens per request")
    ap.add_argument("--ctx", type=int, default=256, help="positions per sequence on every server")
    ap.add_argument("--phases", default="scaling,load,chat")
    ap.add_argument("--repeat", type=int, default=3, help="scaling phase: best of this many rounds")
    ap.add_argument("--chat-tokens", type=int, default=400, help="turn-1 prompt tokens of the chat phase")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    a.phases = set(a.phases.split(","))
    a.peer = a.peer or ["llama-server", "llama-cpp-python"]
    a.chat_texts = None
    if not (1 <= a.clients <= 64 and 1 <= a.tokens <= 512 and 16 <= a.chat_tokens <= 4000 and 1 <= a.repeat <= 10):
        sys.exit("bench_serve: --clients must be in 1..64, --tokens in 1..512, --chat-tokens in 16..4000 and --repeat "
                 "in 1..10 (a bounded benchmark)")
    print(f"bench_serve: {os.uname().nodename}, load {os.getloadavg()[0]:.2f}, threads {a.threads}, "
          f"weights {a.dtype}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        a.serve_model = a.model
        if a.dtype == "q8_0":
            a.serve_model = os.path.join(tmp, os.path.basename(os.path.normpath(a.model)))
            subprocess.run([a.mindllm, "quantize", "--model", a.model, "--type", "q8_0", "--out", a.serve_model],
                           check=True, stdout=subprocess.DEVNULL)
        a.gguf_path = a.gguf or os.path.join(tmp, "model.gguf")
        if not a.gguf and a.peer != ["none"]:
            subprocess.run([a.mindllm, "export", "--model", a.model, "--format", "gguf", "--type", a.dtype,
                            "--out", a.gguf_path], check=True, stdout=subprocess.DEVNULL)
        results = bench(a)
    print(f"bench_serve: load after {os.getloadavg()[0]:.2f}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
