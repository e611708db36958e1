"""`mindllm sft --packing` as a user runs it: --dry-run shows the packed windows, training runs
and the loss falls, --resume continues bit for bit. (That a packed sample's loss and gradients
equal its own alone: tests/reference/test_sft_packing.py.)"""
import json
import re
import shutil

from test_sft_cli import QA, base, chat_data, sft  # noqa: F401 (fixtures)

from mindllm_ref import run


def test_dry_run_shows_the_packed_windows(base, chat_data):
    p = run("sft", "--model", base, "--data", chat_data / "chat.jsonl", "--chat-template", "chatml", "--dry-run",
            "--packing", "--seq", 64, "--dry-run-samples", 10)
    m = re.search(r"packing: 6 samples into (\d+) windows of 64 positions \(([\d.]+)% used\)", p.stdout)
    assert m, p.stdout
    windows = int(m.group(1))
    assert 1 <= windows < 6 and float(m.group(2)) > 40, p.stdout
    # Every sample in exactly one window, positions laid out one after another from 0.
    lines = re.findall(r"  positions (\d+)-(\d+): sample (\d+) \((\d+) tokens", p.stdout)
    assert sorted(int(s) for _, _, s, _ in lines) == list(range(6)), p.stdout
    assert p.stdout.count("=== window ") == windows
    end = -1
    for first, last, _, n in lines:
        first, last, n = int(first), int(last), int(n)
        assert first in (0, end + 1) and last - first + 1 == n - 1 and last < 64, p.stdout
        end = last
    for q, a in QA:
        assert f"[[{a}<|im_end|>" in p.stdout or "..." in p.stdout


def test_packed_training_runs_and_resumes_bit_identically(base, chat_data, tmp_path):
    data = f"{chat_data / 'chat.jsonl'},{chat_data / 'array.json'}:0.5"
    full = tmp_path / "full"
    p = sft(base, data, full, "--packing", "--steps", 24, "--ckpt-every", 8)
    assert re.search(r"packed into \d+ windows of 64 per epoch", p.stderr), p.stderr
    m = [json.loads(l) for l in (full / "metrics.jsonl").read_text().splitlines()]
    assert len(m) == 24 and m[-1]["loss"] < m[0]["loss"] - 1.0, (m[0], m[-1])
    state = json.loads((full / "ckpt" / "step-0000008" / "trainer_state.json").read_text())
    assert state["data_position"]["sampler"] == "sft-packed", state
    part = tmp_path / "part"
    sft(base, data, part, "--packing", "--steps", 24, "--ckpt-every", 8)
    for step in (16, 24):
        shutil.rmtree(part / "ckpt" / f"step-{step:07d}")
    (part / "ckpt" / "latest").write_text("step-0000008")
    sft(base, data, part, "--packing", "--steps", 24, "--ckpt-every", 8, "--resume")
    a, b = full / "ckpt" / "step-0000024", part / "ckpt" / "step-0000024"
    for f in ("model.safetensors", "optimizer.safetensors"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    # cuDNN's attention takes no segments: refused up front.
    r = sft(base, data, tmp_path / "x", "--packing", "--attention", "cudnn", "--steps", 1, check=False)
    assert r.returncode == 2 and "--packing needs --attention flash" in r.stderr, r.stderr
