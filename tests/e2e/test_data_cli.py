"""Ctrl-C during `mindllm data prepare` / `data tokenize`: SIGINT mid-run exits 130 and leaves
nothing that looks like a finished output (no report.json / manifest.json, no temporaries);
a rerun into the same directory then succeeds and gives the same bytes as an uninterrupted run.
Binary: $MINDLLM_BIN (default <repo>/build/mindllm)."""
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mindllm_ref import MINDLLM, SHARED

CORPUS = SHARED / "corpus"
TOKENIZER = SHARED / "tokenizers" / "qwen3" / "tokenizer.json"


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
            "-i", CORPUS / "law-zh", "-i", CORPUS / "en"]
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
    args = ["data", "tokenize", "-q", "--threads", "2", "--tokenizer", TOKENIZER, "-i", clean,
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
