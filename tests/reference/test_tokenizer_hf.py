"""Encode parity with Hugging Face `tokenizers`: the same ids on every corpus file and every eval
question, for Qwen3's tokenizer.json, the GPT-2 vocab.json + merges.txt, tokenizers that
`tokenizers` trains here (three split patterns with hand-written scanners and four other Split regexes
that run on PCRE2, added and special tokens, a normalizer) and the
tokenizer.json files mindllm writes. Also decode round trips and clear errors on bad files."""
import json
import os
import random
import subprocess
from pathlib import Path
import unicodedata

import pytest
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from shared_data import SHARED, needs_shared_data, shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))

QWEN3 = SHARED / "tokenizers" / "qwen3" / "tokenizer.json"
GPT2 = SHARED / "tokenizers" / "gpt2"
needs_qwen3 = needs_shared_data("tokenizers", "qwen3", "tokenizer.json")
needs_gpt2 = needs_shared_data("tokenizers", "gpt2")

PATTERNS = {
    "gpt2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

# Split regexes without a hand-written scanner: mindllm runs them on PCRE2, translated to mean what
# they mean in Oniguruma (Hugging Face's engine).
OTHER_REGEXES = {
    # GPT-2's pattern with digit runs cut at three (as LLaMA-3 does)
    "gpt2-digits3": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    # GPT-4o's o200k_base (a LLaMA-3-style pattern with case classes and optional contractions)
    "o200k": r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
             r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
             r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    # LLaMA-3's pattern in another spelling: the same pieces, through PCRE2 instead of the scanner
    "llama3-pcre2": "(?:" + PATTERNS["llama3"] + ")",
    # custom: Oniguruma's \w, \b, \h, per-line ^ and $, (?m) (dot-all), {,n}
    "custom": r"(?i:the)\b|\p{Han}{1,2}|\h{4,}|\w+|^\s+|(?m:\s+$)|[^\w\s]{,3}|\s",
}

# Hand-made edge cases: contractions, digit runs, whitespace runs, mixed scripts, special tokens.
EDGE = [
    "", " ", "  ", "\n", "\r\n\r\n  \n", "a\n\n\nb", "  hello  world  ", "\t\tx", "x\u00a0\u00a0y", "\u3000中文\u3000",
    "I'm you're he'll we've I'D THEY'RE 'sx ''s", "12345678901 ３４５ ٣٤٥ Ⅻ ½", "a1b22c333d4444",
    "你好，世界！Hello, World! 2024年11月26日", "混合text和English单词mixed", "emoji 😀👍🏽 ok", "e\u0301 Å Å ﬁ ｱ",
    "<|endoftext|>", "a<|endoftext|>b <|endoftext|> ", "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|endoftext|>", "<think>\n\n</think>\n\n", "x = [1, 2, 3]; y = {'k': \"v\"}\n\tif x:\n\t\tpass\n",
]


def hf_gpt2():
    tok = Tokenizer(models.BPE.from_file(str(GPT2 / "vocab.json"), str(GPT2 / "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def hf_ids(tok, texts):
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def assert_same(name, texts, ours, theirs):
    assert len(ours) == len(theirs)
    bad = [i for i in range(len(texts)) if ours[i] != theirs[i]]
    if bad:
        i = bad[0]
        a, b = ours[i], theirs[i]
        k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        raise AssertionError(f"{name}: {len(bad)} of {len(texts)} texts differ; first: text {i} at token {k}: "
                             f"mindllm {a[max(0, k - 3):k + 5]} vs HF {b[max(0, k - 3):k + 5]}; "
                             f"text {texts[i][:200]!r}")


@pytest.fixture(scope="module")
def all_texts(corpus_texts, eval_questions):
    return EDGE + corpus_texts + eval_questions


@needs_qwen3
def test_qwen3_parity(all_texts, mindllm_encode):
    ours = mindllm_encode(QWEN3, all_texts)
    assert_same("qwen3", all_texts, ours, hf_ids(Tokenizer.from_file(str(QWEN3)), all_texts))


@needs_gpt2
def test_gpt2_files_parity(all_texts, mindllm_encode):
    ours = mindllm_encode(GPT2, all_texts)
    assert_same("gpt2", all_texts, ours, hf_ids(hf_gpt2(), all_texts))


def _train_hf(pattern, extras, training_texts):
    tok = Tokenizer(models.BPE())
    if pattern == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PATTERNS.get(pattern) or OTHER_REGEXES[pattern]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if "normalizer" in extras:
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    if "digits" in extras:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), tok.pre_tokenizer])
    if "prefix" in extras:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts, trainer=trainer)
    if "added" in extras:
        tok.add_tokens([AddedToken("中华人民共和国", normalized=True), AddedToken(" the", normalized=False),
                        AddedToken("Hello", single_word=True, normalized=True),
                        AddedToken("<tab>", lstrip=True, rstrip=True, normalized=False), AddedToken("第", normalized=False)])
        tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, normalized=False)])
    return tok


