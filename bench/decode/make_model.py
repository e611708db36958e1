"""Random-initialised model directories in real shapes (no downloads), for bench/decode:
config.json with Hugging Face field names, model.safetensors (fp32, N(0, 0.02²) matrices, unit norms,
zero biases), and a tokenizer no larger than the vocabulary (`mindllm export --format gguf` refuses a
larger one): GPT-2's BPE from ../shared/data for gpt2 and gpt_neo (the base of the released
MindLLM-1.3B tokenizer; ids above its 50,257 are padding), Qwen3's for qwen2, and for a vocabulary no
shared tokenizer fits (TinyLlama's 32,000) a byte-level BPE of exactly that size trained by
`mindllm tokenizer train` on ~4 MB of ../shared/data/corpus (a few seconds; cached in the output
directory). run.py gives token ids, so only the shapes matter.

    python3 bench/decode/make_model.py --shape gpt2-124m --out /tmp/gpt2-124m
"""
import argparse
import json
import os
import shutil
import subprocess

import numpy as np
from safetensors.numpy import save_file

SHAPES = {
    "gpt2-124m": dict(model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024,
                      activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                      bos_token_id=50256, eos_token_id=50256),
    "qwen2-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                       max_position_embeddings=32768, hidden_act="silu", rms_norm_eps=1e-6, rope_theta=1000000.0,
                       tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643),
    # TinyLlama-1.1B's shape (llama, no biases); a 4.4 GB fp32 file: generating and quantising it
    # takes minutes, so run.py measures it only when asked (--shapes tinyllama-1.1b).
    "tinyllama-1.1b": dict(model_type="llama", vocab_size=32000, hidden_size=2048, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, intermediate_size=5632,
                           max_position_embeddings=2048, hidden_act="silu", rms_norm_eps=1e-5, rope_theta=10000.0,
                           tie_word_embeddings=False, bos_token_id=1, eos_token_id=2),
}
# MindLLM-1.3B (gpt_neo, configs/mindllm-1.3b.json): layers alternate global and local (window 256)
# attention. llama.cpp has no GPT-Neo architecture and no local attention for gpt2, so the
# "-global" twin (the same weights, every layer global) is what both engines run: mindllm exports an
# all-global GPT-Neo as llama.cpp's gpt2. 5.4 GB of fp32: measured only when asked.
_REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
with open(os.path.join(_REPO, "configs", "mindllm-1.3b.json")) as _f:
    SHAPES["mindllm-1.3b"] = json.load(_f)
SHAPES["mindllm-1.3b-global"] = dict(SHAPES["mindllm-1.3b"],
                                     attention_types=[[["global"], SHAPES["mindllm-1.3b"]["num_layers"]]])

# Shared tokenizers (../shared/data/tokenizers/NAME) by model type; other vocabularies get a trained one.
SHARED_TOKENIZER = {"gpt2": ("gpt2", 50257), "gpt_neo": ("gpt2", 50257), "qwen2": ("qwen3", 151669)}


