"""Shared fixtures for the reference tests (tokenizer parity: texts and a mindllm encode helper)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from shared_data import shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))


def _corpus_texts():
    """Every text file under shared/data/corpus, each as one string (c4_demo.jsonl: each record)."""
    texts = []
    for p in sorted(shared_data("corpus").rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".jsonl":
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    texts.append(json.loads(line)["text"])
        else:
            texts.append(p.read_text(encoding="utf-8"))
    return texts


def _eval_questions():
    """The question text of every eval set (MMLU, CMMLU, FinEval, GSM8K, HellaSwag, ARC,
    Financial PhraseBank)."""
    ev = shared_data("eval")
    qs = []
    for p in sorted((ev / "mmlu").rglob("*.csv")):
        with open(p, newline="", encoding="utf-8") as f:
            qs += [row[0] for row in csv.reader(f) if row]
    for sub, col in (("cmmlu", "Question"), ("fineval", "question")):
        for p in sorted((ev / sub).rglob("*.csv")):
            with open(p, newline="", encoding="utf-8") as f:
                qs += [row[col] for row in csv.DictReader(f)]
    for p, key in ((ev / "gsm8k" / "train.jsonl", "question"), (ev / "gsm8k" / "test.jsonl", "question"),
                   (ev / "hellaswag" / "hellaswag_val.jsonl", "ctx"), (ev / "arc" / "arc_easy.jsonl", "query"),
                   (ev / "arc" / "arc_challenge.jsonl", "query")):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                qs.append(json.loads(line)[key])
    for p in sorted((ev / "financial_phrasebank").glob("Sentences_*.txt")):
        for line in p.read_bytes().decode("latin-1").splitlines():
            qs.append(line.rsplit("@", 1)[0])
    return qs


@pytest.fixture(scope="session")
def corpus_texts():
    return _corpus_texts()


@pytest.fixture(scope="session")
def eval_questions():
    return _eval_questions()


def mindllm_encode_batch(tokenizer, texts, tmp_path, threads=2):
    """Ids from `mindllm tokenizer encode --jsonl` for each text."""
    inp = Path(tmp_path) / "texts.jsonl"
    with open(inp, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    p = subprocess.run([MINDLLM_BIN, "tokenizer", "encode", "--tokenizer", str(tokenizer), "--jsonl", "--input", str(inp),
                        "--threads", str(threads)], capture_output=True)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    lines = p.stdout.decode().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == len(texts)
    return [[int(x) for x in l.split()] for l in lines]


@pytest.fixture
def mindllm_encode(tmp_path):
    return lambda tokenizer, texts, threads=2: mindllm_encode_batch(tokenizer, texts, tmp_path, threads)


@pytest.fixture(scope="session")
def mindllm_bin():
    return MINDLLM_BIN
