"""Quantised weights (issue 20) against independent implementations: the q8_0 / q4_0 blocks of
`mindllm export --format gguf` equal those of the `gguf` package's quantiser (a Python port of
ggml's reference), GGUF files (f32, f16, bf16, q8_0, q4_0) run in `mindllm generate --model x.gguf`
with the tokens of the same weights from a model directory, and llama.cpp (llama-cpp-python,
when installed) runs our q8_0 / q4_0 files with logits close to ours. Corrupt GGUF files get one
line and exit 2. Tiny random gpt2 and llama models with GPT-2's tokenizer (../shared/data)."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared_data import SHARED, needs_shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
GPT2_TOK = SHARED / "tokenizers" / "gpt2"
gguf = pytest.importorskip("gguf", reason="skipped: gguf not installed")
pytestmark = needs_shared_data("tokenizers", "gpt2", "vocab.json")
V = 50257


def run(*args, check=True):
    p = subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"mindllm {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
    return p


def make_dir(family, d, seed=0, scale=0.15):
    """A random model directory: every row length a multiple of 32 (every matrix quantised)."""
    rng = np.random.default_rng(seed)
    def mat(*s):
        return (rng.standard_normal(s) * scale).astype(np.float32)
    def vec(n, base=0.0):
        return (base + 0.1 * rng.standard_normal(n)).astype(np.float32)
    t = {}
    if family == "gpt2":
        cfg = dict(model_type="gpt2", vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=128,
                   activation_function="gelu_new", eos_token_id=50256, bos_token_id=50256)
        t["transformer.wte.weight"], t["transformer.wpe.weight"] = mat(V, 64), mat(128, 64)
        for l in range(2):
            p = f"transformer.h.{l}."
            for n in ("ln_1", "ln_2"):
                t[p + n + ".weight"], t[p + n + ".bias"] = vec(64, 1.0), vec(64)
            for n, i, o in (("attn.c_attn", 64, 192), ("attn.c_proj", 64, 64), ("mlp.c_fc", 64, 256), ("mlp.c_proj", 256, 64)):
                t[p + n + ".weight"], t[p + n + ".bias"] = mat(i, o), vec(o)
        t["transformer.ln_f.weight"], t["transformer.ln_f.bias"] = vec(64, 1.0), vec(64)
    else:
        cfg = dict(model_type="llama", vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, intermediate_size=96, max_position_embeddings=128, hidden_act="silu",
                   rms_norm_eps=1e-5, tie_word_embeddings=False, eos_token_id=50256, bos_token_id=50256)
        t["model.embed_tokens.weight"], t["lm_head.weight"] = mat(V, 64), mat(V, 64)
        for l in range(2):
            p = f"model.layers.{l}."
            t[p + "input_layernorm.weight"], t[p + "post_attention_layernorm.weight"] = vec(64, 1.0), vec(64, 1.0)
            for n, o in (("q_proj", 64), ("k_proj", 32), ("v_proj", 32), ("o_proj", 64)):
                t[p + f"self_attn.{n}.weight"] = mat(o, 64)
            t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = mat(96, 64), mat(96, 64)
            t[p + "mlp.down_proj.weight"] = mat(64, 96)
        t["model.norm.weight"] = vec(64, 1.0)
    d.mkdir(parents=True, exist_ok=True)
    save_file(t, str(d / "model.safetensors"), {"format": "pt"})
    (d / "config.json").write_text(json.dumps(cfg))
    for f in ("vocab.json", "merges.txt"):
        (d / f).write_bytes((GPT2_TOK / f).read_bytes())
    return t


PROMPT = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]


def greedy(model, n=12, extra=()):
    p = run("generate", "--model", model, "--prompt-ids", " ".join(map(str, PROMPT)), "--max-new-tokens", n,
            "--temperature", 0, "--no-stop-at-eos", *extra)
    return [int(x) for x in p.stdout.split()]


def weights_type(model):
    p = run("generate", "--model", model, "--prompt-ids", "464", "--max-new-tokens", 1, "--json")
    return json.loads(p.stdout)["weights"]


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_blocks_equal_gguf_packages_quantiser(qtype, tmp_path):
    t = make_dir("llama", tmp_path / "m")
    out = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", qtype, "--out", out)
    r = gguf.GGUFReader(str(out))
    qt = getattr(gguf.GGMLQuantizationType, qtype.upper())
    assert r.fields["general.file_type"].contents() == {"q8_0": 7, "q4_0": 2}[qtype]
    by_name = {x.name: x for x in r.tensors}
    checked = 0
    for l in range(2):
        for ours, theirs in (("mlp.down_proj", "ffn_down"), ("mlp.up_proj", "ffn_up"), ("mlp.gate_proj", "ffn_gate"),
                             ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output")):
            w = t[f"model.layers.{l}.{ours}.weight"]
            g = by_name[f"blk.{l}.{theirs}.weight"]
            assert g.tensor_type == qt
            want = gguf.quants.quantize(w, qt)
            assert np.asarray(g.data).tobytes() == want.tobytes(), f"{theirs}: blocks differ from gguf's quantiser"
            deq = gguf.quants.dequantize(np.asarray(g.data), qt).reshape(w.shape)
            step = np.abs(w).max(axis=1, keepdims=True) / (127 if qtype == "q8_0" else 8)
            assert (np.abs(deq - w) <= step * 1.01).all()
            checked += 1
    assert checked == 10
    # the output projection stays q8_0 in q4_0 files; norms f32
    assert by_name["output.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert by_name["output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_generate_from_gguf_equals_model_directory(family, tmp_path):
    make_dir(family, tmp_path / "m")
    ref = greedy(tmp_path / "m", extra=("--weights", "f32"))
    assert len(set(ref)) >= 3, f"degenerate continuation {ref}"
    types = ("f32", "f16", "bf16", "q8_0", "q4_0") if family == "llama" else ("f32", "q4_0")
    for gtype in types:
        g = tmp_path / f"m-{gtype}.gguf"
        run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", gtype, "--out", g)
        mine = greedy(g)
        # the file runs in its own type (f16 too: GGUF F16 tensors are multiplied as they are)
        assert weights_type(g) == gtype, gtype
        if gtype == "f32":
            assert mine == ref, gtype  # same fp32 weights, un-permuted / transposed back exactly
        else:
            # the directory written by `mindllm quantize` holds the same blocks (embeddings too)
            q = tmp_path / f"q-{gtype}"
            run("quantize", "--model", tmp_path / "m", "--type", gtype, "--out", q)
            assert mine == greedy(q), gtype


def test_corrupt_gguf_is_one_line_exit_2(tmp_path):
    make_dir("llama", tmp_path / "m")
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_0", "--out", g)
    data = g.read_bytes()
    bad = {"truncated.gguf": data[: len(data) // 2], "header.gguf": data[:40], "magic.gguf": b"GGUX" + data[4:],
           "empty.gguf": b""}
    for name, b in bad.items():
        (tmp_path / name).write_bytes(b)
        p = run("generate", "--model", tmp_path / name, "--prompt-ids", "1 2", check=False)
        assert p.returncode == 2, (name, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and name in p.stderr, (name, p.stderr)


try:
    import llama_cpp
except ImportError:
    llama_cpp = None


@pytest.mark.skipif(llama_cpp is None, reason="skipped: llama-cpp-python not installed")
@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_llama_cpp_runs_our_quantised_gguf(qtype, tmp_path):
    make_dir("llama", tmp_path / "m", scale=0.3)
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", qtype, "--out", g)
    llm = llama_cpp.Llama(model_path=str(g), n_ctx=128, n_batch=128, logits_all=True, verbose=False, n_threads=2,
                          type_k=0, type_v=0, flash_attn=False)
    llm.eval(PROMPT)
    theirs = []
    for _ in range(8):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        theirs.append(t)
        llm.eval([t])
    mine = greedy(g, n=8, extra=("--kv-cache", "f32"))  # llama.cpp's cache is f32 here (type_k=0)
    # Both quantise activations to q8_0 per block and sum int8 products: the same tokens
    assert mine == theirs, f"llama.cpp {theirs}\nmindllm   {mine}"
