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
