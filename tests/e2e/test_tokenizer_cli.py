"""`mindllm tokenizer` inputs as a user hands them: the compressed JSONL directory that `data prepare`
writes (read as the data pipeline reads it), .gz/.zst text, directories; a directory where one
file is expected is a one-line error with exit code 2.
Binary: $MINDLLM_BIN (default <repo>/build/mindllm)."""
import gzip
import json
import subprocess

from mindllm_ref import MINDLLM
from shared_data import shared_data

LINES = [f"The quick brown fox {i * 37} jumps; 我们今天去北京大学看看，天气很好！\n" for i in range(400)]


def run(*args):
    return subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True, timeout=300)


def train(inputs, out, *extra):
    args = ["tokenizer", "train", "--quiet", "--vocab-size", 400, "--threads", 2, "--output", out, *extra, "--input", *inputs]
    p = run(*args)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text(encoding="utf-8"))["model"]["merges"]


def test_train_reads_compressed_files_and_directories(tmp_path):
    text = "".join(LINES)
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    subprocess.run(["zstd", "-q", "-f", str(tmp_path / "a.txt"), "-o", str(tmp_path / "a.txt.zst")], check=True)
    plain = train([tmp_path / "a.txt"], tmp_path / "plain.json")
    assert len(plain) > 100
    assert train([tmp_path / "a.txt.gz"], tmp_path / "gz.json") == plain
    assert train([tmp_path / "a.txt.zst"], tmp_path / "zst.json") == plain
    d = tmp_path / "dir"
    d.mkdir()
    (d / "part1.txt").write_text("".join(LINES[:200]), encoding="utf-8")
    with gzip.open(d / "part2.txt.gz", "wt", encoding="utf-8") as f:
        f.write("".join(LINES[200:]))
    assert train([d], tmp_path / "dir.json") == plain


def test_train_on_data_prepare_output(tmp_path):
    src = shared_data("corpus", "en", "tinyshakespeare.txt")
    paragraphs = [p for p in src.read_text(encoding="utf-8")[:300000].split("\n\n") if len(p) > 200]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"text": p}) + "\n" for p in paragraphs), encoding="utf-8")
    clean = tmp_path / "clean"
    p = run("data", "prepare", "-q", "--threads", 2, "-i", raw, "-o", clean)
    assert p.returncode == 0, p.stderr
    assert list(clean.glob("*.jsonl.zst")), list(clean.iterdir())  # the default output format
    merges = train([clean], tmp_path / "tok.json")
    # The text of the documents, not the compressed bytes: merges are of words from the corpus.
    vocab = json.loads((tmp_path / "tok.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert "Ġthe" in vocab and "Ġand" in vocab, sorted(vocab, key=vocab.get)[-40:]
    assert len(merges) > 100


def test_directory_where_a_file_is_expected(tmp_path):
    (tmp_path / "a.txt").write_text("".join(LINES), encoding="utf-8")
    tok = tmp_path / "tok.json"
    train([tmp_path / "a.txt"], tok)
    for sub in ("encode", "decode"):
        p = run("tokenizer", sub, "--tokenizer", tok, "--input", tmp_path)
        assert p.returncode == 2, (sub, p.returncode, p.stdout[:200])
        assert "is a directory" in p.stderr and str(tmp_path) in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = run("tokenizer", "train", "--vocab-size", 300, "--output", tmp_path / "t.json", "--input", tmp_path / "missing")
    assert p.returncode == 2 and "missing: no such file or directory" in p.stderr, p.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run("tokenizer", "train", "--vocab-size", 300, "--output", tmp_path / "t.json", "--input", empty)
    assert p.returncode == 2 and "matches no input files" in p.stderr, p.stderr