def tensors(cfg, rng):
    def mat(*shape):
        m = rng.standard_normal(shape, dtype=np.float32)
        m *= 0.02
        return m

    t = {}
    if cfg["model_type"] == "gpt_neo":
        C, L, V, P, H = cfg["hidden_size"], cfg["num_layers"], cfg["vocab_size"], cfg["max_position_embeddings"], \
            cfg["intermediate_size"]
        t["transformer.wte.weight"], t["transformer.wpe.weight"] = mat(V, C), mat(P, C)
        for l in range(L):
            p = f"transformer.h.{l}."
            for n in ("ln_1", "ln_2"):
                t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
            for n in ("q_proj", "k_proj", "v_proj"):  # nn.Linear [out, in], no bias
                t[p + f"attn.attention.{n}.weight"] = mat(C, C)
            t[p + "attn.attention.out_proj.weight"] = mat(C, C)
            t[p + "attn.attention.out_proj.bias"] = np.zeros(C, np.float32)
            t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = mat(H, C), np.zeros(H, np.float32)
            t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = mat(C, H), np.zeros(C, np.float32)
        t["transformer.ln_f.weight"], t["transformer.ln_f.bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
    elif cfg["model_type"] == "gpt2":
        C, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
        t["transformer.wte.weight"], t["transformer.wpe.weight"] = mat(V, C), mat(P, C)
        for l in range(L):
            p = f"transformer.h.{l}."
            for n in ("ln_1", "ln_2"):
                t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
            # Conv1D: [in, out]
            for n, i, o in (("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C), ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)):
                t[p + n + ".weight"], t[p + n + ".bias"] = mat(i, o), np.zeros(o, np.float32)
        t["transformer.ln_f.weight"], t["transformer.ln_f.bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
    else:
        C, L, V, H = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
        D = C // cfg["num_attention_heads"]
        KV = D * cfg["num_key_value_heads"]
        t["model.embed_tokens.weight"] = mat(V, C)
        for l in range(L):
            p = f"model.layers.{l}."
            t[p + "input_layernorm.weight"] = np.ones(C, np.float32)
            t[p + "post_attention_layernorm.weight"] = np.ones(C, np.float32)
            for n, o in (("q_proj", C), ("k_proj", KV), ("v_proj", KV)):
                t[p + f"self_attn.{n}.weight"] = mat(o, C)
                if cfg["model_type"] == "qwen2":
                    t[p + f"self_attn.{n}.bias"] = np.zeros(o, np.float32)
            t[p + "self_attn.o_proj.weight"] = mat(C, C)
            t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = mat(H, C), mat(H, C)
            t[p + "mlp.down_proj.weight"] = mat(C, H)
        t["model.norm.weight"] = np.ones(C, np.float32)
        if not cfg["tie_word_embeddings"]:
            t["lm_head.weight"] = mat(V, C)
    return t


def trained_tokenizer(vocab_size, out, data, mindllm):
    """A byte-level BPE of exactly vocab_size tokens (<unk>, <s>, </s> first, as TinyLlama's), trained
    on English (~2.9 MB) and one Chinese novel (2.5 MB) of the shared corpus; kept in out."""
    path = os.path.join(out, "tokenizer.json")
    if os.path.exists(path):
        return
    corpus = os.path.join(data, "corpus")
    subprocess.run([mindllm, "tokenizer", "train", "--input", os.path.join(corpus, "en"),
                    os.path.join(corpus, "zh", "红楼梦.txt"), "--vocab-size", str(vocab_size),
                    "--special", "<unk>", "<s>", "</s>", "--min-frequency", "1", "--quiet", "--output", path],
                   check=True)


def tokenizer(cfg, out, data, mindllm):
    name, size = SHARED_TOKENIZER.get(cfg["model_type"], (None, 0))
    if name is None or size > cfg["vocab_size"]:
        return trained_tokenizer(cfg["vocab_size"], out, data, mindllm)
    tok = os.path.join(data, "tokenizers", name)
    for f in ("vocab.json", "merges.txt", "tokenizer.json"):
        if os.path.exists(os.path.join(tok, f)):
            shutil.copy(os.path.join(tok, f), out)


def make(shape, out, data="../shared/data", seed=0, mindllm="build/mindllm"):
    cfg = dict(SHAPES[shape])
    os.makedirs(out, exist_ok=True)
    save_file(tensors(cfg, np.random.default_rng(seed)), os.path.join(out, "model.safetensors"), {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tokenizer(cfg, out, data, mindllm)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="../shared/data", help="shared data directory (tokenizers)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mindllm", default="build/mindllm",
                    help="trains the tokenizer of a vocabulary no shared one fits")
    a = ap.parse_args()
    make(a.shape, a.out, a.data, a.seed, a.mindllm)
