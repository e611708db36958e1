"""Ctrl-C during `mindllm data prepare` / `data tokenize`: SIGINT mid-run exits 130 and leaves
nothing that looks like a finished output (no report.json / manifest.json, no temporaries);
a rerun into the same directory then succeeds and gives the same bytes as an uninterrupted run.
Binary: $MINDLLM_BIN (default <repo>/build/mindllm)."""
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mindllm_ref import MINDLLM
from shared_data import shared_data


def files(d):
    """{relative name: bytes} of every file under d."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def temporaries(d):
    return [str(p) for p in Path(d).rglob("*") if ".tmp-" in p.name or p.name.startswith(".tmp")]


def interrupt_when(args, ready, timeout=60):
    """Starts mindllm args, sends SIGINT once ready() is true (work is under way), returns
    (exit code, stderr). Fails if the run finished before it could be interrupted."""
    p = subprocess.Popen([MINDLLM, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not ready():
        if p.poll() is not None:
            pytest.fail(f"mindllm {' '.join(map(str, args))} finished (exit {p.returncode}) before it could be interrupted")
        if time.monotonic() - t0 > timeout:
            p.kill()
            pytest.fail("the run never reached the point to interrupt")
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


def run_ok(args):
    p = subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """An uninterrupted `data prepare` (statutes + English; small batches so a run has many
    batch boundaries at which Ctrl-C stops)."""
    d = tmp_path_factory.mktemp("prep")
    cfg = d / "small-batches.yaml"
    cfg.write_text("batch_bytes: 262144\n")
    args = ["data", "prepare", "-q", "--threads", "2", "--config", cfg, "--text-unit", "paragraph",
            "-i", shared_data("corpus", "law-zh"), "-i", shared_data("corpus", "en")]
    ref = d / "ref"
    run_ok(args + ["-o", ref])
    assert (ref / "report.json").exists()
    return args, ref


def test_prepare_sigint_then_rerun(prepared, tmp_path):
    args, ref = prepared
    out = tmp_path / "out"
    run_ok(args + ["-o", out])  # a finished earlier output in the same directory
    # Interrupt once the first output part is being written (a batch has been processed).
    rc, err = interrupt_when(args + ["-o", out], lambda: any(".tmp-" in p.name for p in out.iterdir()))
    assert rc == 130, err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "report.json").exists(), "an interrupted output must not look finished"
    assert not temporaries(out)
    run_ok(args + ["-o", out])
    assert files(out).keys() == files(ref).keys()
    for name, data in files(ref).items():
        if name != "report.json":  # report.json has timings
            assert files(out)[name] == data, name


def test_tokenize_sigint_then_rerun(prepared, tmp_path):
    _, clean = prepared
    tokenizer = shared_data("tokenizers", "qwen3", "tokenizer.json")
    args = ["data", "tokenize", "-q", "--threads", "2", "--tokenizer", tokenizer, "-i", clean,
            "--shard-tokens", "200000", "--val-fraction", "0.01"]
    ref = tmp_path / "ref"
    run_ok(args + ["-o", ref])
    out = tmp_path / "out"
    run_ok(args + ["-o", out])
    ids = out / ".tmp-tokenize" / "ids.u32"
    rc, err = interrupt_when(args + ["-o", out], lambda: ids.exists() and ids.stat().st_size > 0)
    assert rc == 130, err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "manifest.json").exists(), "an interrupted output must not look finished"
    assert not temporaries(out)
    run_ok(args + ["-o", out])
    got, want = files(out), files(ref)
    assert got.keys() == want.keys() and any(n.startswith("train-") for n in got)
    for name, data in want.items():
        if name.endswith(".bin"):
            assert got[name] == data, name


# ---- issue 24 items 16 and 12: undecodable input and output paths ----

ZH = ("第一条　为了保护民事主体的合法权益，调整民事关系，维护社会和经济秩序，适应中国特色社会主义发展要求，"
      "弘扬社会主义核心价值观，根据宪法，制定本法。……第二条　民法调整平等主体的自然人、法人和非法人组织之间的"
      "人身关系和财产关系。——摘自《中华人民共和国民法典》\n")


def prepare(tmp_path, *args):
    return subprocess.run([MINDLLM, "data", "prepare", "-q", "--no-compress", "-o", tmp_path / "out", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_undecodable_input_is_said_and_encoding_converts_it(tmp_path):
    (tmp_path / "gbk.txt").write_bytes(ZH.encode("gbk"))
    (tmp_path / "utf8.txt").write_text(ZH)
    # Only undecodable input: nothing read is an error (exit 2) naming the count and the file.
    p = prepare(tmp_path, "-i", tmp_path / "gbk.txt")
    assert p.returncode == 2, p.stderr
    assert "1 documents skipped as invalid UTF-8" in p.stderr and "gbk.txt:1" in p.stderr and "--encoding" in p.stderr
    # Some decodable: exit 0 with a warning line.
    p = prepare(tmp_path, "-i", tmp_path / "gbk.txt", "-i", tmp_path / "utf8.txt")
    assert p.returncode == 0 and "warning: 1 documents skipped as invalid UTF-8" in p.stderr, p.stderr
    # --encoding gbk (and reader.encoding in a config) converts it; the text is the UTF-8 original.
    for extra in (["--encoding", "gbk"], ["--config", tmp_path / "c.yaml"]):
        (tmp_path / "c.yaml").write_text("reader:\n  encoding: gb18030\n")
        p = prepare(tmp_path, "-i", tmp_path / "gbk.txt", *extra)
        assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
        out = (tmp_path / "out/data-00000.jsonl").read_text()
        assert "适应中国特色社会主义发展要求" in out and "……" in out and "——" in out
    p = prepare(tmp_path, "-i", tmp_path / "gbk.txt", "--encoding", "klingon")
    assert p.returncode == 2 and "encoding 'klingon' is unknown" in p.stderr, p.stderr


@pytest.mark.parametrize("cmd", [
    ["data", "prepare", "-i", "{txt}", "-o", "{file}"],
    ["data", "tokenize", "--tokenizer", "{tok}", "-i", "{txt}", "-o", "{file}"],
    ["data", "dedup", "-i", "{txt}", "-o", "{dir}"],
    ["tokenizer", "train", "--input", "{txt}", "--vocab-size", "300", "--output", "{dir}"],
    ["tokenizer", "encode", "--tokenizer", "{tok}", "--input", "{txt}", "--output", "{dir}"],
    ["forward", "--model", "tiny-gpt2", "--tokens", "{txt}", "--out", "{dir}"],
    ["export", "--model", "{dir}", "--format", "gguf", "--out", "{dir}"],
    ["convert", "--model", "{dir}", "--out", "{file}"],
])
def test_output_paths_are_checked_first(tmp_path, cmd):
    (tmp_path / "d").mkdir()
    (tmp_path / "a.txt").write_text(ZH)
    (tmp_path / "f").write_text("x")
    tok = tmp_path / "tok.json"
    run_ok(["tokenizer", "train", "--input", tmp_path / "a.txt", "--vocab-size", 300, "--output", tok, "--quiet"])
    args = [a.format(txt=tmp_path / "a.txt", file=tmp_path / "f", dir=tmp_path / "d", tok=tok) for a in cmd]
    p = subprocess.run([MINDLLM, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    msg = p.stderr.strip()
    assert "\n" not in msg and "internal error" not in msg, msg
    assert "is a directory" in msg or "is a file" in msg, msg
