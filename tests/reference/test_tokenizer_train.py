"""Training parity: `mindllm tokenizer train` and Hugging Face's BpeTrainer with the same settings on
the same files. Reports how far the merge lists agree and the compression (bytes per token) of both
on held-out Chinese and English text; mindllm's must be no worse by more than 1%. The tokenizer.json
mindllm writes must load in `tokenizers` and give mindllm's ids."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from shared_data import shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))

PATTERNS = {
    "gpt2": None,
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def split_corpus(tmp_path):
    """Training files (the first 85% of each source) and held-out zh/en text (the rest)."""
    sources = {"zh": [shared_data("corpus", "zh", "红楼梦.txt"), shared_data("corpus", "zh", "水浒传.txt")],
               "en": [shared_data("corpus", "en", "wiki_demo.txt"), shared_data("corpus", "en", "tinyshakespeare.txt")]}
    train_files, held = [], {"zh": "", "en": ""}
    for lang, paths in sources.items():
        for p in paths:
            text = p.read_text(encoding="utf-8")
            text = text[:len(text) // 2]  # keep the CI run short: half of each file
            cut = text.rfind("\n", 0, int(len(text) * 0.85)) + 1
            out = tmp_path / f"train_{p.stem}.txt"
            out.write_text(text[:cut], encoding="utf-8")
            train_files.append(out)
            held[lang] += text[cut:]
    return train_files, held


def train_hf(files, pattern, vocab_size):
    tok = Tokenizer(models.BPE())
    if PATTERNS[pattern] is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PATTERNS[pattern]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(f) for f in files], trainer=trainer)
    return tok


def merges_of(tokenizer_json_path):
    m = json.loads(open(tokenizer_json_path, encoding="utf-8").read())["model"]["merges"]
    return [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m]


@pytest.mark.parametrize("pattern", ["qwen2", "gpt2"])
def test_training_matches_hf(pattern, tmp_path, mindllm_encode):
    files, held = split_corpus(tmp_path)
    vocab_size = 8000
    ours_path = tmp_path / "mindllm.json"
    cmd = [MINDLLM_BIN, "tokenizer", "train", "--input", *map(str, files), "--vocab-size", str(vocab_size),
           "--pattern", pattern, "--special", *SPECIAL, "--min-frequency", "2", "--threads", "2", "--output",
           str(ours_path), "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    hf = train_hf(files, pattern, vocab_size)
    hf_path = tmp_path / "hf.json"
    hf.save(str(hf_path))

    ours_merges, hf_merges = merges_of(ours_path), merges_of(hf_path)
    prefix = next((i for i, (a, b) in enumerate(zip(ours_merges, hf_merges)) if a != b), min(len(ours_merges), len(hf_merges)))
    overlap = len(set(ours_merges) & set(hf_merges)) / max(1, len(hf_merges))

    ours = Tokenizer.from_file(str(ours_path))  # mindllm's file loads in Hugging Face
    report = {"pattern": pattern, "merges": [len(ours_merges), len(hf_merges)], "identical_prefix": prefix,
              "set_overlap": round(overlap, 4)}
    for lang, text in held.items():
        chunks = [text[i:i + 4000] for i in range(0, len(text), 4000)]
        n_ours = sum(len(e.ids) for e in ours.encode_batch(chunks, add_special_tokens=False))
        n_hf = sum(len(e.ids) for e in hf.encode_batch(chunks, add_special_tokens=False))
        nbytes = len(text.encode("utf-8"))
        report[f"bytes_per_token_{lang}"] = {"mindllm": round(nbytes / n_ours, 4), "hf": round(nbytes / n_hf, 4)}
        assert nbytes / n_ours >= 0.99 * nbytes / n_hf, report
        # mindllm encodes with its own file exactly as Hugging Face does
        sample = chunks[:40]
        assert mindllm_encode(ours_path, sample) == [e.ids for e in ours.encode_batch(sample, add_special_tokens=False)]
    print("\ntokenizer training parity:", json.dumps(report, ensure_ascii=False))
    assert ours.get_vocab_size() == hf.get_vocab_size()
    assert overlap >= 0.99, report


def test_train_cli_errors(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello world\n")
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "train", "--input", str(tmp_path / "missing.txt"), "--vocab-size", "300",
                        "--output", str(tmp_path / "o.json")], capture_output=True, text=True)
    assert p.returncode == 2 and "missing.txt" in p.stderr
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "train", "--input", str(f), "--vocab-size", "100",
                        "--output", str(tmp_path / "o.json")], capture_output=True, text=True)
    assert p.returncode == 2 and "--vocab-size" in p.stderr
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": 1}\n')
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "train", "--input", str(bad), "--vocab-size", "300",
                        "--output", str(tmp_path / "o.json")], capture_output=True, text=True)
    assert p.returncode == 2 and "b.jsonl:2" in p.stderr, p.stderr
