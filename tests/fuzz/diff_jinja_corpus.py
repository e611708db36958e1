"""Differential check of the Jinja engine against jinja2: renders every template of a fuzz corpus
that transformers' jinja2 environment renders (within 2 s) with `mindllm chat-template` too and
prints where the two differ. Known differences: a generator printed without `| list`, non-string
dict keys, a template ending in a bare `{#`.
    python3 tests/fuzz/diff_jinja_corpus.py build-fuzz/corpus_jinja [MAX]"""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from transformers.utils.chat_template_utils import _compile_jinja_template

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
# The fuzz target's variables (tests/fuzz/fuzz_jinja.cpp).
MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "héllo {{ x }}"},
            {"role": "assistant", "content": "<think>\nr\n</think>\n\nok",
             "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
            {"role": "tool", "content": "22"}]


class Timeout(Exception):
    pass


def on_alarm(*_):
    raise Timeout()


def main():
    corpus, limit = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 400
    signal.signal(signal.SIGALRM, on_alarm)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    (tmp / "m.json").write_text(json.dumps(MESSAGES))
    checked = differ = 0
    for f in sorted(corpus.iterdir()):
        try:
            src = f.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "strftime_now" in src:
            continue
        try:
            signal.alarm(2)
            want = _compile_jinja_template(src).render(messages=MESSAGES, bos_token="<s>", eos_token="</s>",
                                                       add_generation_prompt=True, tools=None)
        except Exception:  # jinja2 rejects it (or ran out of time): nothing to compare
            continue
        finally:
            signal.alarm(0)
        checked += 1
        got = subprocess.run([MINDLLM_BIN, "chat-template", "--model", str(tmp), "--chat-template", str(f),
                              "--messages", str(tmp / "m.json"), "--add-generation-prompt"], capture_output=True)
        out = got.stdout.decode("utf-8", "replace")
        if got.returncode != 0 or out != want:
            differ += 1
            i = next((k for k in range(min(len(out), len(want))) if out[k] != want[k]), min(len(out), len(want)))
            print(f"{f.name}: rc {got.returncode} {got.stderr.decode().strip()[:200]}\n  jinja2:  {want[i-40:i+40]!r}\n"
                  f"  mindllm: {out[i-40:i+40]!r}")
        if checked >= limit:
            break
    print(f"{checked} templates rendered by jinja2, {differ} differ")


if __name__ == "__main__":
    main()
