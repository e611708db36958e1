"""Chat-template parity with transformers: `mindllm chat-template` renders the same bytes as
transformers' apply_chat_template machinery (its jinja2 environment: trim_blocks, lstrip_blocks,
loop controls, its tojson, raise_exception) for every built-in template, Qwen3's
tokenizer_config.json and a set of real templates, over many conversations; and where jinja2
raises, mindllm fails with exit code 2 and one line naming the template line."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from shared_data import SHARED, needs_shared_data

jinja2 = pytest.importorskip("jinja2")
chat_template_utils = pytest.importorskip("transformers.utils.chat_template_utils")

REPO = Path(__file__).resolve().parents[2]
MINDLLM_BIN = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
QWEN3 = SHARED / "tokenizers" / "qwen3"
needs_qwen3 = needs_shared_data("tokenizers", "qwen3", "tokenizer_config.json")

# The built-ins, as the models publish them (mindllm: the format docs/sft.md documents).
BUILTINS = {
    "mindllm": ("", "<|endoftext|>",
                "{%- for message in messages %}\n"
                "    {%- if message['role'] == 'assistant' %}\n"
                "        {{- '<assistant>\\n' + message['content'] + eos_token }}\n"
                "    {%- else %}\n"
                "        {{- '<' + message['role'] + '>\\n' + message['content'] + '\\n' }}\n"
                "    {%- endif %}\n"
                "{%- endfor %}\n"
                "{%- if add_generation_prompt %}\n"
                "    {{- '<assistant>\\n' }}\n"
                "{%- endif %}\n"),
    "chatml": ("", "<|im_end|>",
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}"),
    # meta-llama/Llama-2-7b-chat-hf
    "llama2": ("<s>", "</s>",
               "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message "
               "= messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false "
               "%}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 "
               "== 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
               "{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
               "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
               "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
               "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + "
               "' ' + eos_token }}{% endif %}{% endfor %}"),
    # meta-llama/Meta-Llama-3-8B-Instruct
    "llama3": ("<|begin_of_text|>", "<|eot_id|>",
               "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
               "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
               "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content "
               "}}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
               "}}{% endif %}"),
}

# Real templates of well-known models (written here, rendered from a model directory).
REAL = {
    "zephyr": ("<s>", "</s>",
               "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
               "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + "
               "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + "
               "message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ "
               "'<|assistant|>' }}\n{% endif %}\n{% endfor %}"),
    "mistral": ("<s>", "</s>",
                "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == "
                "0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% "
                "endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
                "message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ "
                "raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"),
    "phi3": ("<s>", "<|endoftext|>",
             "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
             "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% "
             "elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif "
             "%}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"),
    "gemma": ("<bos>", "<eos>",
              "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') "
              "}}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) "
              "%}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif "
              "%}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = "
              "message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
              "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"),
    # Llama-3.1-style: a system block with tojson(indent=4), a default date, namespace-free slicing.
    "llama31": ("<|begin_of_text|>", "<|eot_id|>", """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""),
    # Many constructs at once: macros, namespace, slices, filters, methods, loop variables,
    # for/else, break/continue, block set, comments and whitespace control without dashes.
    "kitchen_sink": ("<B>", "<E>", """{# a comment #}
{% macro turn(role, text, suffix='') -%}
[{{ role | upper }}] {{ text }}{{ suffix }}
{%- endmacro %}
{% set ns = namespace(count=0, roles=[], last='') %}
{% for m in messages if m.content is string %}
    {% set ns.count = ns.count + 1 %}
    {% set ns.roles = ns.roles + [m.role] %}
    {% if loop.first %}first of {{ loop.length }}{% endif %}
    {{ turn(m.role, m.content.strip(), suffix=eos_token if m.role == 'assistant' else '') }}
    {{ loop.index }}/{{ loop.revindex }} {{ loop.index0 }} {{ loop.revindex0 }} {{ loop.last }}
    {% if loop.previtem is defined %}prev={{ loop.previtem.role }}{% endif %}
    {% if loop.nextitem is defined %}next={{ loop.nextitem.role }}{% endif %}
    {% if m.role == 'tool' %}{% continue %}{% endif %}
    {% if ns.count > 6 %}{% break %}{% endif %}
    words={{ m.content.split() | length }} rsplit={{ m.content.rsplit(' ', 1) | tojson }}
    {{ m.content[:5] }}|{{ m.content[-3:] }}|{{ m.content[::-1] }}|{{ m.content[1:9:2] }}
    {{ m.content.startswith('Hi') }} {{ m.content.endswith(('!', '?')) }} {{ 'x' in m.content }}
    {{ m.content | replace(' ', '_') | lower | capitalize }} {{ m.content | length }}
{% else %}
no messages
{% endfor %}
{% set joined %}{{ ns.roles | join(', ') }}{% endset %}
roles: {{ joined }} ({{ ns.roles | unique | list | length }} distinct, first {{ ns.roles | first }}, last {{ ns.roles | last }})
{{ messages | map(attribute='role') | select('equalto', 'user') | list | length }} user turns;
{{ messages | selectattr('role', 'equalto', 'assistant') | map(attribute='content') | map('trim') | list | tojson }}
{{ messages | rejectattr('role', 'in', ['user', 'assistant']) | list | length }} others
{{ {'a': 1, 'b': [1, 2.5, none, true], 'c': {'d': "é\\n\\"q\\""}} | tojson(indent=2) }}
{{ {'z': 1, 'a': 2} | tojson }} {{ {'z': 1, 'a': 2} | items | list }} {{ {'k': 'v'}.get('k') }} {{ {'k': 'v'}.get('x', 'dflt') }}
{% for k, v in {'one': 1, 'two': 2}.items() %}{{ k }}={{ v }}{{ ', ' if not loop.last }}{% endfor %}
{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }}
{{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none ~ true }} {{ (1, 2) }} {{ none }} {{ undefined_thing }}|{{ undefined_thing | default('D') }}
{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ none is none }} {{ 'x' is string }} {{ 1 is number }} {{ 1.0 is integer }}
{{ messages is sequence }} {{ messages[0] is mapping }} {{ true is boolean }} {{ false is false }} {{ add_generation_prompt is true }}
{{ 'a' if messages | length > 2 else 'b' }} {{ not messages }} {{ 1 < 2 < 3 }} {{ 'b' > 'a' }} {{ [1, 2] == [1, 2] }} {{ 1 == 1.0 }}
{{ "{} and {}".format('x', 2) }} {{ '  pad  ' | trim }}|{{ '--x--'.strip('-') }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split(None, 1) }}
{{ 'Hello World'.lower() }} {{ 'hello'.upper() }} {{ 'hello world' | title }} {{ 'aXbX'.replace('X', '-', 1) }} {{ range(3) | list }} {{ range(10, 0, -3) | list }}
{{ '%d items' if false else 'n/a' }} {{ 123 | string }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ [3, 1, 2] | reverse | list }} {{ 'abc' | reverse }}
  {%- if add_generation_prompt %}
{{ eos_token }}GEN
  {%- endif %}
"""),
}

