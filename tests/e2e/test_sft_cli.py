"""`mindllm sft` and `mindllm chat` as a user runs them: a base model from `mindllm train`, chat
data in the three formats with broken samples among them, --dry-run, training with the loss on
the answers, exact --resume, and a chat turn with the tuned model."""
import json
import shutil
import signal
import subprocess
import time

import pytest

from mindllm_ref import MINDLLM, run, tiny_chat_model

QA = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."), ("床前明月光", "疑是地上霜"),
      ("Say hello.", "Hello!"), ("举头望明月", "低头思故乡"), ("What is the capital of France?", "Paris.")]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny llama base model directory with a 400-token tokenizer (ChatML specials)."""
    d = tmp_path_factory.mktemp("base")
    text = "\n".join(f"{q} {a}" for q, a in QA * 50) + "\nuser assistant system\n" * 50
    return tiny_chat_model(d, text)


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat")
    lines = []
    for i, (q, a) in enumerate(QA):
        if i % 3 == 0:
            lines.append({"instruction": q, "input": "", "output": a})
        elif i % 3 == 1:
            lines.append({"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
        else:
            lines.append({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
                                       {"role": "assistant", "content": a}]})
    bad = ['{"instruction": "no output"}', '{"messages": [{"role": "tool", "content": "x"}]}', "not json",
           '{"instruction": "q", "output": ""}']
    text = "\n".join(json.dumps(l, ensure_ascii=False) for l in lines) + "\n" + "\n".join(bad) + "\n"
    (d / "chat.jsonl").write_text(text)
    (d / "array.json").write_text(json.dumps([lines[0], lines[1]], ensure_ascii=False))
    return d


def sft(base, data, out, *extra, lr=1e-3, check=True):
    return run("sft", "--model", base, "--data", data, "--out", out, "--chat-template", "chatml", "--batch", 3,
               "--seq", 64, "--lr", lr, "--threads", 2, *extra, check=check)


def test_dry_run_marks_the_answers_and_counts_skipped_samples(base, chat_data):
    p = run("sft", "--model", base, "--data", chat_data / "chat.jsonl", "--chat-template", "chatml", "--dry-run",
            "--dry-run-samples", 6)
    assert "10 samples, 6 kept, 4 skipped" in p.stderr, p.stderr
    for reason in ("missing field 'output': 1", "unknown role 'tool': 1", "invalid JSON: 1", "empty assistant turn: 1"):
        assert reason in p.stderr, p.stderr
    assert "chat.jsonl:line 7: missing field 'output'" in p.stderr, p.stderr
    # Every answer is trained with its end-of-turn token; no prompt text is.
    for q, a in QA:
        assert f"[[{a}<|im_end|>\n]]" in p.stdout, p.stdout
        assert f"[[{q}" not in p.stdout
    # --strict refuses the first bad sample, naming it.
    s = run("sft", "--model", base, "--data", chat_data / "chat.jsonl", "--chat-template", "chatml", "--dry-run",
            "--strict", check=False)
    assert s.returncode == 2 and "chat.jsonl:line 7: missing field 'output' (--strict)" in s.stderr, s.stderr


def test_loss_falls_and_resume_is_bit_identical(base, chat_data, tmp_path):
    data = f"{chat_data / 'chat.jsonl'},{chat_data / 'array.json'}:0.5"
    sft(base, data, tmp_path / "full", "--steps", 30, "--ckpt-every", 10)
    m = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert len(m) == 30 and m[-1]["loss"] < m[0]["loss"] - 1.0, (m[0], m[-1])
    assert all(x["target_tokens"] < 3 * 64 for x in m)  # only answers count
    # A run that only got to step 10 (later checkpoints gone, as after a crash), resumed: the same
    # bytes at step 30.
    part = tmp_path / "part"
    sft(base, data, part, "--steps", 30, "--ckpt-every", 10)
    for step in (20, 30):
        shutil.rmtree(part / "ckpt" / f"step-{step:07d}")
    (part / "ckpt" / "latest").write_text("step-0000010")
    sft(base, data, part, "--steps", 30, "--ckpt-every", 10, "--resume")
    a = tmp_path / "full" / "ckpt" / "step-0000030"
    b = part / "ckpt" / "step-0000030"
    for f in ("model.safetensors", "optimizer.safetensors"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert json.loads((a / "tokenizer_config.json").read_text())["chat_template"].startswith("{%")


def test_chat_answers_with_the_tuned_model(base, chat_data, tmp_path):
    sft(base, chat_data / "chat.jsonl", tmp_path / "run", "--steps", 150, lr=3e-3)
    model = tmp_path / "run" / "ckpt" / "step-0000150"
    # The template came with the checkpoint: no --chat-template needed; greedy, so deterministic.
    p = run("chat", "--model", model, "--prompt", "床前明月光", "--temperature", 0, "--max-new-tokens", 16)
    assert "疑是地上霜" in p.stdout, p.stdout
    # Interactive: two turns, /reset, end of input ends the program.
    p = subprocess.run([MINDLLM, "chat", "--model", model, "--temperature", "0", "--max-new-tokens", "16"],
                       input="Name a colour.\n/reset\n举头望明月\n", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Blue." in p.stdout and "(history cleared)" in p.stdout and "低头思故乡" in p.stdout, p.stdout


def test_bad_input_is_one_line_and_exit_2(base, chat_data, tmp_path):
    def bad(*args, match):
        p = run(*args, check=False)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert match in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    data = chat_data / "chat.jsonl"
    bad("sft", "--model", "tiny-llama", "--data", data, "--out", tmp_path / "o", match="needs a model directory")
    bad("sft", "--model", base, "--data", data, "--out", tmp_path / "o", match="has no chat template")
    bad("sft", "--model", base, "--data", tmp_path / "missing.json", "--out", tmp_path / "o", "--chat-template", "chatml",
        match="missing.json")
    bad("sft", "--model", base, "--data", data, "--out", tmp_path / "o", "--format", "csv", match="--format")
    bad("sft", "--model", base, "--data", f"{data}:0", "--out", tmp_path / "o", match="weight")
    bad("sft", "--model", base, "--data", data, "--out", tmp_path / "o", "--chat-template", "nope",
        match="nope")
    bad("sft", "--model", base, "--data", data, "--out", tmp_path / "o", "--chat-template", "chatml",
        "--train-on-prompt", "--last-turn-only", match="exclude")
    bad("sft", "--model", base, "--data", data, "--chat-template", "chatml", match="--out")
    for flag, value in (("--neftune-alpha", -1), ("--neftune-alpha", "nan"), ("--val-fraction", 1),
                        ("--val-fraction", -0.1), ("--dry-run-samples", -1), ("--steps", 0)):
        bad("sft", "--model", base, "--data", data, "--out", tmp_path / "o", "--chat-template", "chatml", flag, value,
            match=flag)
    bad("chat", "--model", base, "--prompt", "hi", "--temperature", "-1", match="--temperature")
    bad("chat", "--model", base, "--prompt", "hi", "--frequency-penalty", "2.5", match="--frequency-penalty")
    bad("chat", "--model", base, "--prompt", "hi", "--min-p", "nan", match="--min-p")


def test_ctrl_c_stops_the_answer_not_the_chat(base, tmp_path):
    """A long answer (8000 tokens allowed on a copy of the model with 8192 positions) is stopped by
    SIGINT; the chat then takes the next message; /quit ends it with 0."""
    long = tmp_path / "long"
    long.mkdir()
    for f in ("model.safetensors", "tokenizer.json"):
        shutil.copy(base / f, long / f)
    cfg = json.loads((base / "config.json").read_text())
    cfg["max_position_embeddings"] = 8192
    (long / "config.json").write_text(json.dumps(cfg))
    p = subprocess.Popen([MINDLLM, "chat", "--model", long, "--chat-template", "chatml", "--temperature", "1",
                          "--max-new-tokens", "8000", "--threads", "2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write("Say hello.\n".encode())
    p.stdin.flush()
    first = p.stdout.read1(4096)  # the answer has started
    assert first
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None, p.stderr.read().decode()
    out, err = p.communicate(b"/reset\n/quit\n", timeout=60)
    assert p.returncode == 0, err.decode()
    assert b"(history cleared)" in out
