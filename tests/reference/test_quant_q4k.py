"""q4_k weights (issue 20) against ggml itself: the blocks of `mindllm quantize --type q4_k` and of
`mindllm export --format gguf --type q4_k` equal, byte for byte, those of ggml's own quantiser
(ggml_quantize_chunk in llama-cpp-python's libggml-base, called through ctypes) on random and
awkward rows (zeros, constants, outliers, one sign only, sub-blocks of very different scale);
mindllm's dequantised values equal the `gguf` package's Q4_K dequantiser exactly; llama.cpp runs
our q4_k GGUF with mindllm's greedy tokens; a truncated q4_k tensor is one line and exit 2.
A random llama model with 256-wide rows and GPT-2's tokenizer (../shared/data)."""
import ctypes
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from shared_data import SHARED, needs_shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
GPT2_TOK = SHARED / "tokenizers" / "gpt2"
gguf = pytest.importorskip("gguf", reason="skipped: gguf not installed")
pytestmark = needs_shared_data("tokenizers", "gpt2", "vocab.json")
V, C, H = 50257, 256, 512
Q4_K = gguf.GGMLQuantizationType.Q4_K

try:
    import llama_cpp
except ImportError:
    llama_cpp = None


def ggml_lib():
    """llama-cpp-python's libggml-base with ggml_quantize_chunk, or None."""
    if llama_cpp is None:
        return None
    path = Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"
    if not path.exists():
        return None
    lib = ctypes.CDLL(str(path))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    lib.ggml_quantize_init(int(Q4_K))
    return lib


