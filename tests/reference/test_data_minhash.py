"""MinHash parity with datasketch (PyPI): `mindllm data dedup` and datasketch, given the same
shingles (bench/data/dedup_ref.py), the same SHA-1 hash (sha1_hash32) and mindllm's (a, b)
permutation arrays, compute bit-identical signatures in both of datasketch's schemes, and
MinHashLSH flags exactly the documents mindllm's LSH index flags, for several bands x rows.

Documents: a few hundred ~1.5 kB chunks of the shared corpus (Chinese novels and statutes,
English Wikipedia, C4, Shakespeare) with planted near duplicates (bench/data/bench_dedup.py's
set), plus edge cases (no tokens, fewer tokens than the shingle size, mixed scripts)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_data import shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
sys.path.insert(0, str(REPO / "bench" / "data"))
from bench_dedup import build_set  # noqa: E402
from dedup_ref import load_permutations, shingles  # noqa: E402

datasketch = pytest.importorskip("datasketch")
from datasketch import MinHash, MinHashLSH  # noqa: E402

EDGE = ["!!! ... ???", "three words only", "中文", "École ÉCOLE école Straße — naïve café",
        "混合 text 中文和 English words 在一起, with ＡＢＣ full-width and 々〇 marks", "x" * 300,
        "tab\tseparated\u3000ideographic\u00a0space and\u2028line separator \u00a7 section"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    shared_data("corpus")  # build_set reads ../shared/data/corpus
    docs = [t for t, _ in build_set(seed=3, limit=240)] + EDGE
    d = tmp_path_factory.mktemp("minhash")
    path = d / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for t in docs:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return docs, path, d


def mindllm_dedup(path, d, scheme, bands, rows):
    sig, perm, rem = d / f"sig-{scheme}.bin", d / f"perm-{scheme}.json", d / f"rem-{scheme}-{bands}x{rows}.txt"
    subprocess.run([MINDLLM, "data", "dedup", "--no-exact", "-i", str(path), "--scheme", scheme, "--num-perm", "128",
                    "--bands", str(bands), "--rows", str(rows), "--threads", "2", "--signatures-out", str(sig),
                    "--permutations-out", str(perm), "--removed-list", str(rem)],
                   check=True, capture_output=True, text=True)
    _, num_perm, perms = load_permutations(perm)
    sigs = np.fromfile(sig, dtype="<u4").reshape(-1, num_perm)
    removed = {int(x) for x in rem.read_text().split()}
    return sigs, perms, removed


def datasketch_minhashes(docs, scheme, perms):
    out = []
    for t in docs:
        m = MinHash(num_perm=perms.shape[1], scheme=scheme, permutations=perms)
        m.update_batch(list(shingles(t)))
        out.append(m)
    return out


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_signatures_bit_identical(corpus, scheme):
    docs, path, d = corpus
    sigs, perms, _ = mindllm_dedup(path, d, scheme, 16, 8)
    assert sigs.shape == (len(docs), 128)
    if scheme == "legacy":
        assert perms.dtype == np.uint64 and perms[0].min() >= 1 and perms.max() < (1 << 61) - 1
    else:
        assert perms.dtype == np.uint32 and np.all(perms[0] & 1 == 1)
    mh = datasketch_minhashes(docs, scheme, perms)
    bad = [i for i, m in enumerate(mh) if not np.array_equal(m.hashvalues.astype(np.uint64), sigs[i].astype(np.uint64))]
    assert not bad, f"{len(bad)} of {len(docs)} signatures differ, first: document {bad[0]}: {docs[bad[0]][:80]!r}"
    # Not trivially equal: documents differ, the empty one is all max values.
    assert len({s.tobytes() for s in sigs}) > len(docs) * 0.7
    assert np.all(sigs[len(docs) - len(EDGE)] == 0xFFFFFFFF)


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("bands,rows", [(16, 8), (32, 4), (20, 5)])
def test_lsh_candidates_identical(corpus, scheme, bands, rows):
    docs, path, d = corpus
    sigs, perms, removed = mindllm_dedup(path, d, scheme, bands, rows)
    mh = datasketch_minhashes(docs, scheme, perms)
    # Candidate pairs: datasketch's index over all documents vs equal bands of mindllm's signatures.
    lsh = MinHashLSH(num_perm=128, params=(bands, rows))
    for i, m in enumerate(mh):
        lsh.insert(i, m)
    pairs_ds = {(min(i, j), max(i, j)) for i, m in enumerate(mh) for j in lsh.query(m) if j != i}
    pairs_ml = set()
    for b in range(bands):
        groups = {}
        for i, s in enumerate(sigs[:, b * rows:(b + 1) * rows]):
            groups.setdefault(s.tobytes(), []).append(i)
        pairs_ml |= {(g[x], g[y]) for g in groups.values() for x in range(len(g)) for y in range(x + 1, len(g))}
    assert pairs_ds == pairs_ml
    assert len(pairs_ds) >= 40  # the planted near duplicates are found
    # Query-then-insert decisions (what dedup does): datasketch vs mindllm's own LshIndex.
    lsh = MinHashLSH(num_perm=128, params=(bands, rows))
    flagged = set()
    for i, m in enumerate(mh):
        if lsh.query(m):
            flagged.add(i + 1)
        else:
            lsh.insert(i, m)
    assert flagged == removed
