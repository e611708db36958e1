"""--json on the model commands (generate, quantize): the final summary as one JSON object on
stdout, nothing else there (no streamed text), nothing on stderr with --quiet, and the numbers
agree with the command's plain output."""
import json

import pytest

from mindllm_ref import run, tiny_chat_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    return tiny_chat_model(d, "the cat sat on the mat. the dog sat on the log.\n" * 40)


def test_generate_json_equals_the_streamed_output(model):
    args = ["generate", "--model", model, "--prompt-ids", "5 6 7", "--max-new-tokens", 6, "--no-stop-at-eos",
            "--threads", 2]
    streamed = [int(x) for x in run(*args).stdout.split()]
    p = run(*args, "--json", "--quiet")
    s = json.loads(p.stdout)
    assert p.stderr == "" and len(p.stdout.splitlines()) == 1
    assert s["command"] == "generate" and s["tokens"] == streamed and len(streamed) == 6
    assert s["prompt_tokens"] == 3 and s["finish"] == "length" and s["tokens_per_s"] > 0
    assert s["decode_tokens_per_s"] > 0 and "text" not in s
    text_args = ["generate", "--model", model, "--prompt", "the cat", "--max-new-tokens", 5, "--threads", 2]
    s = json.loads(run(*text_args, "--json").stdout)  # an untrained model: any bytes (invalid UTF-8 -> U+FFFD)
    assert isinstance(s["text"], str) and 1 <= len(s["tokens"]) <= 5 and s["prompt_tokens"] >= 2


def test_quantize_json(model, tmp_path):
    p = run("quantize", "--model", model, "--type", "q8_0", "--out", tmp_path / "q8", "--json", "--quiet")
    s = json.loads(p.stdout)
    assert p.stderr == "" and s == {"command": "quantize", "model": str(model), "out": str(tmp_path / "q8"),
                                    "type": "q8_0"}
    assert (tmp_path / "q8" / "config.json").exists()
    p = run("quantize", "--model", model, "--type", "q4_0", "--out", tmp_path / "q4")
    assert p.stdout == "" and "quantized" in p.stderr


def test_chat_one_shot_json(model):
    args = ["chat", "--model", model, "--chat-template", "chatml", "--prompt", "the cat", "--max-new-tokens", 4,
            "--threads", 2]
    s = json.loads(run(*args, "--json", "--quiet").stdout)
    assert s["command"] == "chat" and isinstance(s["text"], str) and 1 <= s["tokens"] <= 4
    assert s["finish"] in ("length", "stop")
    p = run("chat", "--model", model, "--chat-template", "chatml", "--json", check=False)
    assert p.returncode == 2 and "--prompt" in p.stderr


def test_forward_json(model, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file, save_file
    ids = np.array([[5, 6, 7, 8]], dtype=np.int32)
    save_file({"input_ids": ids, "targets": np.array([[6, 7, 8, 9]], dtype=np.int32)}, str(tmp_path / "t.safetensors"))
    p = run("forward", "--model", model, "--tokens", tmp_path / "t.safetensors", "--out", tmp_path / "o.safetensors",
            "--json")
    s = json.loads(p.stdout)
    assert s["command"] == "forward" and s["batch"] == 1 and s["seq"] == 4
    assert abs(s["loss"] - float(load_file(str(tmp_path / "o.safetensors"))["loss"][0])) < 1e-6