def ggml_q4k(lib, rows):
    """ggml's Q4_K blocks of fp32 rows [n, k] (k a multiple of 256), no importance matrix."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n, k = rows.shape
    out = np.zeros(n * k // 256 * 144, np.uint8)
    size = lib.ggml_quantize_chunk(int(Q4_K), rows.ctypes.data, out.ctypes.data, 0, n, k, None)
    assert size == out.size
    return out.reshape(n, -1)


def run(*args, check=True):
    p = subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"mindllm {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
    return p


def awkward_rows(rng, n, k):
    """n rows of k values: random ones and the shapes that stress the scale / min search."""
    x = (rng.standard_normal((n, k)) * 0.1).astype(np.float32)
    x[0] = 0                                             # all zero: d = dmin = 0
    x[1] = 0.3                                           # constant positive
    x[2] = -0.7                                          # constant negative
    x[3, 17] = 25.0                                      # one outlier
    x[4] = -np.abs(x[4])                                 # negative only
    x[5] = np.abs(x[5]) + 0.5                            # positive only, min > 0
    x[6, :32] *= 1000                                    # one sub-block far larger than the rest
    x[7] = np.round(x[7] * 40) / 4                       # quarter steps: exact ties
    x[8, ::2] = 0                                        # half zeros
    x[9] = np.linspace(-1, 1, k, dtype=np.float32)       # a ramp
    x[10, 32:64] = 0                                     # a zero sub-block among others
    x[11] = 1e-6 * rng.standard_normal(k)                # tiny: fp16 scales underflow
    return x


def make_dir(d, seed=0, scale=0.15, up_rows=None):
    rng = np.random.default_rng(seed)
    def mat(*s):
        return (rng.standard_normal(s) * scale).astype(np.float32)
    cfg = dict(model_type="llama", vocab_size=V, hidden_size=C, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, intermediate_size=H, max_position_embeddings=128, hidden_act="silu",
               rms_norm_eps=1e-5, tie_word_embeddings=False, eos_token_id=50256, bos_token_id=50256)
    t = {"model.embed_tokens.weight": mat(V, C), "lm_head.weight": mat(V, C), "model.norm.weight": np.ones(C, np.float32)}
    for l in range(2):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = t[p + "post_attention_layernorm.weight"] = np.ones(C, np.float32)
        for n, o in (("q_proj", C), ("k_proj", C // 2), ("v_proj", C // 2), ("o_proj", C)):
            t[p + f"self_attn.{n}.weight"] = mat(o, C)
        t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = mat(H, C), mat(H, C)
        t[p + "mlp.down_proj.weight"] = mat(C, H)
    if up_rows is not None:
        t["model.layers.0.mlp.up_proj.weight"][: len(up_rows)] = up_rows
    d.mkdir(parents=True, exist_ok=True)
    save_file(t, str(d / "model.safetensors"), {"format": "pt"})
    (d / "config.json").write_text(json.dumps(cfg))
    for f in ("vocab.json", "merges.txt"):
        (d / f).write_bytes((GPT2_TOK / f).read_bytes())
    return t


@pytest.mark.skipif(ggml_lib() is None, reason="skipped: llama-cpp-python's libggml-base not found")
def test_blocks_equal_ggmls_quantiser(tmp_path):
    lib = ggml_lib()
    rng = np.random.default_rng(5)
    odd = awkward_rows(rng, 12, C)
    t = make_dir(tmp_path / "m", up_rows=odd)
    # the quantised directory: U8 block rows per matrix
    run("quantize", "--model", tmp_path / "m", "--type", "q4_k", "--out", tmp_path / "q")
    q = load_file(str(tmp_path / "q" / "model.safetensors"))
    checked = 0
    for name, w in t.items():
        if w.ndim != 2 or name in ("model.embed_tokens.weight", "lm_head.weight"):
            continue
        want = ggml_q4k(lib, w)
        assert q[name].shape == want.shape, name
        bad = np.nonzero((q[name] != want).any(axis=1))[0]
        assert bad.size == 0, f"{name}: rows {bad[:10]} differ from ggml's Q4_K blocks"
        checked += 1
    assert checked == 14
    assert q["lm_head.weight"].shape[1] == C // 32 * 34  # the output projection stays q8_0
    # the GGUF export: Q4_K tensors with ggml's blocks
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_k", "--out", g)
    r = gguf.GGUFReader(str(g))
    by_name = {x.name: x for x in r.tensors}
    assert by_name["output.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    for l in range(2):
        for ours, theirs in (("mlp.down_proj", "ffn_down"), ("mlp.up_proj", "ffn_up"), ("self_attn.v_proj", "attn_v")):
            x = by_name[f"blk.{l}.{theirs}.weight"]
            assert x.tensor_type == Q4_K
            assert np.asarray(x.data).tobytes() == ggml_q4k(lib, t[f"model.layers.{l}.{ours}.weight"]).tobytes()
    # many random rows of different scales as well
    many = np.concatenate([awkward_rows(np.random.default_rng(s), 64, 1024) * (10.0 ** (s - 3)) for s in range(6)])
    t2 = make_dir(tmp_path / "m2", seed=1)
    t2["model.layers.1.mlp.down_proj.weight"] = many[:, :H].copy()[:C]  # [256, 512] rows of the mix
    save_file(t2, str(tmp_path / "m2" / "model.safetensors"), {"format": "pt"})
    run("quantize", "--model", tmp_path / "m2", "--type", "q4_k", "--out", tmp_path / "q2")
    q2 = load_file(str(tmp_path / "q2" / "model.safetensors"))
    want = ggml_q4k(lib, t2["model.layers.1.mlp.down_proj.weight"])
    assert (q2["model.layers.1.mlp.down_proj.weight"] == want).all()


def test_dequantised_values_equal_gguf_package(tmp_path):
    """mindllm's dequantiser (any command reading a q4_k directory) = gguf.quants' Q4_K, exactly."""
    rng = np.random.default_rng(9)
    make_dir(tmp_path / "m", up_rows=awkward_rows(rng, 12, C))
    run("quantize", "--model", tmp_path / "m", "--type", "q4_k", "--out", tmp_path / "q")
    q = load_file(str(tmp_path / "q" / "model.safetensors"))
    run("export", "--model", tmp_path / "q", "--format", "hf", "--dtype", "f32", "--out", tmp_path / "f")
    f = load_file(str(tmp_path / "f" / "model.safetensors"))
    for name in ("model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.down_proj.weight",
                 "model.layers.0.self_attn.k_proj.weight"):
        want = gguf.quants.dequantize(q[name], Q4_K)
        assert want.shape == f[name].shape
        assert np.array_equal(f[name], want), name


def test_truncated_q4k_is_one_line_exit_2(tmp_path):
    make_dir(tmp_path / "m")
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_k", "--out", g)
    data = g.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) - 1000])
    p = run("generate", "--model", tmp_path / "cut.gguf", "--prompt-ids", "1 2", check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "cut.gguf" in p.stderr, p.stderr
    # a q4_k tensor in a quantised directory whose bytes do not match its shape
    run("quantize", "--model", tmp_path / "m", "--type", "q4_k", "--out", tmp_path / "q")
    st = load_file(str(tmp_path / "q" / "model.safetensors"))
    from safetensors import safe_open
    with safe_open(str(tmp_path / "q" / "model.safetensors"), "np") as fh:
        meta = fh.metadata()
    name = "model.layers.0.mlp.up_proj.weight"
    st[name] = st[name][:, :-144].copy()
    save_file(st, str(tmp_path / "q" / "model.safetensors"), meta)
    p = run("generate", "--model", tmp_path / "q", "--prompt-ids", "1 2", check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and name in p.stderr, p.stderr


PROMPT = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]


def greedy(model, n=8, extra=(), prompt=PROMPT):
    p = run("generate", "--model", model, "--prompt-ids", " ".join(map(str, prompt)), "--max-new-tokens", n,
            "--temperature", 0, "--no-stop-at-eos", *extra)
    return [int(x) for x in p.stdout.split()]


def agrees_with_llama_cpp(g, steps=8, clear=0.25, min_checked=None):
    """llama.cpp's greedy tokens on GGUF g and, after each of its prefixes, mindllm's next token on the
    same file: equal wherever llama.cpp's top-2 logit margin exceeds `clear`. llama.cpp quantises the
    activations per 256 (q8_K), mindllm per 32 (q8_0): the same weights, slightly different
    activation rounding, which may flip a near tie (and then, free-running, all that follows)."""
    llm = llama_cpp.Llama(model_path=str(g), n_ctx=128, n_batch=128, logits_all=True, verbose=False, n_threads=2,
                          type_k=0, type_v=0, flash_attn=False)
    llm.eval(PROMPT)
    ref, margins = [], []
    for _ in range(steps):
        s = np.sort(llm.scores[llm.n_tokens - 1])
        ref.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        margins.append(float(s[-1] - s[-2]))
        llm.eval([ref[-1]])
    checked = 0
    for i in range(steps):
        if margins[i] > clear:
            mine = greedy(g, n=1, extra=("--kv-cache", "f32"), prompt=PROMPT + ref[:i])
            assert mine == [ref[i]], f"step {i}: llama.cpp {ref[i]} (margin {margins[i]:.3f}), mindllm {mine}"
            checked += 1
    assert checked >= (steps // 2 if min_checked is None else min_checked), f"too few clear steps: margins {margins}"


def test_gguf_runs_as_the_quantised_directory(tmp_path):
    """The q4_k GGUF and the q4_k directory hold the same blocks: the same greedy tokens."""
    make_dir(tmp_path / "m", scale=0.3)
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_k", "--out", g)
    run("quantize", "--model", tmp_path / "m", "--type", "q4_k", "--out", tmp_path / "q")
    mine = greedy(g)
    assert len(set(mine)) >= 3
    assert mine == greedy(tmp_path / "q")  # (the fp32 directory with --weights q4_k: fp32 embeddings)


@pytest.mark.skipif(llama_cpp is None, reason="skipped: llama-cpp-python not installed")
def test_llama_cpp_runs_our_q4k_gguf(tmp_path):
    make_dir(tmp_path / "m", scale=0.1)
    g = tmp_path / "m.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_k", "--out", g)
    agrees_with_llama_cpp(g)


def llama_cpp_quantize(src, dst, pure, ftype=None):
    """llama.cpp's own quantiser (llama_model_quantize, as llama-quantize) to `ftype` (default Q4_K_M;
    pure: every matrix in the ftype's main type)."""
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M if ftype is None else ftype
    p.pure = pure
    p.nthread = 2
    assert llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p)) == 0


