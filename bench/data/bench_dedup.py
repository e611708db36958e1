#!/usr/bin/env python3
"""Near-duplicate detection: mindllm (`mindllm data dedup`) vs datasketch MinHashLSH, same run.

Both sides get the same synthetic set built from ../shared/data/corpus (distinct ~1.5 kB chunks
of Chinese novels and statutes, English Wikipedia, C4 and Shakespeare, plus planted near
duplicates: 1-3% of words/characters edited, the last 5-10% cut, or exact copies), the same
shingles (bench/data/dedup_ref.py: mindllm's rule - Han characters and lowercased words, 5 in a
row), the same hash (SHA-1, datasketch's sha1_hash32), the same 128 permutations (mindllm's
(a, b) arrays from `--permutations-out`, handed to datasketch as MinHash(permutations=...))
in each of datasketch's schemes (affine32, legacy), and the same LSH bands x rows (16 x 8). So
both compute identical signatures and flag the same documents; the bench checks that. A
document is flagged when it collides with an earlier kept one (query, then insert if new).
Precision and recall are against the planted labels. Prints docs/s of each and the ratio.

usage: python3 bench/data/bench_dedup.py [--mindllm build/mindllm] [--threads 2] [--limit N]
       [--schemes affine32,legacy]
"""
import argparse, json, os, random, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dedup_ref import load_permutations, shingles  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "..", "shared", "data", "corpus")


def chunks(text, size):
    out, pos = [], 0
    while pos < len(text):
        end = min(len(text), pos + size)
        nl = text.find("\n", end)
        end = len(text) if nl < 0 or nl > end + size else nl + 1
        out.append(text[pos:end])
        pos = end
    return [c for c in out if len(c.strip()) > 200]


def build_set(seed=1, limit=None):
    base = []
    for root, _, files in os.walk(CORPUS):
        for f in sorted(files):
            p = os.path.join(root, f)
            if f.endswith(".jsonl"):
                base += [json.loads(l)["text"] for l in open(p, encoding="utf-8")]
            else:
                base += chunks(open(p, encoding="utf-8").read(), 500)  # 500 chars ~ 1.5 kB of Chinese
    # Drop documents that are already (near) repeated in the corpus: the labels only know planted ones.
    seen, uniq = set(), []
    for t in base:
        k = re.sub(r"\W+", "", t)[:80]
        if k not in seen:
            seen.add(k), uniq.append(t)
    rng = random.Random(seed)
    rng.shuffle(uniq)
    if limit:
        uniq = uniq[:limit]
    docs = [(t, False) for t in uniq]
    for t in uniq[::3]:
        kind = rng.randrange(3)
        zh = is_zh(t)
        if kind == 0:
            rate = rng.choice([0.01, 0.02, 0.03])
            units = list(t) if zh else t.split(" ")
            out = []
            for u in units:
                if rng.random() < rate:
                    op = rng.randrange(3)
                    if op == 0:
                        continue
                    out.append("之" if zh else "foo")
                    if op == 2:
                        continue
                out.append(u)
            t = ("" if zh else " ").join(out)
        elif kind == 1:
            t = t[: int(len(t) * rng.uniform(0.90, 0.95))]
        docs.append((t, True))
    # Originals in order; each variant inserted at a random point after its original.
    order = list(range(len(uniq)))
    slots = [[k] for k in order]
    for k, (t, d) in enumerate(docs[len(uniq):]):
        orig = k * 3  # variants were made from uniq[::3]
        pos = rng.randrange(orig, len(uniq))
        slots[pos].append(len(uniq) + k)
    final = [x for s in slots for x in s]
    return [docs[k] for k in final]


HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def is_zh(t):
    return len(HAN.findall(t)) >= len(LATIN.findall(t))


def pr(flags, labels):
    tp = sum(f and l for f, l in zip(flags, labels))
    fp = sum(f and not l for f, l in zip(flags, labels))
    fn = sum(l and not f for f, l in zip(flags, labels))
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mindllm", default=os.path.join(ROOT, "build", "mindllm"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--schemes", default="affine32,legacy")
    a = ap.parse_args()
    from datasketch import MinHash, MinHashLSH
    import datasketch

    docs = build_set(limit=a.limit or None)
    labels = [d for _, d in docs]
    mb = sum(len(t.encode()) for t, _ in docs) / 1e6
    print(f"set: {len(docs)} documents ({mb:.1f} MB), {sum(labels)} planted near-duplicates")
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "docs.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for t, _ in docs:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")

    for scheme in a.schemes.split(","):
        results = {}
        for threads in sorted({1, a.threads}):
            removed = os.path.join(tmp, f"removed{threads}.txt")
            perms = os.path.join(tmp, "perms.json")
            t0 = time.perf_counter()
            out = subprocess.run([a.mindllm, "data", "dedup", "--no-exact", "-i", path, "--removed-list", removed,
                                  "--threads", str(threads), "--num-perm", "128", "--bands", "16", "--rows", "8",
                                  "--word-ngram", "5", "--char-ngram", "5", "--scheme", scheme,
                                  "--permutations-out", perms], check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            rem = {int(x) for x in open(removed).read().split()}
            flags = [(i + 1) in rem for i in range(len(docs))]
            results[threads] = (wall, flags, json.loads(out.stdout))

        # datasketch with mindllm's permutations: shingling + MinHash + LSH query/insert, one process.
        _, num_perm, perm = load_permutations(perms)
        t0 = time.perf_counter()
        lsh = MinHashLSH(num_perm=num_perm, params=(16, 8))
        flags_ds = []
        for i, (t, _) in enumerate(docs):
            m = MinHash(num_perm=num_perm, scheme=scheme, permutations=perm)
            m.update_batch(list(shingles(t)))
            hit = bool(lsh.query(m))
            if not hit:
                lsh.insert(str(i), m)
            flags_ds.append(hit)
        t_ds = time.perf_counter() - t0

        p_ds, r_ds = pr(flags_ds, labels)
        print(f"[{scheme}] datasketch {datasketch.__version__}: {len(docs) / t_ds:9.0f} docs/s ({t_ds:.2f} s)"
              f"  precision {p_ds:.4f} recall {r_ds:.4f}")
        for threads, (wall, flags, info) in results.items():
            p, r = pr(flags, labels)
            same = sum(f != g for f, g in zip(flags, flags_ds))
            print(f"[{scheme}] mindllm {threads} thread(s): {len(docs) / wall:9.0f} docs/s ({wall:.2f} s wall incl. start-up"
                  f" and JSON reading)  precision {p:.4f} recall {r:.4f}  ratio {t_ds / wall:.1f}x  "
                  + ("same flags as datasketch" if same == 0 else f"{same} flags differ from datasketch"))

if __name__ == "__main__":
    main()
