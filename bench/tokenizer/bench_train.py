#!/usr/bin/env python3
"""Training speed: `mindllm tokenizer train` vs Hugging Face's BpeTrainer, same files, same settings
(byte-level BPE, --pattern, vocab size, special tokens, min frequency 2, all 256 bytes in the
alphabet), same thread count. Reports wall time, peak memory (max RSS) and merge agreement.

    python3 bench/tokenizer/bench_train.py [--mindllm build/mindllm] [--vocab 32000] [--threads 2] [--mb 50]

The input: the shared corpora, eval and sft files (Chinese and English; jsonl/csv taken as plain
lines of text by both trainers), concatenated into one text file of at most --mb megabytes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
PATTERNS = {
    "gpt2": None,
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

HF_CODE = """
import json, sys, time
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
path, pattern, vocab, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tok = Tokenizer(models.BPE())
if pattern is None:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
else:
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, show_progress=False, special_tokens=%r,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train([path], trainer=trainer)
tok.save(out)
""" % SPECIAL


def build_input(path, mb):
    files = [p for d in ("corpus", "eval", "sft") for p in sorted((SHARED / d).rglob("*"))
             if p.is_file() and p.suffix in (".txt", ".md", ".jsonl", ".json", ".csv")]
    limit, size = int(mb * 1_000_000), 0
    with open(path, "wb") as out:
        for p in files:
            data = p.read_bytes()
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                data = data.decode("latin-1").encode("utf-8")
            data = data[: max(0, limit - size)]
            cut = data.rfind(b"\n") + 1 if len(data) < p.stat().st_size else len(data)
            data = data[:cut]
            if data and not data.endswith(b"\n"):
                data += b"\n"
            out.write(data)
            size += len(data)
            if size >= limit:
                break
    return size


def timed(cmd, env=None):
    """Runs cmd; returns (seconds, max RSS in MiB of that child, from wait4)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{err}")
    return secs, usage.ru_maxrss / 1024


def merges(path):
    m = json.loads(Path(path).read_text(encoding="utf-8"))["model"]["merges"]
    return [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mindllm", default=str(REPO / "build" / "mindllm"))
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--pattern", default="qwen2", choices=sorted(PATTERNS))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "train.txt"
        size = build_input(inp, a.mb)
        ours, theirs = Path(tmp) / "mindllm.json", Path(tmp) / "hf.json"
        m_s, m_rss = timed([a.mindllm, "tokenizer", "train", "--input", str(inp), "--vocab-size", str(a.vocab),
                            "--pattern", a.pattern, "--special", *SPECIAL, "--min-frequency", "2",
                            "--threads", str(a.threads), "--output", str(ours), "--quiet"])
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
        h_s, h_rss = timed([sys.executable, "-c", HF_CODE, str(inp), json.dumps(PATTERNS[a.pattern]), str(a.vocab),
                            str(theirs)], env=env)
        mo, mh = merges(ours), merges(theirs)
        prefix = next((i for i, (x, y) in enumerate(zip(mo, mh)) if x != y), min(len(mo), len(mh)))
        overlap = len(set(mo) & set(mh)) / max(1, len(mh))
    r = {"input_mb": round(size / 1e6, 1), "vocab": a.vocab, "threads": a.threads, "pattern": a.pattern,
         "mindllm_s": round(m_s, 2), "hf_s": round(h_s, 2), "speedup": round(h_s / m_s, 2),
         "mindllm_max_rss_mib": round(m_rss), "hf_max_rss_mib": round(h_rss),
         "merges": [len(mo), len(mh)], "identical_merge_prefix": prefix, "merge_set_overlap": round(overlap, 4)}
    print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
