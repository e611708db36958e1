#!/usr/bin/env python3
"""Encode throughput: mindllm vs tiktoken vs Hugging Face `tokenizers`, same GPT-2 vocabulary, same
text, same machine, one run. tiktoken's Encoding is built from the GPT-2 files (mergeable ranks =
vocab.json's tokens mapped back to bytes), since it cannot download vocabularies offline.

    python3 bench/tokenizer/bench_encode.py [--mindllm build/mindllm] [--mb 8] [--threads 1 2]

The text: the shared corpora (English, Chinese novels, Chinese law) cut into documents of about
64 KB at line ends, the first --mb megabytes. Each tool encodes the same list of documents; the
time excludes loading. Prints one JSON line per measurement and a summary with the ratios.
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
GPT2 = SHARED / "tokenizers" / "gpt2"
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def documents(mb, subset):
    root = SHARED / "corpus" / subset if subset else SHARED / "corpus"
    files = sorted(root.rglob("*.txt")) + sorted(root.rglob("*.md"))
    # interleave languages: en, zh, law
    text = "".join(p.read_text(encoding="utf-8") for p in files)
    docs, i, limit = [], 0, mb * 1_000_000
    size = 0
    while i < len(text) and size < limit:
        j = text.find("\n", i + 64000)
        j = len(text) if j < 0 else j + 1
        docs.append(text[i:j])
        size += len(docs[-1].encode("utf-8"))
        i = j
    return docs


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def tiktoken_encoding():
    import tiktoken
    dec = bytes_to_unicode()
    vocab = json.loads((GPT2 / "vocab.json").read_text(encoding="utf-8"))
    ranks = {bytes(dec[c] for c in tok): i for tok, i in vocab.items() if tok != "<|endoftext|>"}
    return tiktoken.Encoding("gpt2-local", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": vocab["<|endoftext|>"]})


def run_hf(docs_path, threads):
    # Rayon's pool size is fixed at import: measure in a fresh process.
    code = f"""
import json, time, os
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
docs = [json.loads(l) for l in open({str(docs_path)!r}, encoding='utf-8')]
tok = Tokenizer(models.BPE.from_file({str(GPT2 / 'vocab.json')!r}, {str(GPT2 / 'merges.txt')!r}))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.add_special_tokens(['<|endoftext|>'])
t = time.perf_counter()
if {threads} == 1:
    n = sum(len(tok.encode(d, add_special_tokens=False).ids) for d in docs)
else:
    n = sum(len(e.ids) for e in tok.encode_batch(docs, add_special_tokens=False))
print(json.dumps({{'seconds': time.perf_counter() - t, 'tokens': n}}))
"""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mindllm", default=str(REPO / "build" / "mindllm"))
    ap.add_argument("--mb", type=float, default=8)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--subset", default="", help="only corpus/<subset> (en, zh, law-zh); default: all")
    a = ap.parse_args()
    docs = documents(a.mb, a.subset)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        docs_path = Path(tmp) / "docs.jsonl"
        with open(docs_path, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        enc = tiktoken_encoding()
        for threads in a.threads:
            out = subprocess.run([a.mindllm, "tokenizer", "bench", "--tokenizer", str(GPT2), "--input", str(docs_path),
                                  "--threads", str(threads)], capture_output=True, text=True, check=True).stdout
            m = json.loads(out)
            results.append({"tool": "mindllm", "threads": threads, "mb_per_s": nbytes / 1e6 / m["seconds"], "tokens": m["tokens"]})
            t = time.perf_counter()
            if threads == 1:
                n = sum(len(enc.encode_ordinary(d)) for d in docs)
            else:
                n = sum(len(x) for x in enc.encode_ordinary_batch(docs, num_threads=threads))
            results.append({"tool": "tiktoken", "threads": threads, "mb_per_s": nbytes / 1e6 / (time.perf_counter() - t), "tokens": n})
            h = run_hf(docs_path, threads)
            results.append({"tool": "hf_tokenizers", "threads": threads, "mb_per_s": nbytes / 1e6 / h["seconds"], "tokens": h["tokens"]})
    for r in results:
        r["mb_per_s"] = round(r["mb_per_s"], 2)
        print(json.dumps(r))
    by = {(r["tool"], r["threads"]): r for r in results}
    for threads in a.threads:
        m = by[("mindllm", threads)]["mb_per_s"]
        print(f"threads={threads}: mindllm {m} MB/s, tiktoken {by[('tiktoken', threads)]['mb_per_s']} MB/s "
              f"(x{m / by[('tiktoken', threads)]['mb_per_s']:.2f}), HF tokenizers {by[('hf_tokenizers', threads)]['mb_per_s']} MB/s "
              f"(x{m / by[('hf_tokenizers', threads)]['mb_per_s']:.2f})")
    toks = {r["tokens"] for r in results}
    print(f"text: {nbytes / 1e6:.1f} MB in {len(docs)} documents; token counts agree: {len(toks) == 1} {sorted(toks)}")


if __name__ == "__main__":
    main()