def _training_sample(corpus_texts):
    # ~1 MB of mixed Chinese and English lines: the start of every corpus file and c4 record.
    lines = []
    for t in corpus_texts:
        lines += t[:1200].splitlines(keepends=True)
    return lines


VARIANTS = [("gpt2", ()), ("llama3", ()), ("qwen2", ()), ("qwen2", ("added",)), ("llama3", ("normalizer", "added")),
            ("gpt2", ("digits",)), ("gpt2", ("prefix", "added"))] + [(name, ()) for name in OTHER_REGEXES] + \
           [("custom", ("normalizer", "added"))]


@pytest.mark.parametrize("pattern,extras", VARIANTS, ids=["-".join((p,) + e) for p, e in VARIANTS])
def test_hf_trained_parity(pattern, extras, corpus_texts, eval_questions, mindllm_encode, tmp_path):
    tok = _train_hf(pattern, extras, _training_sample(corpus_texts))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    texts = EDGE + ["Hello Hello,Hello xHello the\tthe <tab> a <tab>b [MASK]  [MASK]x 中华人民共和国第一"] + \
        [t[:6000] for t in corpus_texts] + eval_questions[::17]
    assert_same(f"{pattern}{extras}", texts, mindllm_encode(path, texts), hf_ids(tok, texts))


@pytest.mark.parametrize("source", [pytest.param("gpt2", marks=needs_gpt2), pytest.param("qwen3", marks=needs_qwen3)])
def test_saved_tokenizer_json_loads_in_hf(source, eval_questions, corpus_texts, tmp_path, mindllm_encode):
    src = GPT2 if source == "gpt2" else QWEN3
    out = tmp_path / "tokenizer.json"
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "convert", str(src), "--output", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    reference = hf_gpt2() if source == "gpt2" else Tokenizer.from_file(str(QWEN3))
    saved = Tokenizer.from_file(str(out))
    texts = EDGE + eval_questions[::19] + [t[:8000] for t in corpus_texts]
    expect = hf_ids(reference, texts)
    assert_same("HF on mindllm's file", texts, hf_ids(saved, texts), expect)
    assert_same("mindllm on its own file", texts, mindllm_encode(out, texts), expect)
    assert saved.get_vocab_size() == reference.get_vocab_size()


