"""Decode speed of `mindllm generate`, before -> after a change: two binaries on the same model
directory, greedy, the same prompt and token count, runs interleaved, best of --repeat. Times the
whole command (load included), as a user sees it; prints tokens/s of each and the ratio.

    python3 bench/generate/bench_decode.py --old /path/to/old/mindllm --new build/mindllm \
        --model demo-out/run/ckpt/step-0000400 --tokens 256 --threads 2
"""
import argparse
import subprocess
import time


def timed(binary, model, tokens, threads):
    cmd = [binary, "generate", "--model", model, "--prompt-ids", "1 2 3 4", "--max-new-tokens", str(tokens),
           "--temperature", "0", "--threads", str(threads), "--no-stop-at-eos"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    dt = time.perf_counter() - t0
    return len(out.split()), dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    best = {"old": 0.0, "new": 0.0}
    for _ in range(a.repeat):
        for name in ("old", "new"):
            n, dt = timed(getattr(a, name), a.model, a.tokens, a.threads)
            best[name] = max(best[name], n / dt)
    print(f"tokens {a.tokens}: old {best['old']:.1f} tok/s, new {best['new']:.1f} tok/s, "
          f"{best['new'] / best['old']:.1f}x")


if __name__ == "__main__":
    main()