@pytest.mark.skipif(llama_cpp is None, reason="skipped: llama-cpp-python not installed")
def test_llama_cpp_q4k_gguf_runs_in_mindllm(tmp_path):
    """A Q4_K GGUF made by llama.cpp's quantiser (--pure: every matrix Q4_K) holds our blocks and
    runs in mindllm with llama.cpp's greedy tokens; so does its Q4_K_M mix (q6_K tensors, run as
    q8_0)."""
    make_dir(tmp_path / "m", scale=0.1)
    f32 = tmp_path / "m-f32.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "f32", "--out", f32)
    theirs_file = tmp_path / "theirs-q4k.gguf"
    llama_cpp_quantize(f32, theirs_file, pure=True)
    ours_file = tmp_path / "ours-q4k.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "q4_k", "--out", ours_file)
    theirs = {x.name: x for x in gguf.GGUFReader(str(theirs_file)).tensors}
    for x in gguf.GGUFReader(str(ours_file)).tensors:
        if x.tensor_type == Q4_K:
            assert theirs[x.name].tensor_type == Q4_K
            assert np.asarray(theirs[x.name].data).tobytes() == np.asarray(x.data).tobytes(), x.name
    agrees_with_llama_cpp(theirs_file)
    mixed = tmp_path / "theirs-q4km.gguf"
    llama_cpp_quantize(f32, mixed, pure=False)
    kinds = {x.tensor_type for x in gguf.GGUFReader(str(mixed)).tensors}
    assert gguf.GGMLQuantizationType.Q6_K in kinds, kinds  # the mix this test is about
    agrees_with_llama_cpp(mixed, steps=16, min_checked=6)  # this random model's margins are small