# Conversations: system or not, multi-turn, empty content, unicode, special characters.
CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hi there!"}],
    "system_user": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hello?"}],
    "multi": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi! What is 2+2?"},
              {"role": "assistant", "content": "4."}, {"role": "user", "content": "And 3+3?"},
              {"role": "assistant", "content": " 6, I think. "}, {"role": "user", "content": "Thanks?"}],
    "no_system_multi": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}],
    "empty": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
    "chinese": [{"role": "system", "content": "你是一个乐于助人的助手。"}, {"role": "user", "content": "床前明月光，疑是地上霜。\u3000下一句？"},
                {"role": "assistant", "content": "举头望明月，低头思故乡。😀"}],
    "special": [{"role": "user", "content": "quotes ' \" backslash \\ braces {{ x }} {% if %} {# c #} tab\t nl\n\nend\r\n"},
                {"role": "assistant", "content": "<|im_end|><|endoftext|></s>[INST]<<SYS>>\n  padded  \n"},
                {"role": "user", "content": "\x01\x1f control \u2028 sep"}],
    "whitespace": [{"role": "user", "content": "  \n lead and trail \n\n  "}, {"role": "assistant", "content": "\n\nok\n"}],
    "assistant_first": [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
    "think": [{"role": "user", "content": "2+2?"},
              {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
              {"role": "user", "content": "and 3+3?"},
              {"role": "assistant", "content": "<think>\n\n</think>\n\n6"}],
    "think_last": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"},
                   {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
                   {"role": "assistant", "content": "<think>\nreasoning here\n</think>\nfinal answer"}],
    "reasoning_field": [{"role": "user", "content": "q"},
                        {"role": "assistant", "content": "answer", "reasoning_content": "because"}],
    "tool_calls": [{"role": "system", "content": "sys"}, {"role": "user", "content": "北京天气?"},
                   {"role": "assistant", "content": "",
                    "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                     "arguments": {"city": "北京", "unit": "c"}}},
                                   {"name": "raw", "arguments": "{\"x\": 1}"}]},
                   {"role": "tool", "content": "{\"temp\": 22}"}, {"role": "assistant", "content": "22°C"}],
    "tool": [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": "calling"},
             {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "22C"},
             {"role": "user", "content": "<tool_response>x</tool_response>"}],
}


