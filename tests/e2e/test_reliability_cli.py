"""Issue 24: train/resume never clobbers a run, checkpoints are validated on resume, stale
temporaries are cleaned, and bad ids, thread counts, numbers, tokenizers and weights get one
clear line with exit code 2 instead of a crash, a hang or silent garbage."""
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from mindllm_ref import run, write_shard
from shared_data import SHARED

VOCAB = 512


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    seq = rng.integers(0, VOCAB, 30000)
    write_shard(d / "train-000.bin", seq[:25000], VOCAB)
    write_shard(d / "val-000.bin", seq[25000:], VOCAB)
    return d


def train_args(data, out, *extra):
    return ["train", "--model", "tiny-llama", "--data", data, "--out", out, "--batch", 2, "--seq", 32,
            "--threads", 2, "--log-every", 100, *extra]


def expect_bad(*args, match=None):
    p = run(*args, check=False)
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    lines = [l for l in p.stderr.strip().splitlines() if not l.startswith(("warning:", "removed"))]
    assert len(lines) == 1 and "error" in lines[0], p.stderr
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def snapshot(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


@pytest.fixture
def run4(data, tmp_path):
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path / "run"
    run(*train_args(data, out, "--steps", 4, "--ckpt-every", 2))
    return out


def test_resume_without_latest_takes_the_newest_complete_checkpoint(data, run4):
    ckpt = run4 / "ckpt"
    (ckpt / "latest").unlink()
    opt = ckpt / "step-0000004" / "optimizer.safetensors"
    opt.write_bytes(opt.read_bytes()[:100])  # the newest is broken: step 2 is the one to take
    p = run(*train_args(data, run4, "--steps", 6, "--ckpt-every", 2, "--resume"))
    assert "step-0000002" in p.stderr and "skipping incomplete" in p.stderr, p.stderr
    metrics = [json.loads(l) for l in (run4 / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    assert (ckpt / "latest").read_text().strip() == "step-0000006"


def test_resume_refuses_when_no_checkpoint_is_complete(data, run4):
    ckpt = run4 / "ckpt"
    (ckpt / "latest").unlink()
    for s in (2, 4):
        (ckpt / f"step-{s:07d}" / "trainer_state.json").write_text("{cut")
    before = snapshot(run4)
    expect_bad(*train_args(data, run4, "--steps", 6, "--resume"), match="no complete checkpoint")
    assert snapshot(run4) == before


def test_fresh_train_refuses_a_run_with_checkpoints(data, run4):
    (run4 / "ckpt" / "latest").unlink()
    before = snapshot(run4)
    expect_bad(*train_args(data, run4, "--steps", 4), match="--resume")
    assert snapshot(run4) == before


def test_out_that_is_a_file(data, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    expect_bad(*train_args(data, f, "--steps", 1), match="not a directory")


@pytest.mark.parametrize("step", [10**15, -3, "2", 2.5, 99, 3, None])
def test_trainer_state_is_validated(data, run4, step):
    st_path = run4 / "ckpt" / "step-0000004" / "trainer_state.json"
    st = json.loads(st_path.read_text())
    if step is None:
        del st["step"]
    else:
        st["step"] = step
    st_path.write_text(json.dumps(st))
    expect_bad(*train_args(data, run4, "--steps", 6, "--resume"), match="trainer_state.json")
    assert not any(p.name.startswith("step--") for p in (run4 / "ckpt").iterdir())


def rewrite_optimizer(path, fn_values=None, step=None):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = bytearray(raw[8 + n:])
    if fn_values:
        a, b = header["exp_avg"]["data_offsets"]
        vals = np.frombuffer(bytes(body[a:b]), dtype=np.float32).copy()
        fn_values(vals)
        body[a:b] = vals.tobytes()
    if step is not None:
        header["__metadata__"]["step"] = step
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(body))


@pytest.mark.parametrize("what", ["nan", "inf", "step_huge", "step_negative", "step_past"])
def test_optimizer_state_is_validated(data, run4, what):
    path = run4 / "ckpt" / "step-0000004" / "optimizer.safetensors"

    def poison(v, x=float(what) if what in ("nan", "inf") else 0.0):
        v[7] = x

    if what in ("nan", "inf"):
        rewrite_optimizer(path, fn_values=poison)
    else:
        rewrite_optimizer(path, step={"step_huge": "1e15", "step_negative": "-3", "step_past": "9"}[what])
    expect_bad(*train_args(data, run4, "--steps", 6, "--resume"), match="optimizer")


def test_nan_weights_in_a_checkpoint_are_refused_on_resume(data, run4):
    w = run4 / "ckpt" / "step-0000004" / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-4:] = np.float32("nan").tobytes()
    w.write_bytes(bytes(raw))
    expect_bad(*train_args(data, run4, "--steps", 6, "--resume"), match="NaN")


def test_stale_temporaries_are_removed(data, run4):
    ckpt = run4 / "ckpt"
    dead = ckpt / ".tmp-step-0000006-999999999"  # above any pid_max: no such process
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"\0" * 100000)
    alive = ckpt / f".tmp-step-0000006-{os.getpid()}"  # a running process's: left alone
    alive.mkdir()
    other = ckpt / ".tmp-mine"  # not a name the trainer makes: left alone
    other.mkdir()
    p = run(*train_args(data, run4, "--steps", 5, "--resume"))
    assert not dead.exists() and alive.exists() and other.exists()
    assert "removed 1 stale temporary checkpoint directory" in p.stderr, p.stderr


def test_tokenizer_is_validated_and_compared_with_the_shards(data, tmp_path):
    bad = tmp_path / "tok.json"
    bad.write_text("not json at all")
    expect_bad(*train_args(data, tmp_path / "o", "--steps", 1, "--tokenizer", bad), match="tok.json")
    tok = tmp_path / "t.json"
    text = tmp_path / "text.txt"
    text.write_text("hello world, the quick brown fox\n" * 50)
    run("tokenizer", "train", "--input", text, "--vocab-size", 300, "--special", "<|endoftext|>", "--output", tok,
        "--quiet")
    other = tmp_path / "other_shards"
    other.mkdir()
    shutil.copy(data / "train-000.bin", other / "train-000.bin")
    raw = bytearray((other / "train-000.bin").read_bytes())
    raw[16:24] = struct.pack("<Q", 0x1234567)  # header words 4, 5: another tokenizer's hash
    (other / "train-000.bin").write_bytes(bytes(raw))
    expect_bad(*train_args(other, tmp_path / "o", "--steps", 1, "--tokenizer", tok), match="--ignore-tokenizer-mismatch")
    p = run(*train_args(other, tmp_path / "o", "--steps", 1, "--tokenizer", tok, "--ignore-tokenizer-mismatch"))
    assert "another tokenizer" in p.stderr
    cfg = json.loads((tmp_path / "o" / "ckpt" / "step-0000001" / "config.json").read_text())
    gen = json.loads((tmp_path / "o" / "ckpt" / "step-0000001" / "generation_config.json").read_text())
    assert cfg["eos_token_id"] == gen["eos_token_id"] == 0  # <|endoftext|>, the first special token
    assert cfg["bos_token_id"] == 0


def test_data_tokenize_puts_the_tokenizer_with_the_shards(tmp_path):
    tok = tmp_path / "t.json"
    text = tmp_path / "text.txt"
    text.write_text("hello world, the quick brown fox jumps over the lazy dog\n" * 400)
    run("tokenizer", "train", "--input", text, "--vocab-size", 300, "--special", "<|endoftext|>", "--output", tok,
        "--quiet")
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"the quick brown fox {i} jumps over the lazy dog " * 20}) + "\n"
                            for i in range(200)))
    shards = tmp_path / "shards"
    run("data", "tokenize", "-q", "--threads", 2, "--tokenizer", tok, "-i", docs, "-o", shards, "--val-fraction", 0.05)
    assert (shards / "tokenizer.json").read_bytes() == tok.read_bytes()
    p = run(*train_args(shards, tmp_path / "run", "--steps", 1))
    assert "no tokenizer" not in p.stderr
    assert (tmp_path / "run" / "ckpt" / "step-0000001" / "tokenizer.json").read_bytes() == tok.read_bytes()
    (shards / "tokenizer.json").unlink()
    p = run(*train_args(shards, tmp_path / "run2", "--steps", 1))
    assert "warning: no tokenizer" in p.stderr


