"""`mindllm chat-template` as a user runs it: a model directory's template, bad input as one line
and exit code 2 (template errors name the line). Parity with transformers is in
tests/reference/test_chat_template.py."""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
USER = [{"role": "user", "content": "Hi there!"}]


def run_mindllm(tmp_path, args, messages):
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([MINDLLM_BIN, "chat-template", "--messages", str(path), *args], capture_output=True)


def model_dir(tmp_path, source, bos, eos):
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": bos, "eos_token": {"content": eos},
                                                         "chat_template": source}), encoding="utf-8")
    return d


def test_builtin_and_generation_prompt(tmp_path):
    got = run_mindllm(tmp_path, ["--chat-template", "mindllm", "--add-generation-prompt"], USER)
    assert got.returncode == 0 and got.stdout.decode() == "<user>\nHi there!\n<assistant>\n"


def test_extra_variables(tmp_path):
    src = tmp_path / "t.jinja"
    src.write_text("{{ messages | length }} {{ enable_thinking }}", encoding="utf-8")
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"messages": USER, "enable_thinking": False}), encoding="utf-8")
    got = subprocess.run([MINDLLM_BIN, "chat-template", "--chat-template", str(src), "--messages", str(path)],
                         capture_output=True)
    assert got.returncode == 0 and got.stdout.decode() == "1 False"


def test_chat_template_jinja_file_wins(tmp_path):
    d = model_dir(tmp_path, "from config", "<s>", "</s>")
    (d / "chat_template.jinja").write_text("{{ bos_token }}from file{{ eos_token }}\n", encoding="utf-8")
    got = run_mindllm(tmp_path, ["--model", str(d)], USER)
    assert got.returncode == 0 and got.stdout.decode() == "<s>from file</s>"


@pytest.mark.parametrize("args,messages,needle", [
    (["--chat-template", "nope"], [], "neither a built-in template (mindllm, chatml, llama2, llama3) nor a file"),
    ([], [], "pass --chat-template"),
    (["--chat-template", "chatml"], {"x": 1}, "needs a \"messages\" list"),
    (["--chat-template", "chatml"], [{"content": "x"}], "\"role\" must be a string"),
    (["--chat-template", "llama2"], [{"role": "assistant", "content": "x"}],
     "line 1: raise_exception: Conversation roles must alternate"),
])
def test_bad_input(tmp_path, args, messages, needle):
    got = run_mindllm(tmp_path, args, messages)
    err = got.stderr.decode()
    assert got.returncode == 2 and err.count("\n") == 1 and needle in err, err


def test_bad_template_names_line(tmp_path):
    src = tmp_path / "t.jinja"
    src.write_text("ok\n{% for m in messages %}\n{{ m.content | nosuchfilter }}\n{% endfor %}\n", encoding="utf-8")
    got = run_mindllm(tmp_path, ["--chat-template", str(src)], USER)
    err = got.stderr.decode()
    assert got.returncode == 2 and "line 3" in err and "nosuchfilter" in err, err
    src.write_text("a\nb\n{% if x %}\nno end\n", encoding="utf-8")
    got = run_mindllm(tmp_path, ["--chat-template", str(src)], USER)
    err = got.stderr.decode()
    assert got.returncode == 2 and "line 3" in err and "endif" in err, err
