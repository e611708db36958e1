"""The training CLI as a user runs it: loss falls, SIGKILL at any moment then --resume ends
bit-identical to an uninterrupted run, and bad input gets one clear line with exit code 2."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from mindllm_ref import MINDLLM, run, write_shard

VOCAB = 512


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    # Learnable text: a few hundred "words" of 3-6 tokens in random order.
    words = [rng.integers(0, VOCAB, rng.integers(3, 7)) for _ in range(300)]
    seq = np.concatenate([words[i] for i in rng.integers(0, len(words), 20000)])
    write_shard(d / "train-000.bin", seq[:60000], VOCAB)
    write_shard(d / "train-001.bin", seq[60000:80000], VOCAB)
    write_shard(d / "val-000.bin", seq[80000:], VOCAB)
    return d


def train_args(data, out, *extra):
    return ["train", "--model", "tiny-llama", "--data", data, "--out", out, "--batch", 4, "--seq", 64,
            "--lr", 3e-3, "--warmup", 5, "--threads", 2, *extra]


def test_loss_falls_and_metrics_are_logged(data, tmp_path):
    run(*train_args(data, tmp_path / "run", "--steps", 60, "--eval-every", 20, "--eval-batches", 4))
    m = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(m) == 60
    first, last = np.mean([x["loss"] for x in m[:5]]), np.mean([x["loss"] for x in m[-5:]])
    assert last < first - 1.0, (first, last)
    assert [x["step"] for x in m if "val_loss" in x] == [20, 40, 60]
    assert m[-1]["val_loss"] < m[19]["val_loss"]
    ckpt = tmp_path / "run" / "ckpt" / "step-0000060"
    for f in ("config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json",
              "generation_config.json"):
        assert (ckpt / f).exists(), f
    out = run("generate", "--model", ckpt, "--prompt-ids", "1 2 3", "--max-new-tokens", 8, "--seed", 1).stdout
    ids = [int(x) for x in out.split()]
    assert 1 <= len(ids) <= 8 and all(0 <= i < VOCAB for i in ids)


def final_bytes(run_dir, step):
    ckpt = Path(run_dir) / "ckpt" / f"step-{step:07d}"
    return (ckpt / "model.safetensors").read_bytes(), (ckpt / "optimizer.safetensors").read_bytes()


@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-neo"])
def test_sigkill_then_resume_is_bit_identical(data, tmp_path, preset):
    # Long enough (a few seconds) that the random kills land mid-run, also on a fast idle machine.
    steps = 400
    common = ["train", "--model", preset, "--data", data, "--batch", 4, "--seq", 64, "--lr", 3e-3,
              "--warmup", 5, "--threads", 2, "--steps", steps, "--ckpt-every", 7, "--grad-accum", 2,
              "--log-every", 100]
    run(*common, "--out", tmp_path / "straight")
    want = final_bytes(tmp_path / "straight", steps)
    rng = np.random.default_rng(42)
    out = tmp_path / "killed"
    kills = 0
    for attempt in range(12):
        args = [MINDLLM, *map(str, common), "--out", str(out)] + (["--resume"] if attempt else [])
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(float(rng.uniform(0.05, 0.8)))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        rc = p.wait()
        if rc == 0:
            break
        assert rc == -signal.SIGKILL, p.stderr.read().decode()
    else:
        run(*common, "--out", out, "--resume")
    assert kills >= 1
    assert final_bytes(out, steps) == want
    metrics = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_writes_a_checkpoint_and_resume_finishes(data, tmp_path, sig):
    """A stopped run writes a checkpoint and exits 128 + the signal (so `train && eval` stops)."""
    out = tmp_path / "run"
    args = [MINDLLM, *map(str, train_args(data, out, "--steps", 100000))]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert "interrupted" in err and "--resume" in err
    latest = (out / "ckpt" / "latest").read_text().strip()
    step = int(latest.split("-")[1])
    assert step > 0
    r = run(*train_args(data, out, "--steps", step + 2, "--resume"))
    assert (out / "ckpt" / f"step-{step + 2:07d}").is_dir()


def test_bf16_matmuls_track_fp32_and_resume_exactly(data, tmp_path):
    """--precision bf16 on the CPU (bf16 matmul operands, fp32 everything else): the loss curve
    follows the fp32 run's to bf16 precision, and stop + --resume ends bit-identical."""
    bf16 = next(l for l in run("--version").stdout.splitlines() if l.startswith("bf16 matmul"))
    if "unavailable" in bf16:
        pytest.skip(bf16)
    losses = {}
    for prec in ("fp32", "bf16"):
        out = tmp_path / prec
        run(*train_args(data, out, "--steps", 40, "--precision", prec, "--ckpt-every", 20))
        losses[prec] = [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    f, b = np.array(losses["fp32"]), np.array(losses["bf16"])
    assert b[-5:].mean() < b[:5].mean() - 1.0, b
    assert abs(b[0] - f[0]) < 1e-2 * f[0], (b[0], f[0])  # same weights, same batch: one rounding apart
    assert not np.array_equal(f, b), "bf16 run identical to fp32: the precision flag had no effect"
    assert np.abs(b - f).max() < 0.05 * f.max(), np.abs(b - f).max()
    state = json.loads((tmp_path / "bf16" / "ckpt" / "step-0000040" / "trainer_state.json").read_text())
    assert state["args"]["precision"] == "bf16"
    # A run that died right after its step-20 checkpoint, resumed: the same bytes as the straight run.
    out = tmp_path / "resumed"
    (out / "ckpt").mkdir(parents=True)
    shutil.copytree(tmp_path / "bf16" / "ckpt" / "step-0000020", out / "ckpt" / "step-0000020")
    (out / "ckpt" / "latest").write_text("step-0000020")
    run(*train_args(data, out, "--steps", 40, "--precision", "bf16", "--ckpt-every", 20, "--resume"))
    assert final_bytes(out, 40) == final_bytes(tmp_path / "bf16", 40)


def expect_bad(*args, match=None):
    p = run(*args, check=False)
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "error" in lines[0]
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(data, tmp_path):
    out = tmp_path / "o"
    # bad flags
    expect_bad(*train_args(data, out, "--steps", 0), match="--steps")
    expect_bad(*train_args(data, out, "--schedule", "linear"), match="--schedule")
    expect_bad(*train_args(data, out, "--no-such-flag"))
    expect_bad(*train_args(data, out, "--device", "cuda"), match="cuda")
    expect_bad(*train_args(data, out, "--recompute"), match="--recompute")
    expect_bad(*train_args(data, out, "--attention", "sdpa"), match="--attention")
    expect_bad(*train_args(data, out, "--attention", "cudnn"), match="--attention cudnn")
    expect_bad(*train_args(data, out, "--precision", "fp16"), match="--precision")
    for cmd in (["forward", "--tokens", out / "t.safetensors", "--out", out / "o.safetensors"],
                ["generate", "--prompt-ids", "1 2"], ["eval", "--tasks", "mmlu", "--data-dir", data]):
        expect_bad(cmd[0], "--model", "tiny-llama", *cmd[1:], "--precision", "fp16", match="--precision")
    expect_bad("train", "--data", data, "--out", out)  # missing --model
    expect_bad("no-such-command")
    # malformed or unsupported configs
    cfg = tmp_path / "cfg.json"
    for text, what in [("{not json", "JSON"), ('{"model_type": "bert"}', "bert"),
                       ('{"model_type": "llama", "vocab_size": "big"}', "vocab_size"),
                       ('{"model_type": "llama", "vocab_size": 10, "hidden_size": 30, "num_hidden_layers": 1,'
                        ' "num_attention_heads": 4, "intermediate_size": 8}', "divisible"),
                       ('{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,'
                        ' "n_positions": -5}', "n_positions")]:
        cfg.write_text(text)
        expect_bad("train", "--model", cfg, "--data", data, "--out", out, match=what)
    expect_bad("train", "--model", "no-such-preset", "--data", data, "--out", out, match="preset")
    # shards: missing, truncated, foreign, wrong vocabulary
    bad = tmp_path / "bad"
    bad.mkdir()
    expect_bad(*train_args(bad, out), match="no train")
    good = (data / "train-000.bin").read_bytes()
    (bad / "train-000.bin").write_bytes(good[:5000])
    expect_bad(*train_args(bad, out), match="truncated")
    (bad / "train-000.bin").write_bytes(b"PK\x03\x04" + b"\0" * 2000)
    expect_bad(*train_args(bad, out), match="not a token shard")
    (bad / "train-000.bin").write_bytes(b"\1\2")
    expect_bad(*train_args(bad, out), match="not a token shard")
    write_shard(bad / "train-000.bin", np.arange(1000) % 1000, 1000)
    expect_bad(*train_args(bad, out), match="vocab")
    # checkpoints: existing run without --resume, corrupt latest, truncated weights
    run_dir = tmp_path / "run"
    run(*train_args(data, run_dir, "--steps", 2))
    expect_bad(*train_args(data, run_dir, "--steps", 4), match="--resume")
    ckpt = run_dir / "ckpt" / "step-0000002"
    w = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(w[: len(w) // 2])
    expect_bad(*train_args(data, run_dir, "--steps", 4, "--resume"), match="model.safetensors")
    (run_dir / "ckpt" / "latest").write_text("../../etc\n")
    expect_bad(*train_args(data, run_dir, "--steps", 4, "--resume"), match="latest")
    (run_dir / "ckpt" / "latest").write_text("step-0000099\n")
    expect_bad(*train_args(data, run_dir, "--steps", 4, "--resume"), match="incomplete")
    expect_bad("generate", "--model", tmp_path / "nowhere", "--prompt-ids", "1")
    expect_bad("generate", "--model", ckpt, "--prompt-ids", "1 x 3")


def run_on_terminal(args, timeout=120):
    """Runs mindllm with stderr on a pseudo-terminal (as a user's shell); returns (rc, stderr text)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([MINDLLM, *map(str, args)], stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    return p.wait(timeout=timeout), b"".join(chunks).decode()


def test_progress_line_on_a_terminal_only(data, tmp_path):
    """On a terminal, training redraws one progress line (steps, rate, ETA, loss) between its log
    lines, and every log line starts on a line of its own (the progress line is erased first);
    piped to a file there is no progress line, and --quiet prints nothing at all."""
    # long enough (~1 s or more) that the progress line, redrawn at most 4 times a second, is drawn
    args = train_args(data, tmp_path / "tty", "--steps", 200, "--log-every", 100, "--eval-batches", 1)
    rc, text = run_on_terminal(args)
    assert rc == 0, text
    assert "\rtraining: " in text and " steps (" in text and "steps/s" in text and "loss " in text, text
    assert "ETA" in text
    for line in text.replace("\r\n", "\n").split("\n"):
        if "step 100/200" in line or "step 200/200" in line:
            # what precedes the log line on its terminal row was erased: the row shows the log line only
            assert line.split("\r")[-1].replace("\x1b[K", "").startswith("step "), repr(line)
    piped = run(*train_args(data, tmp_path / "pipe", "--steps", 40, "--log-every", 20))
    assert "training: " not in piped.stderr and "step 40/40" in piped.stderr
    rc, quiet = run_on_terminal([*train_args(data, tmp_path / "quiet", "--steps", 10), "--quiet"])
    assert rc == 0 and quiet.strip() == "", repr(quiet)
