"""Interoperability with transformers: tiny random models of each family (gpt2, gpt_neo, llama,
qwen2) saved by transformers/torch as safetensors, sharded safetensors and pytorch_model.bin
(f32 and bf16) load in mindllm with the same logits; mindllm's exports (hf, bf16) and conversions
load back in transformers with the same logits."""
import copy
import json
import shutil

import pytest
import torch
import transformers

from mindllm_ref import mindllm_forward, randomize_, rel_err, run
from shared_data import shared_data

B, T = 2, 16
V = 101

CONFIGS = {
    "gpt2": lambda: transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt_neo": lambda: transformers.GPTNeoConfig(vocab_size=V, hidden_size=32, num_layers=2, num_heads=4,
                                                 max_position_embeddings=64, window_size=5, intermediate_size=72,
                                                 attention_types=[[["global", "local"], 1]], tie_word_embeddings=False),
    "llama": lambda: transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                              rms_norm_eps=1e-5),
    "qwen2": lambda: transformers.Qwen2Config(vocab_size=V, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                              rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False),
}


def make_model(family, dtype=torch.float32, seed=0):
    """A float32 model whose weights are representable in `dtype` (the reference), and the model
    to save (a `dtype` copy)."""
    cfg = CONFIGS[family]()
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg), seed=seed).eval()
    if dtype == torch.float32:
        return model, model
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    # buffers (rotary inv_freq) stay float32 in the reference, as transformers computes them
    return model, copy.deepcopy(model).to(dtype)


def ids(seed=3):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def hf_logits(model, x):
    with torch.no_grad():
        return model(input_ids=x).logits.double()


def mindllm_logits(d, x, tmp):
    logits, _, _ = mindllm_forward(d, x, torch.zeros_like(x), tmp, grads=False)
    return logits


def save(model, d, fmt):
    """Saves as transformers/torch would: safetensors, sharded safetensors, or torch.save .bin."""
    d.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(d)
    elif fmt == "sharded":
        model.save_pretrained(d, max_shard_size="20KB")
        assert (d / "model.safetensors.index.json").exists()
    else:  # torch.save of the state dict, as the released MindLLM-1.3B pytorch_model.bin
        model.config.save_pretrained(d)
        torch.save(model.state_dict(), d / "pytorch_model.bin")


CASES = [(f, fmt, dt) for f in CONFIGS for fmt, dt in
         [("safetensors", torch.float32), ("sharded", torch.float32), ("bin", torch.float32), ("bin", torch.bfloat16)]]


@pytest.mark.parametrize("family,fmt,dtype", CASES, ids=[f"{f}-{m}-{str(d)[6:]}" for f, m, d in CASES])
def test_load_transformers_checkpoint(family, fmt, dtype, tmp_path):
    model, stored = make_model(family, dtype, seed=len(family))
    d = tmp_path / "hf"
    save(stored, d, fmt)
    x = ids()
    ref = hf_logits(model, x)
    got = mindllm_logits(d, x, tmp_path)
    err = float((got - ref).abs().max())
    assert err < 1e-4, f"{family} {fmt} {dtype}: max |logit diff| {err}"


def test_sharded_bin_and_convert(tmp_path):
    """A sharded pytorch_model.bin (index + shards) loads; `mindllm convert` writes a mindllm
    directory (one f32 model.safetensors) with the same logits."""
    model, stored = make_model("llama", torch.bfloat16, seed=7)
    d = tmp_path / "hf"
    d.mkdir()
    stored.config.save_pretrained(d)
    sd = stored.state_dict()
    names = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    wm = {}
    for f, ns in shards.items():
        torch.save({n: sd[n] for n in ns}, d / f)
        wm.update({n: f for n in ns})
    (d / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    x = ids()
    ref = hf_logits(model, x)
    assert float((mindllm_logits(d, x, tmp_path) - ref).abs().max()) < 1e-4
    out = tmp_path / "converted"
    run("convert", "--model", d, "--out", out)
    assert (out / "model.safetensors").exists() and not (out / "pytorch_model.bin").exists()
    assert float((mindllm_logits(out, x, tmp_path) - ref).abs().max()) < 1e-4
    back = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert float((hf_logits(back, x) - ref).abs().max()) < 1e-4
    p = run("convert", "--model", d, "--out", out, check=False)
    assert p.returncode == 2 and "already holds a model" in p.stderr


@pytest.mark.parametrize("family", list(CONFIGS))
@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_export_hf_loads_in_transformers(family, dtype, tmp_path):
    model, _ = make_model(family, torch.float32, seed=11)
    src = tmp_path / "src"
    save(model, src, "bin")
    out = tmp_path / "exported"
    run("export", "--model", src, "--format", "hf", "--dtype", dtype, "--out", out)
    back = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(back).__name__ == type(model).__name__
    x = ids()
    mine = mindllm_logits(src, x, tmp_path)
    theirs = hf_logits(back.float() if dtype == "bf16" else back, x)
    tol = 1e-4 if dtype == "f32" else 0.1 * float(mine.abs().max())
    assert float((theirs - mine).abs().max()) < tol
    if dtype == "bf16":
        assert next(transformers.AutoModelForCausalLM.from_pretrained(out).parameters()).dtype == torch.bfloat16
        # the exported bf16 weights give the same logits in both (bf16 weights, float32 math)
        assert float((mindllm_logits(out, x, tmp_path) - theirs).abs().max()) < 1e-4


def test_commands_take_hf_directories(tmp_path):
    """`train` continues from, and `generate` samples from, a transformers .bin (bf16) directory
    with a GPT-2-style vocab.json + merges.txt tokenizer, as given."""
    from mindllm_ref import write_shard
    tok_dir = shared_data("tokenizers", "gpt2")
    cfg = transformers.GPTNeoConfig(vocab_size=50257, hidden_size=32, num_layers=2, num_heads=4,
                                    max_position_embeddings=64, window_size=8, attention_types=[[["global", "local"], 1]],
                                    bos_token_id=50256, eos_token_id=50256)
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg), seed=2).to(torch.bfloat16)
    d = tmp_path / "neo"
    d.mkdir()
    cfg.save_pretrained(d)
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(tok_dir / f, d / f)
    p = run("generate", "--model", d, "--prompt", "Hello", "--max-new-tokens", 4, "--temperature", 0, "--no-stop-at-eos")
    assert p.stdout.startswith("Hello")
    data = tmp_path / "data"
    data.mkdir()
    g = torch.Generator().manual_seed(0)
    write_shard(data / "train-000.bin", torch.randint(0, 50257, (4000,), generator=g).numpy(), 50257)
    write_shard(data / "val-000.bin", torch.randint(0, 50257, (1000,), generator=g).numpy(), 50257)
    run("train", "--model", d, "--data", data, "--out", tmp_path / "run", "--steps", 2, "--batch", 2, "--seq", 16,
        "--eval-every", 0, "--threads", 2)
    ckpt = tmp_path / "run" / "ckpt" / (tmp_path / "run" / "ckpt" / "latest").read_text().strip()
    back = transformers.AutoModelForCausalLM.from_pretrained(ckpt).eval()
    x = torch.randint(0, 50257, (1, 8), generator=g)
    assert float((hf_logits(back, x) - mindllm_logits(ckpt, x, tmp_path)).abs().max()) < 1e-4