def write_tokens(path, ids, targets=None):
    from safetensors.numpy import save_file
    t = {"input_ids": np.asarray(ids, dtype=np.int32)}
    if targets is not None:
        t["targets"] = np.asarray(targets, dtype=np.int32)
    save_file(t, str(path))


@pytest.mark.parametrize("ids,targets,what", [([[1, 2, 3]], [[2, 3, VOCAB]], "targets"),
                                              ([[1, 2, 3]], [[2, 3, 10**6]], "targets"),
                                              ([[1, VOCAB, 3]], [[2, 3, 4]], "input_ids"),
                                              ([[1, -1, 3]], None, "input_ids")])
def test_forward_refuses_ids_outside_the_vocabulary(tmp_path, ids, targets, what):
    tok = tmp_path / "t.safetensors"
    write_tokens(tok, ids, targets)
    expect_bad("forward", "--model", "tiny-llama", "--tokens", tok, "--out", tmp_path / "o.safetensors", match=what)


def test_generate_refuses_prompt_ids_outside_the_vocabulary(run4):
    ckpt = run4 / "ckpt" / "step-0000004"
    expect_bad("generate", "--model", ckpt, "--prompt-ids", f"1 {VOCAB}", match="vocabulary")


@pytest.mark.parametrize("value", ["100000", "-1", "nan"])
def test_threads_are_validated_by_every_command(data, run4, tmp_path, value):
    ckpt = run4 / "ckpt" / "step-0000004"
    tok = tmp_path / "t.safetensors"
    write_tokens(tok, [[1, 2]])
    for cmd in (train_args(data, tmp_path / "o", "--steps", 1),
                ["generate", "--model", ckpt, "--prompt-ids", "1 2"],
                ["forward", "--model", ckpt, "--tokens", tok, "--out", tmp_path / "o.safetensors"],
                ["eval", "--model", ckpt, "--tasks", "mmlu", "--data-dir", tmp_path]):
        expect_bad(*cmd, "--threads", value, match="--threads")


