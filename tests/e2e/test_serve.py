"""`mindllm serve` through the official `openai` client and raw HTTP: chat and completions, stream
and not, stop strings, max_tokens, n > 1, the API key, OpenAI's error shapes, greedy text equal to
`mindllm generate`'s, a client that leaves mid-stream, concurrent streams equal to their solo runs,
and a clean exit on SIGTERM."""
import http.client
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mindllm_ref import MINDLLM, run, tiny_chat_model

openai = pytest.importorskip("openai")
if "without cpp-httplib" in subprocess.run([MINDLLM, "serve", "--model", "-"], capture_output=True, text=True).stderr:
    pytest.skip("this mindllm was built without the HTTP server", allow_module_level=True)

KEY = "test-key"
CTX = 128


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny llama model directory with a 400-token tokenizer (ChatML specials)."""
    d = tmp_path_factory.mktemp("serve")
    text = "What is two plus two? Four. Name a colour. Blue. 床前明月光 疑是地上霜\n" * 50
    return tiny_chat_model(d, text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    c.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    r = c.getresponse()
    out = r.status, r.getheaders(), r.read()
    c.close()
    return out


def start(model, port, log, *flags):
    with open(log, "w") as err:
        p = subprocess.Popen([MINDLLM, "serve", "--model", str(model), "--port", str(port), "--threads", "2", *flags],
                             stderr=err)
    deadline = time.time() + 30
    while True:
        try:
            if request(port, "GET", "/health", timeout=2)[0] == 200:
                return p
        except OSError:
            pass
        assert p.poll() is None, log.read_text()
        assert time.time() < deadline, "server did not become ready"
        time.sleep(0.1)


def stop(p, log):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0, log.read_text()


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "serve.log"
    p = start(model, port, log, "--parallel", "4", "--api-key", KEY, "--chat-template", "chatml", "--ctx", str(CTX))
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=60)
    yield SimpleNamespace(port=port, proc=p, log=log, client=client, model=model.name)
    stop(p, log)


@pytest.fixture(scope="module")
def long_server(model, tmp_path_factory):
    """The same model allowed 8192 positions (rotary), one sequence at a time, one waiting: a greedy
    answer of 8000 tokens takes seconds."""
    d = tmp_path_factory.mktemp("long")
    for f in ("model.safetensors", "tokenizer.json"):
        shutil.copy(model / f, d / f)
    cfg = json.loads((model / "config.json").read_text())
    cfg["max_position_embeddings"] = 8192
    (d / "config.json").write_text(json.dumps(cfg))
    port = free_port()
    p = start(d, port, d / "serve.log", "--parallel", "1", "--max-queue", "1")
    yield SimpleNamespace(port=port, proc=p)
    stop(p, d / "serve.log")


def health(port):
    return json.loads(request(port, "GET", "/health", timeout=1)[2])


def open_stream(port, body, wait_data=True):
    """A streaming completion on a raw socket; with wait_data, returns once the first event came."""
    s = socket.create_connection(("127.0.0.1", port))
    body = json.dumps({**body, "stream": True})
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: {KEY}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
    got = b""
    while wait_data and b"data: " not in got:
        got += s.recv(4096)
    return s


def wait_idle(port, timeout=30):
    deadline = time.time() + timeout
    while (h := health(port))["active"] or h["queued"]:
        assert time.time() < deadline, h
        time.sleep(0.02)


def greedy(server, prompt, n=12, **kw):
    return server.client.completions.create(model=server.model, prompt=prompt, max_tokens=n, temperature=0, **kw)


def test_health_models_and_access_log(server):
    status, _, body = request(server.port, "GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = request(server.port, "GET", "/v1/models")  # public: no key
    assert status == 200 and json.loads(body)["data"][0]["id"] == server.model
    assert [m.id for m in server.client.models.list()] == [server.model]
    assert "GET /v1/models 200" in server.log.read_text()


def metrics(port):
    status, headers, body = request(port, "GET", "/metrics", headers={"X-Api-Key": KEY})
    assert status == 200 and dict(headers)["Content-Type"].startswith("text/plain"), (status, headers)
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_count_requests_tokens_and_latency(server):
    before = metrics(server.port)
    r = greedy(server, "Name a colour.", 10)
    list(greedy(server, "Name a colour.", 10, stream=True))
    request(server.port, "GET", "/no/such/route")
    after = metrics(server.port)
    key = 'mindllm_requests_total{path="/v1/completions",status="200"}'
    assert after[key] - before.get(key, 0) == 2
    assert after['mindllm_requests_total{path="other",status="404"}'] >= 1
    assert after["mindllm_prompt_tokens_total"] - before["mindllm_prompt_tokens_total"] == 2 * r.usage.prompt_tokens
    assert after["mindllm_completion_tokens_total"] - before["mindllm_completion_tokens_total"] == 2 * r.usage.completion_tokens
    for h in ("mindllm_request_duration_seconds", "mindllm_time_to_first_token_seconds"):
        assert after[h + "_count"] - before.get(h + "_count", 0) == 2
        assert after[h + '_bucket{le="+Inf"}'] == after[h + "_count"]
    assert "mindllm_active_sequences" in after and "mindllm_queued_sequences" in after
    assert request(server.port, "GET", "/metrics")[0] == 401  # behind the API key


def test_greedy_completion_equals_generate(server, model):
    prompt = "What is two plus two?"
    r = greedy(server, prompt, 16)
    ref = subprocess.run([MINDLLM, "generate", "--model", model, "--prompt", prompt, "--temperature", "0",
                          "--max-new-tokens", "16"], capture_output=True, check=True)
    # A barely trained model writes invalid UTF-8 too: JSON carries it as U+FFFD.
    assert ref.stdout.decode("utf-8", "replace") == prompt + r.choices[0].text + "\n"
    # The same prompt as token ids (/tokenize) gives the same text.
    ids = json.loads(request(server.port, "POST", "/tokenize", {"content": prompt}, {"X-Api-Key": KEY})[2])["tokens"]
    assert greedy(server, ids, 16).choices[0].text == r.choices[0].text
    assert r.usage.prompt_tokens == len(ids)
    back = request(server.port, "POST", "/detokenize", {"tokens": ids}, {"X-Api-Key": KEY})
    assert json.loads(back[2]) == {"content": prompt}


def assert_greedy_equals_generate(model, tmp_path, kv):
    """With --kv-cache kv, the server's greedy completion is `generate --kv-cache kv`'s."""
    prompt = "Name a colour."
    ref = subprocess.run([MINDLLM, "generate", "--model", model, "--prompt", prompt, "--temperature", "0",
                          "--max-new-tokens", "16", "--kv-cache", kv], capture_output=True, check=True)
    port, log = free_port(), tmp_path / "serve.log"
    p = start(model, port, log, "--kv-cache", kv)
    try:
        body = {"prompt": prompt, "max_tokens": 16, "temperature": 0}
        status, _, raw = request(port, "POST", "/v1/completions", body)
        assert status == 200, raw
        assert ref.stdout.decode("utf-8", "replace") == prompt + json.loads(raw)["choices"][0]["text"] + "\n"
    finally:
        stop(p, log)


def test_bf16_kv_cache_greedy_equals_generate(model, tmp_path):
    """--kv-cache bf16 (llama-server keeps f16 K/V by default)."""
    assert_greedy_equals_generate(model, tmp_path, "bf16")


def test_q8_kv_cache_greedy_equals_generate(model, tmp_path):
    """--kv-cache q8_0 (llama.cpp's -ctk / -ctv q8_0): on heads of 32 the server's greedy answer is
    `generate --kv-cache q8_0`'s; on the tiny model's heads of 16 both refuse it in one line, exit 2."""
    for cmd in (["generate", "--prompt", "Name a colour."], ["serve", "--port", str(free_port())]):
        p = subprocess.run([MINDLLM, *cmd, "--model", model, "--kv-cache", "q8_0"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 2 and "multiple of 32" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    cfg = json.loads((Path(__file__).parents[2] / "configs" / "tiny-llama.json").read_text())
    cfg.update(num_attention_heads=2, num_key_value_heads=1)  # heads of 32
    wide = tiny_chat_model(tmp_path / "m", "What is two plus two? Four. Name a colour. Blue.\n" * 50, cfg)
    assert_greedy_equals_generate(wide, tmp_path, "q8_0")


def test_streamed_completion_and_usage(server):
    whole = greedy(server, "Name a colour.", 20)
    chunks = list(greedy(server, "Name a colour.", 20, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_chat_stream_and_not(server):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    r = server.client.chat.completions.create(model=server.model, messages=msgs, max_tokens=12, temperature=0)
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    chunks = list(server.client.chat.completions.create(model=server.model, messages=msgs, max_tokens=12,
                                                        temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == r.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == r.choices[0].finish_reason
    # /apply-template renders what the chat endpoint prompts with.
    status, _, body = request(server.port, "POST", "/apply-template", {"messages": msgs}, {"X-Api-Key": KEY})
    assert status == 200 and json.loads(body)["prompt"].endswith("<|im_start|>assistant\n")


def test_stop_strings_and_max_tokens(server):
    text = greedy(server, "Four.", 24).choices[0].text
    # Two printable ASCII characters from the second half of the answer (it holds invalid UTF-8 too).
    k = next(k for k in range(len(text) // 2, len(text) - 1) if text[k:k + 2].isascii() and text[k:k + 2].isprintable())
    stop = text[k:k + 2]
    for stops in (stop, ["\x01never", stop]):
        r = greedy(server, "Four.", 24, stop=stops)
        assert r.choices[0].text == text[:text.find(stop)] and r.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in greedy(server, "Four.", 24, stop=stop, stream=True))
    assert streamed == text[:text.find(stop)]
    r = greedy(server, "Blue.", 3)
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 3


def test_n_choices(server):
    r = server.client.completions.create(model=server.model, prompt="Four.", max_tokens=8, n=3, temperature=1.0,
                                         seed=7)
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    again = server.client.completions.create(model=server.model, prompt="Four.", max_tokens=8, n=3, temperature=1.0,
                                             seed=7)
    assert [c.text for c in again.choices] == [c.text for c in r.choices]  # seeded: reproducible
    chunks = list(server.client.chat.completions.create(model=server.model, n=2, max_tokens=6, stream=True,
                                                        messages=[{"role": "user", "content": "hi"}]))
    assert sorted(ch.index for c in chunks for ch in c.choices if ch.finish_reason) == [0, 1]


def test_api_key(server):
    bad = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.completions.create(model=server.model, prompt="hi", max_tokens=2)
    assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    status, _, _ = request(server.port, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2},
                           {"X-Api-Key": KEY})
    assert status == 200


def test_penalties_change_greedy_output_as_in_generate(server, model):
    prompt = "Blue. Blue. Blue. Blue. Blue."
    plain = greedy(server, prompt, 16).choices[0].text
    pen = greedy(server, prompt, 16, frequency_penalty=1.5, presence_penalty=0.5,
                 extra_body={"repetition_penalty": 1.3, "min_p": 0.05}).choices[0].text
    assert pen != plain
    ref = subprocess.run([MINDLLM, "generate", "--model", model, "--prompt", prompt, "--temperature", "0",
                          "--max-new-tokens", "16", "--frequency-penalty", "1.5", "--presence-penalty", "0.5",
                          "--repetition-penalty", "1.3", "--min-p", "0.05"], capture_output=True, check=True)
    assert ref.stdout.decode("utf-8", "replace") == prompt + pen + "\n"


def test_logprobs_completion_and_chat_stream_and_not(server):
    import math
    prompt = "What is two plus two?"
    r = greedy(server, prompt, 8, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 8
    for tok, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert len(top) <= 3 and l <= 0 and math.isclose(l, max(top.values()), abs_tol=1e-6)  # greedy: the top one
        assert sum(math.exp(v) for v in top.values()) <= 1 + 1e-6
    streamed = [c.choices[0].logprobs for c in greedy(server, prompt, 8, logprobs=3, stream=True)
                if c.choices and c.choices[0].logprobs]
    assert [l for x in streamed for l in x.token_logprobs] == pytest.approx(lp.token_logprobs)
    # text_offset: where each token starts in the completion text (characters), streamed or not.
    assert [o for x in streamed for o in x.text_offset] == lp.text_offset
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    text = r.choices[0].text
    for i, (tok, off) in enumerate(zip(lp.tokens, lp.text_offset)):
        if tok.startswith("<|"):  # a special token: listed, but no part of the text
            break
        if "\ufffd" not in tok and "\ufffd" not in text[:off + len(tok)]:  # whole characters
            assert text[off:off + len(tok)] == tok and off == len("".join(lp.tokens[:i])), (i, lp.tokens, text)
    assert greedy(server, prompt, 8).choices[0].logprobs is None
    msgs = [{"role": "user", "content": "Name a colour."}]
    c = server.client.chat.completions.create(model=server.model, messages=msgs, max_tokens=6, temperature=0,
                                              logprobs=True, top_logprobs=2)
    content = c.choices[0].logprobs.content
    assert 1 <= len(content) <= 6
    for t in content:
        assert len(t.top_logprobs) == 2 and math.isclose(t.logprob, t.top_logprobs[0].logprob, abs_tol=1e-6)
        assert bytes(t.bytes).decode("utf-8", "replace") == t.token
    chunks = server.client.chat.completions.create(model=server.model, messages=msgs, max_tokens=6, temperature=0,
                                                   logprobs=True, top_logprobs=2, stream=True)
    got = [t.logprob for ch in chunks if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.content]
    assert got == pytest.approx([t.logprob for t in content])


@pytest.mark.parametrize("body,param", [
    ("{not json", None),
    ({"model": "x", "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"messages": "hi"}, "messages"),
    ({}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": -1}, "temperature"),
    ('{"messages": [{"role": "user", "content": "hi"}], "top_p": 1e999}', None),
    ('{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', None),
    (b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', None),  # invalid UTF-8
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 0}, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": [1]}, "stop"),
    ({"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 2.5}, "presence_penalty"),
    ({"messages": [{"role": "user", "content": "hi"}], "frequency_penalty": "1"}, "frequency_penalty"),
    ({"messages": [{"role": "user", "content": "hi"}], "repetition_penalty": 0}, "repetition_penalty"),
    ({"messages": [{"role": "user", "content": "hi"}], "min_p": -0.1}, "min_p"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}, "top_logprobs"),
    ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 50}, "top_logprobs"),
    ({"messages": [{"role": "user", "content": "床前明月光 " * 200}]}, "messages"),
])
def test_bad_requests_are_400_in_openai_shape(server, body, param):
    status, _, raw = request(server.port, "POST", "/v1/chat/completions", body, {"Authorization": f"Bearer {KEY}"})
    assert status == 400, raw
    err = json.loads(raw)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"] and err["param"] == param


def test_other_statuses_in_openai_shape(server):
    status, _, raw = request(server.port, "GET", "/v1/nothing")
    assert status == 404 and json.loads(raw)["error"]["code"] == "not_found"
    status, _, raw = request(server.port, "POST", "/v1/completions", b"{" + b" " * (2 << 20) + b"}",
                             {"X-Api-Key": KEY})
    assert status == 413 and "exceeds" in json.loads(raw)["error"]["message"]
    status, _, raw = request(server.port, "POST", "/v1/completions", {"prompt": [399999]}, {"X-Api-Key": KEY})
    assert status == 400 and "vocabulary" in json.loads(raw)["error"]["message"]


def test_client_that_leaves_mid_stream(long_server):
    port = long_server.port
    before = health(port)["tokens_generated"]
    s = open_stream(port, {"prompt": "Four.", "max_tokens": 8000, "temperature": 0})
    s.close()
    t0 = time.time()
    assert health(port)["status"] == "ok" and time.time() - t0 < 1
    # Its generation ended at once: far fewer than the 8000 tokens it asked for.
    wait_idle(port)
    assert health(port)["tokens_generated"] - before < 1000


def test_full_queue_is_503_with_retry_after(long_server):
    port = long_server.port
    running = open_stream(port, {"prompt": "Four.", "max_tokens": 8000, "temperature": 0})
    waiting = open_stream(port, {"prompt": "Blue.", "max_tokens": 8000, "temperature": 0}, wait_data=False)
    deadline = time.time() + 10
    while health(port)["queued"] < 1:
        assert time.time() < deadline
        time.sleep(0.01)
    status, headers, raw = request(port, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2})
    assert status == 503 and dict(headers)["Retry-After"] == "1"
    assert json.loads(raw)["error"]["code"] == "server_busy"
    running.close()
    waiting.close()
    wait_idle(port)
    assert request(port, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2})[0] == 200


def test_hostile_clients_leave_the_server_answering(server):
    slow = []
    for _ in range(16):  # slowloris: headers that never end
        c = socket.create_connection(("127.0.0.1", server.port))
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(c)
    t0 = time.time()
    for _ in range(300):  # quick connects: none waits for a SYN retry (httplib's backlog of 5 is widened)
        socket.create_connection(("127.0.0.1", server.port)).close()
    assert time.time() - t0 < 5
    c = socket.create_connection(("127.0.0.1", server.port))
    c.sendall(b"\x00\xff garbage\r\n\r\n")
    c.recv(1024)
    c.close()
    t0 = time.time()
    assert request(server.port, "GET", "/health", timeout=1)[0] == 200 and time.time() - t0 < 1
    for c in slow:
        c.close()


def test_concurrent_streams_equal_their_solo_runs(server):
    prompts = [f"{w} {i}" for i, w in enumerate(["Blue.", "Four.", "Name", "What", "colour", "two", "plus", "床前"])]
    solo = [greedy(server, p, 24).choices[0].text for p in prompts]
    out = [None] * len(prompts)

    def stream(i):
        out[i] = "".join(c.choices[0].text for c in greedy(server, prompts[i], 24, stream=True))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert out == solo


def test_sigterm_ends_the_server_with_0(model, tmp_path):
    port = free_port()
    p = subprocess.Popen([MINDLLM, "serve", "--model", str(model), "--port", str(port), "--threads", "1"],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if request(port, "GET", "/health", timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    assert "shutting down" in p.stderr.read()


def test_bad_flags_exit_2(model, tmp_path):
    p = subprocess.run([MINDLLM, "serve", "--model", str(tmp_path / "none")], capture_output=True, text=True)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    for origin in ("example.com", "https://example.com/path", "https://a b", "https://x\r\nSet-Cookie: y", ""):
        p = subprocess.run([MINDLLM, "serve", "--model", str(model), "--cors-origin", origin],
                           capture_output=True, text=True)
        assert p.returncode == 2 and "--cors-origin" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    # --kv-cache and --device values outside their sets: one line, exit 2, before anything listens
    # (--device cuda without a GPU: scripts/infer-check.sh)
    for flags in (["--kv-cache", "f16"], ["--kv-cache", ""], ["--kv-cache", "bf16 "], ["--device", "tpu"]):
        p = subprocess.run([MINDLLM, "serve", "--model", str(model), *flags], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and flags[0] in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_chat_page_at_root(server):
    status, headers, body = request(server.port, "GET", "/")  # public, like /health
    assert status == 200 and dict(headers)["Content-Type"].startswith("text/html")
    page = body.decode()
    assert page.startswith("<!doctype html>") and "/v1/chat/completions" in page and "getReader" in page


def test_cors_is_off_by_default(server):
    _, headers, _ = request(server.port, "GET", "/v1/models", headers={"Origin": "https://example.com"})
    assert "Access-Control-Allow-Origin" not in dict(headers)
    status, headers, _ = request(server.port, "OPTIONS", "/v1/chat/completions",
                                 headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"})
    assert status != 204 and "Access-Control-Allow-Origin" not in dict(headers)


def test_cors_origin_flag_answers_preflight_and_marks_answers(model, tmp_path):
    port = free_port()
    p = start(model, port, tmp_path / "serve.log", "--cors-origin", "https://example.com", "--api-key", KEY)
    try:
        origin = {"Origin": "https://example.com"}
        # The preflight needs no API key and allows what the browser asks for.
        status, headers, body = request(port, "OPTIONS", "/v1/chat/completions",
                                        headers={**origin, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization, content-type"})
        h = dict(headers)
        assert status == 204 and body == b"", (status, h)
        assert h["Access-Control-Allow-Origin"] == "https://example.com" and "POST" in h["Access-Control-Allow-Methods"]
        assert h["Access-Control-Allow-Headers"] == "authorization, content-type"
        # Answers carry the origin: successes, errors and streams alike.
        for method, path, body, want in [("GET", "/v1/models", None, 200), ("GET", "/v1/nothing", None, 404),
                                         ("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2}, 401)]:
            status, headers, _ = request(port, method, path, body, origin)
            assert status == want and dict(headers)["Access-Control-Allow-Origin"] == "https://example.com"
        status, headers, raw = request(port, "POST", "/v1/completions",
                                       {"prompt": "hi", "max_tokens": 2, "stream": True}, {**origin, "X-Api-Key": KEY})
        assert status == 200 and dict(headers)["Access-Control-Allow-Origin"] == "https://example.com"
        assert raw.endswith(b"data: [DONE]\n\n")
    finally:
        stop(p, tmp_path / "serve.log")


def test_json_ready_and_stop_summaries(model, tmp_path):
    """--json: one "ready" object on stdout once requests are served (url, model), and after
    SIGTERM one "stopped" object with the totals; with --quiet nothing on stderr (no access log)."""
    port = free_port()
    p = subprocess.Popen([MINDLLM, "serve", "--model", str(model), "--port", str(port), "--threads", "1", "--json",
                          "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(p.stdout.readline())
        assert ready["command"] == "serve" and ready["event"] == "ready"
        assert ready["url"] == f"http://127.0.0.1:{port}" and ready["parallel"] >= 1
        status, _, body = request(port, "POST", "/v1/completions", {"prompt": "two plus", "max_tokens": 3})
        assert status == 200, body
        used = json.loads(body)["usage"]
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and err == "", err
    stopped = json.loads(out)
    assert stopped["event"] == "stopped" and stopped["completions"] == 1 and stopped["responses"] >= 1
    assert stopped["completion_tokens"] == used["completion_tokens"]
    assert stopped["prompt_tokens"] == used["prompt_tokens"]