def run_mindllm(tmp_path, args, messages, extra=None):
    path = tmp_path / "messages.json"
    data = {"messages": messages, **extra} if extra else messages
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([MINDLLM_BIN, "chat-template", "--messages", str(path), *args], capture_output=True)


def render_python(source, bos, eos, messages, agp, extra=None):
    """transformers' apply_chat_template rendering: its compiled environment, the special tokens and
    tools=None as template variables."""
    tmpl = chat_template_utils._compile_jinja_template(source)
    kwargs = {"bos_token": bos, "eos_token": eos, "tools": None, "documents": None}
    kwargs.update(extra or {})
    return tmpl.render(messages=messages, add_generation_prompt=agp, **kwargs)


def check(tmp_path, args, source, bos, eos, messages, agp, extra=None):
    try:
        want = render_python(source, bos, eos, messages, agp, extra)
    except jinja2.exceptions.TemplateError as e:
        want = e
    got = run_mindllm(tmp_path, args + (["--add-generation-prompt"] if agp else []), messages, extra)
    if isinstance(want, Exception):
        err = got.stderr.decode()
        assert got.returncode == 2, (want, got.stdout.decode(), err)
        assert err.count("\n") == 1 and " line " in err, err
        if isinstance(want, jinja2.exceptions.UndefinedError):
            return
        assert str(want) in err, (str(want), err)
        return
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode("utf-8") == want


def model_dir(tmp_path, source, bos, eos):
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": bos, "eos_token": {"content": eos},
                                                         "chat_template": source}), encoding="utf-8")
    return d


@pytest.mark.parametrize("agp", [False, True])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin(tmp_path, name, conv, agp):
    bos, eos, source = BUILTINS[name]
    check(tmp_path, ["--chat-template", name], source, bos, eos, CONVERSATIONS[conv], agp)


@pytest.mark.parametrize("agp", [False, True])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_template(tmp_path, name, conv, agp):
    bos, eos, source = REAL[name]
    d = model_dir(tmp_path, source, bos, eos)
    check(tmp_path, ["--model", str(d)], source, bos, eos, CONVERSATIONS[conv], agp)


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "天气 \"now\"",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                   "required": ["city"]}}}]


@pytest.mark.parametrize("extra", [None, {"enable_thinking": False}, {"enable_thinking": True}, {"tools": TOOLS}])
@pytest.mark.parametrize("agp", [False, True])
@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@needs_qwen3
def test_qwen3(tmp_path, conv, agp, extra):
    cfg = json.loads((QWEN3 / "tokenizer_config.json").read_text(encoding="utf-8"))
    eos = cfg["eos_token"]
    # bos_token is null in Qwen3's config: transformers leaves it out; mindllm passes "" (same output).
    check(tmp_path, ["--chat-template", str(QWEN3 / "tokenizer_config.json")], cfg["chat_template"], "", eos,
          CONVERSATIONS[conv], agp, extra)


@needs_qwen3
def test_qwen3_model_dir(tmp_path):
    cfg = json.loads((QWEN3 / "tokenizer_config.json").read_text(encoding="utf-8"))
    got = run_mindllm(tmp_path, ["--model", str(QWEN3), "--add-generation-prompt"], CONVERSATIONS["think_last"])
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode() == render_python(cfg["chat_template"], "", cfg["eos_token"],
                                                CONVERSATIONS["think_last"], True)