@needs_gpt2
def test_gpt2_dir_with_added_tokens_matches_transformers(eval_questions, corpus_texts, tmp_path, mindllm_encode):
    # The MindLLM-1.3B release layout: GPT-2 vocab.json + merges.txt extended by added_tokens.json
    # (Chinese words) and special_tokens_map.json; transformers' GPT2TokenizerFast is the reference.
    import shutil
    from transformers import GPT2TokenizerFast
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(GPT2 / f, tmp_path / f)
    words = ["中华人民共和国", "人民", "法院", "第一条", "贾宝玉", "宝玉", "的", "了", "，", "。", "<pad>"]
    (tmp_path / "added_tokens.json").write_text(json.dumps({w: 50257 + i for i, w in enumerate(words)}, ensure_ascii=False))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<pad>"}))
    ref = GPT2TokenizerFast.from_pretrained(str(tmp_path))
    texts = EDGE + eval_questions[::13] + [t[:8000] for t in corpus_texts[::2]]
    expect = [ref(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert_same("gpt2 + added_tokens.json", texts, mindllm_encode(tmp_path, texts), expect)


@needs_qwen3
def test_ignore_merges_parity(eval_questions, corpus_texts, tmp_path, mindllm_encode):
    # LLaMA-3 style: a word that is a whole vocabulary token is emitted as it is.
    d = json.loads(QWEN3.read_text(encoding="utf-8"))
    d["model"]["ignore_merges"] = True
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    texts = EDGE + eval_questions[::23] + [t[:6000] for t in corpus_texts[::3]]
    assert_same("ignore_merges", texts, mindllm_encode(path, texts), hf_ids(Tokenizer.from_file(str(path)), texts))


@needs_gpt2
@needs_qwen3
def test_decode_round_trip_cli(tmp_path):
    # Any bytes round-trip through a tokenizer without a normalizer (GPT-2); through Qwen3 (NFC)
    # the result is the NFC form, which is the input itself for text already in NFC.
    rng = random.Random(0)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))) for _ in range(8)]
    blobs.append("正常文本 with <|endoftext|> and \xff".encode("utf-8") + b"\xff\xfe\xc3(\xe4\xb8")
    nfc_texts = ["正常文本 with <|endoftext|> ok", "e\u0301 → é", "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(3000))]
    for tok, cases in ((GPT2, blobs), (QWEN3, [unicodedata.normalize("NFC", t).encode() for t in nfc_texts])):
        for i, b in enumerate(cases):
            src = tmp_path / f"in{i}.bin"
            src.write_bytes(b)
            ids = subprocess.run([MINDLLM_BIN, "tokenizer", "encode", "--tokenizer", str(tok), "--input", str(src), "--binary"],
                                 capture_output=True, check=True).stdout
            back = subprocess.run([MINDLLM_BIN, "tokenizer", "decode", "--tokenizer", str(tok), "--binary"], input=ids,
                                  capture_output=True, check=True).stdout
            assert back == b


@needs_qwen3
def test_text_ids_cli_matches_hf(tmp_path):
    text = "The quick brown fox 跳过了 the lazy dog. 1234567\n"
    src = tmp_path / "t.txt"
    src.write_text(text, encoding="utf-8")
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "encode", "--tokenizer", str(QWEN3), "--input", str(src)],
                       capture_output=True, text=True, check=True)
    ids = [int(x) for x in p.stdout.split()]
    assert ids == Tokenizer.from_file(str(QWEN3)).encode(text, add_special_tokens=False).ids
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "decode", "--tokenizer", str(QWEN3)], input=p.stdout,
                       capture_output=True, text=True, check=True)
    assert p.stdout == text


def _qwen3_doc():
    return json.loads(shared_data("tokenizers", "qwen3", "tokenizer.json").read_text(encoding="utf-8"))


HOSTILE = {
    "not_json": ("{\"model\": ", "not valid JSON"),
    "top_array": ("[1, 2]", "top level"),
    "unknown_model": (lambda d: d["model"].__setitem__("type", "Unigram"), "Unigram"),
    "vocab_is_list": (lambda d: d["model"].__setitem__("vocab", [1, 2]), "model.vocab"),
    "huge_id": (lambda d: d["model"]["vocab"].__setitem__("Ġthe", 10 ** 30), "token id"),
    "negative_id": (lambda d: d["model"]["vocab"].__setitem__("Ġthe", -5), "out of range"),
    "string_id": (lambda d: d["model"]["vocab"].__setitem__("Ġthe", "12"), "expected a token id"),
    "bad_merge": (lambda d: d["model"]["merges"].__setitem__(3, ["zzzq", "qqq"]), "not in the vocabulary"),
    "merge_type": (lambda d: d["model"]["merges"].__setitem__(3, 7), "model.merges[3]"),
    "added_bool": (lambda d: d["added_tokens"][0].__setitem__("lstrip", "yes"), "added_tokens[0].lstrip"),
    "unknown_pre": (lambda d: d.__setitem__("pre_tokenizer", {"type": "Metaspace"}), "Metaspace"),
    "invalid_regex": (lambda d: d["pre_tokenizer"]["pretokenizers"][0]["pattern"].__setitem__("Regex", "a(+"),
                      "pretokenizers[0].pattern.Regex: invalid regular expression 'a(+'"),
    "refused_regex": (lambda d: d["pre_tokenizer"]["pretokenizers"][0]["pattern"].__setitem__("Regex", "[a-z&&[^aeiou]]"),
                      "intersections (&&) are not supported"),
    "unknown_normalizer": (lambda d: d.__setitem__("normalizer", {"type": "BertNormalizer"}), "BertNormalizer"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tokenizer_json(case, tmp_path):
    spec, expect = HOSTILE[case]
    path = tmp_path / "tokenizer.json"
    if isinstance(spec, str):
        path.write_text(spec)
    else:
        d = _qwen3_doc()
        spec(d)
        path.write_text(json.dumps(d))
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "info", str(path)], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert expect in p.stderr and str(path) in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