@pytest.mark.parametrize("flag,value", [("--beta1", "2"), ("--beta2", "1"), ("--adam-eps", "0"), ("--lr", "nan"),
                                        ("--lr", "inf"), ("--seed", "-1"), ("--clip", "nan"), ("--wsd-decay", "2"),
                                        ("--weight-decay", "nan"), ("--min-lr", "-1"), ("--warmup", "-5"),
                                        ("--bucket-mb", "nan"), ("--bucket-mb", "0")])
def test_train_numbers_are_validated(data, tmp_path, flag, value):
    expect_bad(*train_args(data, tmp_path / "o", "--steps", 1, flag, value), match=flag)


@pytest.mark.parametrize("flag,value", [("--max-new-tokens", "0"), ("--max-new-tokens", "-2"), ("--seed", "-1"),
                                        ("--top-p", "1.5"), ("--temperature", "nan")])
def test_generate_numbers_are_validated(run4, flag, value):
    expect_bad("generate", "--model", run4 / "ckpt" / "step-0000004", "--prompt-ids", "1 2", flag, value, match=flag)


def test_non_finite_weights_are_refused_by_generate_and_eval(run4, tmp_path):
    bad = tmp_path / "nan_model"
    shutil.copytree(run4 / "ckpt" / "step-0000004", bad)
    w = bad / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-4:] = np.float32("inf").tobytes()
    w.write_bytes(bytes(raw))
    expect_bad("generate", "--model", bad, "--prompt-ids", "1 2", match="--allow-non-finite")
    if (SHARED / "eval" / "arc").is_dir():  # eval reads its tasks before the model
        expect_bad("eval", "--model", bad, "--tasks", "arc_easy", "--data-dir", SHARED / "eval", "--limit", 1,
                   match="--allow-non-finite")
    p = run("generate", "--model", bad, "--prompt-ids", "1 2", "--max-new-tokens", 2, "--allow-non-finite",
            "--threads", 2)
    assert "warning" in p.stderr and "NaN or infinite" in p.stderr
    tok = tmp_path / "t.safetensors"
    write_tokens(tok, [[1, 2]])
    p = run("forward", "--model", bad, "--tokens", tok, "--out", tmp_path / "o.safetensors", "--threads", 2)
    assert "warning" in p.stderr  # forward is a debugging tool: it warns and goes on


def test_out_of_memory_is_one_line_and_exit_2(data, tmp_path):
    import subprocess
    from mindllm_ref import MINDLLM
    args = [MINDLLM, "train", "--model", "tiny-llama", "--data", str(data), "--out", str(tmp_path / "o"), "--steps", "1",
            "--batch", "100000", "--seq", "512", "--threads", "2"]
    p = subprocess.run(["bash", "-c", 'ulimit -v 4000000; exec "$@"', "bash", *args], capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    lines = [l for l in p.stderr.strip().splitlines() if "error" in l]
    assert len(lines) == 1 and "out of memory" in lines[0], p.stderr
