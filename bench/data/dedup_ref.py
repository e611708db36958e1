"""mindllm's MinHash shingles in Python (src/data/dedup_shingles.h, the same rule), shared by
bench/data/bench_dedup.py and tests/reference/test_data_minhash.py so that datasketch and
mindllm hash the very same shingle bytes.

Tokens: every Han character alone; runs of other characters that are neither space nor
punctuation (mindllm's is_space / is_punct in src/data/utf8.h) as words, ASCII lowercased.
A shingle is n consecutive tokens joined by one space (one shingle of all tokens when there
are fewer than n), as UTF-8 bytes."""


def _ranges_contain(ranges, c):
    return any(lo <= c <= hi for lo, hi in ranges)


_SPACE = {0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0xA0, 0x3000, 0x202F, 0x205F, 0x1680, 0x85} | set(range(0x2000, 0x200B))
_PUNCT = [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E), (0x3001, 0x303F), (0xFF01, 0xFF0F),
          (0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF65), (0x2010, 0x2027), (0x2030, 0x205E),
          (0xB7, 0xB7), (0xA1, 0xA1), (0xBF, 0xBF), (0xAB, 0xAB), (0xBB, 0xBB)]
_HAN = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x3134F)]


def _kind(ch):
    c = ord(ch)
    if c in _SPACE or _ranges_contain(_PUNCT, c):
        return 0  # separator
    if _ranges_contain(_HAN, c):
        return 1  # a token of its own
    return 2  # part of a word


_KIND = {}


def tokens(text):
    out, word = [], []
    for ch in text:
        k = _KIND.get(ch)
        if k is None:
            k = _KIND[ch] = _kind(ch)
        if k == 2:
            word.append(ch.lower() if "A" <= ch <= "Z" else ch)
            continue
        if word:
            out.append("".join(word))
            word = []
        if k == 1:
            out.append(ch)
    if word:
        out.append("".join(word))
    return out


def shingles(text, n=5):
    """The set of shingles (UTF-8 bytes) of a document; n: word_ngram, or char_ngram for Chinese."""
    toks = tokens(text)
    if not toks:
        return set()
    n = min(n, len(toks))
    return {" ".join(toks[i:i + n]).encode("utf-8") for i in range(len(toks) - n + 1)}


def load_permutations(path):
    """(scheme, num_perm, (a, b)) from `mindllm data dedup --permutations-out`, as datasketch wants them."""
    import json
    import numpy as np
    p = json.load(open(path))
    dtype = np.uint64 if p["scheme"] == "legacy" else np.uint32
    return p["scheme"], p["num_perm"], np.array([np.array(p["a"], dtype=dtype), np.array(p["b"], dtype=dtype)])