# llama.cpp file types whose tensors include the types mindllm reads but does not run (q5_0, q5_K,
# q6_K: dequantised at import, run as q8_0).
KMIX = {"Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "Q5_0": 8}


@pytest.mark.skipif(llama_cpp is None, reason="skipped: llama-cpp-python not installed")
@pytest.mark.parametrize("ftype", list(KMIX))
def test_llama_cpp_kquant_mix_dequantises_as_gguf_does(ftype, tmp_path):
    """A llama.cpp Q4_K_M / Q5_K_M / Q6_K / Q5_0 file: `mindllm export --model f.gguf --format hf`
    writes every tensor as the `gguf` package's dequantiser reads it (Q and K: un-permuted, compared
    through the same permutation), and `generate --json` runs it with q8_0 for the read-only types."""
    make_dir(tmp_path / "m", scale=0.1)
    f32 = tmp_path / "m-f32.gguf"
    run("export", "--model", tmp_path / "m", "--format", "gguf", "--type", "f32", "--out", f32)
    g = tmp_path / f"theirs-{ftype}.gguf"
    llama_cpp_quantize(f32, g, pure=False, ftype=KMIX[ftype])
    run("export", "--model", g, "--format", "hf", "--out", tmp_path / "hf")
    mine = load_file(str(tmp_path / "hf" / "model.safetensors"))
    names = {"token_embd": "model.embed_tokens", "output": "lm_head", "output_norm": "model.norm"}
    for l in range(2):
        for theirs, ours in (("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                             ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
                             ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj"),
                             ("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm")):
            names[f"blk.{l}.{theirs}"] = f"model.layers.{l}.{ours}"
    seen = set()
    for x in gguf.GGUFReader(str(g)).tensors:
        base = x.name.rsplit(".", 1)[0]
        want = gguf.quants.dequantize(np.asarray(x.data), x.tensor_type).reshape([int(d) for d in reversed(x.shape)])
        got = mine[names[base] + ".weight"]
        if base.endswith(("attn_q", "attn_k")):  # llama.cpp's interleaved RoPE rows, as export permutes
            heads = 4 if base.endswith("attn_q") else 2
            D = C // 4
            got = got.reshape(heads, 2, D // 2, -1).transpose(0, 2, 1, 3).reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"{ftype} {x.name} ({x.tensor_type.name})")
        seen.add(x.tensor_type.name)
    expected = {"Q4_K_M": {"Q4_K", "Q6_K"}, "Q5_K_M": {"Q5_K", "Q6_K"}, "Q6_K": {"Q6_K"}, "Q5_0": {"Q5_0"}}[ftype]
    assert expected <= seen, seen
    p = run("generate", "--model", g, "--prompt-ids", " ".join(map(str, PROMPT)), "--max-new-tokens", 4,
            "--temperature", 0, "--no-stop-at-eos", "--json")
    assert json.loads(p.stdout)["weights"] == ("q4_k" if ftype == "Q4_K_M" else "q8_0")
    # truncated inside its last tensor: one line, exit 2, from generate and from export alike
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(g.read_bytes()[:-1000])
    for args in (("generate", "--model", cut, "--prompt-ids", "1 2"),
                 ("export", "--model", cut, "--format", "hf", "--out", tmp_path / "cut-hf")):
        p = run(*args, check=False)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
