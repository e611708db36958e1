"""GGUF export: tiny random gpt2 / llama / qwen2 / all-global GPT-Neo models with a small byte-level
BPE tokenizer, exported by `mindllm export --format gguf`, read by the `gguf` package and run by
llama.cpp (llama-cpp-python): same logits and the same greedy continuation for 32 steps, and the
same token ids from the exported tokenizer."""
import json

import numpy as np
import pytest
import torch
import transformers

from mindllm_ref import mindllm_forward, randomize_, run
from shared_data import shared_data

gguf = pytest.importorskip("gguf", reason="skipped: gguf not installed")
try:
    import llama_cpp
except ImportError:  # setup.sh builds it; a machine where that failed skips these tests, saying so
    llama_cpp = None
needs_llama_cpp = pytest.mark.skipif(llama_cpp is None, reason="skipped: llama-cpp-python not installed")


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    """A 384-token byte-level BPE (GPT-2 pre-tokenizer) trained by HF tokenizers on English text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = shared_data("corpus", "en", "wiki_demo.txt").read_text(encoding="utf-8")[:200000]
    tok.train_from_iterator([text], trainer)
    p = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(p))
    return p, tok.get_vocab_size()


def make_dir(family, vocab, tmp_path, tokenizer_json):
    # 3 ids past the tokenizer: written as unused padding tokens; <|endoftext|> (id 0) ends text
    kw = dict(vocab_size=vocab + 3, bos_token_id=0, eos_token_id=0)
    cfg = {
        "gpt2": lambda: transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, **kw),
        "gpt_neo": lambda: transformers.GPTNeoConfig(hidden_size=64, num_layers=2, num_heads=4, max_position_embeddings=128,
                                                     attention_types=[[["global"], 2]], tie_word_embeddings=True, **kw),
        "llama": lambda: transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                                  num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=128, rms_norm_eps=1e-5, **kw),
        "qwen2": lambda: transformers.Qwen2Config(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                                  num_attention_heads=4, num_key_value_heads=2,
                                                  max_position_embeddings=128, rms_norm_eps=1e-6,
                                                  tie_word_embeddings=True, **kw),
    }[family]()
    # larger weights for the GPT families, so that greedy decoding does not repeat one token
    gpt = family in ("gpt2", "gpt_neo")
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg), seed=7 if gpt else 5, scale=0.8 if gpt else 0.2)
    d = tmp_path / family
    model.save_pretrained(d)
    (d / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}))
    return d


def mindllm_greedy(d, prompt, n):
    p = run("generate", "--model", d, "--prompt-ids", " ".join(map(str, prompt)), "--max-new-tokens", n,
            "--temperature", 0, "--no-stop-at-eos")
    return [int(x) for x in p.stdout.split()]


def llama_cpp_run(path, prompt, n):
    # float32 KV cache (type 0; llama.cpp's default is f16), so that only the weights' precision counts
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_batch=128, logits_all=True, verbose=False, n_threads=2,
                          type_k=0, type_v=0, flash_attn=False)
    llm.eval(prompt)
    prompt_logits = np.array(llm.scores[: len(prompt)], dtype=np.float64)
    out = []
    for _ in range(n):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(t)
        llm.eval([t])
    return llm, prompt_logits, out


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gpt_neo"])
def test_gguf_metadata_read_by_gguf_package(family, tmp_path, tokenizer_json):
    tj, vocab = tokenizer_json
    d = make_dir(family, vocab, tmp_path, tj)
    out = tmp_path / "m.gguf"
    run("export", "--model", d, "--format", "gguf", "--dtype", "f16", "--out", out)
    r = gguf.GGUFReader(str(out))
    f = r.fields
    arch = {"gpt_neo": "gpt2"}.get(family, family)
    assert f["general.architecture"].contents() == arch
    assert f[f"{arch}.block_count"].contents() == 2
    assert f[f"{arch}.embedding_length"].contents() == 64
    assert f["tokenizer.ggml.model"].contents() == "gpt2"
    assert f["tokenizer.ggml.pre"].contents() == "gpt-2"
    toks = f["tokenizer.ggml.tokens"].contents()
    assert len(toks) == vocab + 3 and toks[-1] == f"[PAD{vocab + 2}]"
    assert "{% for m in messages %}" in f["tokenizer.chat_template"].contents()
    names = {t.name for t in r.tensors}
    assert "token_embd.weight" in names and "blk.1.ffn_down.weight" in names


@needs_llama_cpp
@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gpt_neo"])
def test_llama_cpp_same_logits_and_greedy_tokens(family, tmp_path, tokenizer_json):
    tj, vocab = tokenizer_json
    d = make_dir(family, vocab, tmp_path, tj)
    out = tmp_path / "m.gguf"
    run("export", "--model", d, "--format", "gguf", "--dtype", "f32", "--out", out)
    prompt = torch.randint(0, vocab, (12,), generator=torch.Generator().manual_seed(1)).tolist()
    llm, their_logits, theirs = llama_cpp_run(out, prompt, 32)
    mine_logits, _, _ = mindllm_forward(d, [prompt], [prompt], tmp_path, grads=False)
    mine_logits = mine_logits[0].numpy()
    err = float(np.abs(their_logits[:, : vocab + 3] - mine_logits).max())
    # ggml's CPU GELU reads an f16 table (GGML_GELU_FP16): ~3e-3 of the logit range for the GPT
    # families; SwiGLU models agree to float32 rounding
    tol = 1e-2 if family in ("gpt2", "gpt_neo") else 1e-3
    assert err < tol * max(1.0, float(np.abs(mine_logits).max())), f"logits differ by {err}"
    mine = mindllm_greedy(d, prompt, 32)
    assert theirs == mine, f"llama.cpp {theirs}\nmindllm   {mine}"
    assert len(set(mine)) >= 3, f"degenerate continuation {mine}"
    # the exported tokenizer gives llama.cpp the ids that HF tokenizers gives
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(str(tj))
    for text in ["Hello world, this is a test.", "The 3 quick brown foxes jumped over 12 lazy dogs!\n\n  ok"]:
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == hf.encode(text).ids


@needs_llama_cpp
def test_llama_cpp_runs_q8_0_export(tmp_path, tokenizer_json):
    tj, vocab = tokenizer_json
    d = make_dir("llama", vocab, tmp_path, tj)
    out = tmp_path / "m.gguf"
    run("export", "--model", d, "--format", "gguf", "--dtype", "q8_0", "--out", out)
    prompt = list(range(1, 13))
    _, their_logits, _ = llama_cpp_run(out, prompt, 1)
    mine, _, _ = mindllm_forward(d, [prompt], [prompt], tmp_path, grads=False)
    mine = mine[0].numpy()
    # q8_0 keeps about 2-3 significant digits: logits agree to a few percent of their range
    assert float(np.abs(their_logits[:, : vocab + 3] - mine).max()) < 0.05 * float(np.abs(mine).max())


def test_gguf_export_refuses_what_llama_cpp_cannot_run(tmp_path, tokenizer_json):
    tj, vocab = tokenizer_json
    d = make_dir("llama", vocab, tmp_path, tj)
    cfg = json.loads((d / "config.json").read_text())
    for patch, expect in [({"hidden_act": "gelu"}, "SwiGLU"), ({"mindllm_deepnorm": True}, "DeepNorm"),
                          ({"vocab_size": vocab - 1}, None)]:
        (d / "config.json").write_text(json.dumps({**cfg, **patch}))
        p = run("export", "--model", d, "--format", "gguf", "--out", tmp_path / "x.gguf", check=False)
        assert p.returncode == 2 and "\n" not in p.stderr.strip(), p.stderr
        if expect:
            assert expect in p.stderr
    neo = make_dir("gpt_neo", vocab, tmp_path, tj)
    cfg = json.loads((neo / "config.json").read_text())
    (neo / "config.json").write_text(json.dumps({**cfg, "attention_types": [[["global", "local"], 1]]}))
    p = run("export", "--model", neo, "--format", "gguf", "--out", tmp_path / "x.gguf", check=False)
    assert p.returncode == 2 and "local-attention" in p.stderr
