"""`mindllm generate` (the inference engine with its K/V cache) against transformers' greedy
`generate` on the same weights: the same tokens, for gpt2, gpt_neo with local layers, and llama
with GQA; and the CLI's sampling flags and stop strings as a user meets them."""
import json

import pytest
import torch
import transformers

from mindllm_ref import randomize_, run, write_model_dir
from test_model_parity import HF_CASES

CASES = ["gpt2", "gpt_neo_local", "llama_swiglu_gqa", "llama_gelu_tanh_bias_mqa"]


def make_model(name, tmp_path):
    cfg = HF_CASES[name]
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg), seed=3 + len(name)).float().eval()
    sd = {k: v.clone() for k, v in model.state_dict().items()
          if not k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias", "attention.masked_bias"))}
    write_model_dir(tmp_path / name, json.loads(cfg.to_json_string()), sd)
    return model, tmp_path / name


@pytest.mark.parametrize("name", CASES)
def test_greedy_tokens_match_transformers(name, tmp_path):
    model, d = make_model(name, tmp_path)
    prompt = [5, 17, 33, 2, 81, 40, 9]
    n = 30  # past gpt_neo's local window (5) and several cache blocks
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=n, min_new_tokens=n,
                             eos_token_id=None, pad_token_id=0)
    want = out[0, len(prompt):].tolist()
    got = run("generate", "--model", d, "--prompt-ids", " ".join(map(str, prompt)), "--temperature", 0,
              "--max-new-tokens", n, "--no-stop-at-eos", "--threads", 2).stdout.split()
    assert [int(x) for x in got] == want


def test_greedy_repetition_penalty_matches_transformers(tmp_path):
    model, d = make_model("llama_swiglu_gqa", tmp_path)
    prompt = [5, 17, 33, 2, 81, 40, 9]
    n = 30
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, repetition_penalty=1.3, max_new_tokens=n,
                             min_new_tokens=n, eos_token_id=None, pad_token_id=0)
        plain = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=n, min_new_tokens=n,
                               eos_token_id=None, pad_token_id=0)
    want = out[0, len(prompt):].tolist()
    assert want != plain[0, len(prompt):].tolist()  # the penalty matters here
    got = run("generate", "--model", d, "--prompt-ids", " ".join(map(str, prompt)), "--temperature", 0,
              "--repetition-penalty", 1.3, "--max-new-tokens", n, "--no-stop-at-eos", "--threads", 2).stdout.split()
    assert [int(x) for x in got] == want


def test_stops_at_the_positions_of_learned_embeddings(tmp_path):
    _, d = make_model("gpt2", tmp_path)  # 64 positions
    p = run("generate", "--model", d, "--prompt-ids", " ".join(["1"] * 60), "--temperature", 0,
            "--max-new-tokens", 20, "--no-stop-at-eos")
    assert len(p.stdout.split()) == 5  # 60 fed + 4 more fed = 64; the 5th is sampled, not fed
    assert "64 positions" in p.stderr


@pytest.mark.parametrize("flag,value", [("--temperature", "-1"), ("--temperature", "nan"), ("--temperature", "inf"),
                                        ("--top-k", "-1"), ("--top-p", "nan"), ("--top-p", "0"),
                                        ("--min-p", "1.5"), ("--presence-penalty", "3"),
                                        ("--frequency-penalty", "nan"), ("--repetition-penalty", "0")])
def test_bad_sampling_flags_are_refused(flag, value, tmp_path):
    _, d = make_model("gpt2", tmp_path)
    p = run("generate", "--model", d, "--prompt-ids", "1 2", flag, value, check=False)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and flag.lstrip("-") in p.stderr, p.stderr


def test_trained_checkpoint_stops_at_eos_in_transformers_and_mindllm(tmp_path):
    """train writes the tokenizer's <|endoftext|> as eos_token_id (config.json and
    generation_config.json): transformers' generate and mindllm's stop there (issue 24 item 10)."""
    import numpy as np
    from mindllm_ref import write_shard
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat\n" * 50)
    tok = tmp_path / "tokenizer.json"
    run("tokenizer", "train", "--input", text, "--vocab-size", 300, "--special", "<|endoftext|>", "--output", tok,
        "--quiet")
    eos = 0  # the first special token
    data = tmp_path / "data"
    data.mkdir()
    doc = [40, 41, 42, 43, 44, 45, eos]  # every document: the same six tokens, then end of text
    write_shard(data / "train-000.bin", np.tile(doc, 3000), 300)
    run("train", "--model", "tiny-llama", "--data", data, "--out", tmp_path / "run", "--steps", 60, "--batch", 4,
        "--seq", 32, "--lr", 3e-3, "--warmup", 5, "--tokenizer", tok, "--threads", 2, "--log-every", 100)
    ckpt = tmp_path / "run" / "ckpt" / "step-0000060"
    for f in ("config.json", "generation_config.json"):
        assert json.loads((ckpt / f).read_text())["eos_token_id"] == eos, f
    prompt = [40, 41, 42, 43, 44, 45, eos, 40, 41]
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt).float().eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20, pad_token_id=eos)
    hf_new = out[0, len(prompt):].tolist()
    assert hf_new == [42, 43, 44, 45, eos], hf_new  # stopped at eos, well before 20 tokens
    got = run("generate", "--model", ckpt, "--prompt-ids", " ".join(map(str, prompt)), "--temperature", 0,
              "--max-new-tokens", 20, "--threads", 2).stdout.split()
    assert [int(x) for x in got] == hf_new
