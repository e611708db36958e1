"""The prefix cache of `mindllm serve`: a chat client's second turn resends the first turn and its
answer; the server reuses the finished first request's K/V blocks (counted in /metrics as
mindllm_prefix_cache_hit_tokens_total) and answers exactly as a server started with
--no-prefix-cache, through the official `openai` client, streamed and not."""
import pytest

from test_serve import CTX, KEY, free_port, metrics, model, openai, start, stop  # noqa: F401 (model: the fixture)

SYSTEM = "You answer questions about numbers and colours. What is two plus two? Four. Name a colour. Blue."


def two_turns(port, model_name, stream):
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=60)

    def ask(messages):
        kw = dict(model=model_name, messages=messages, max_tokens=16, temperature=0)
        if not stream:
            return client.chat.completions.create(**kw).choices[0].message.content
        return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw))

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is two plus two?"}]
    first = ask(messages)
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "Name a colour."}]
    return first, ask(messages)


@pytest.mark.parametrize("stream", [False, True])
def test_second_turn_reuses_the_first_and_answers_as_without_the_cache(model, tmp_path, stream):
    answers, hits = {}, {}
    for flags in ((), ("--no-prefix-cache",)):
        port, log = free_port(), tmp_path / f"serve{len(flags)}.log"
        p = start(model, port, log, "--api-key", KEY, "--chat-template", "chatml", "--ctx", str(CTX), *flags)
        try:
            before = metrics(port)["mindllm_prefix_cache_hit_tokens_total"]
            answers[flags] = two_turns(port, model.name, stream)
            hits[flags] = metrics(port)["mindllm_prefix_cache_hit_tokens_total"] - before
        finally:
            stop(p, log)
    assert answers[()] == answers[("--no-prefix-cache",)]
    assert hits[("--no-prefix-cache",)] == 0
    # Turn 2's prompt starts with turn 1's prompt and answer: at least the system prompt's blocks
    # (16 positions each) come from the cache.
    assert hits[()] >= 16 and hits[()] % 16 == 0, hits
