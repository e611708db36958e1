"""bench/decode's model shapes (issue 20): make_model.py's random models of every family load in
mindllm and export to the GGUF llama.cpp runs (a trained tokenizer where no shared one fits
the vocabulary; here every vocabulary is 600), GPT-Neo with local layers is refused in one line
(llama.cpp has no local attention), and run.py's roofline counts exactly the bytes of the GGUF's
matrices a decoded token reads. Scaled-down copies of the real shapes, so it takes seconds."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_data import SHARED, needs_shared_data

REPO = Path(__file__).resolve().parents[2]
MINDLLM = os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm"))
gguf = pytest.importorskip("gguf", reason="skipped: gguf not installed")
pytestmark = needs_shared_data("corpus", "en")
sys.path.insert(0, str(REPO / "bench" / "decode"))
import make_model  # noqa: E402
import run as bench_run  # noqa: E402

SMALL = dict(vocab_size=600, hidden_size=64, intermediate_size=256, max_position_embeddings=128)
TINY = {
    "t-gpt2": dict(make_model.SHAPES["gpt2-124m"], vocab_size=600, n_embd=64, n_layer=2, n_head=4, n_positions=128),
    "t-qwen2": dict(make_model.SHAPES["qwen2-0.5b"], num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, **SMALL),
    "t-tinyllama": dict(make_model.SHAPES["tinyllama-1.1b"], num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, **SMALL),
    "t-neo": dict(make_model.SHAPES["mindllm-1.3b"], num_layers=2, num_heads=4, window_size=16,
                  attention_types=[[["global", "local"], 1]], **SMALL),
    "t-neo-global": dict(make_model.SHAPES["mindllm-1.3b"], num_layers=2, num_heads=4,
                         attention_types=[[["global"], 2]], **SMALL),
}


def mindllm(*args):
    return subprocess.run([MINDLLM, *map(str, args)], capture_output=True, text=True)


def matrix_bytes(path):
    """Bytes of the GGUF matrices a decoded token reads: all 2-D tensors but the position table and,
    when the model has its own output projection, the token embedding (a lookup)."""
    r = gguf.GGUFReader(path)
    names = {t.name for t in r.tensors}
    skip = {"position_embd.weight"} | ({"token_embd.weight"} if "output.weight" in names else set())
    return sum(int(t.n_bytes) for t in r.tensors if len(t.shape) == 2 and t.name not in skip)


@pytest.mark.parametrize("shape", sorted(TINY))
def test_shape_exports_and_the_roofline_counts_its_bytes(shape, tmp_path, monkeypatch):
    monkeypatch.setitem(make_model.SHAPES, shape, TINY[shape])
    d = tmp_path / shape
    make_model.make(shape, str(d), str(SHARED), mindllm=MINDLLM)
    p = mindllm("generate", "--model", d, "--prompt-ids", "5 6 7", "--max-new-tokens", "2", "--temperature", "0")
    assert p.returncode == 0, p.stderr
    for wtype in ("q8_0", "q4_0"):  # q4_0: the output projection stays q8_0
        out = tmp_path / f"{shape}-{wtype}.gguf"
        p = mindllm("export", "--model", d, "--format", "gguf", "--type", wtype, "--out", out)
        if shape == "t-neo":
            assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert "local-attention" in p.stderr and not out.exists()
            continue
        assert p.returncode == 0, p.stderr
        assert bench_run.bytes_per_token(shape, wtype, 0) == matrix_bytes(out), wtype
        if wtype == "q8_0":
            tokens = gguf.GGUFReader(out).fields["tokenizer.ggml.tokens"]
            assert len(tokens.data) == TINY[shape]["vocab_size"]
            p = mindllm("generate", "--model", out, "--prompt-ids", "5 6 7", "--max-new-tokens", "2",
                        "--temperature", "0")
            assert p.returncode == 0, p.stderr
    # smaller than every shared tokenizer: a trained one, TinyLlama's special tokens first
    tok = (d / "tokenizer.json").read_text()
    assert '"<unk>"' in tok and '"</s>"' in tok


def test_local_layers_read_a_window_of_the_kv_cache(monkeypatch):
    monkeypatch.setitem(make_model.SHAPES, "t-neo", TINY["t-neo"])
    monkeypatch.setitem(make_model.SHAPES, "t-neo-global", TINY["t-neo-global"])
    same = bench_run.bytes_per_token("t-neo", "q8_0", 16) == bench_run.bytes_per_token("t-neo-global", "q8_0", 16)
    assert same  # within the window: the same reads
    extra = bench_run.bytes_per_token("t-neo-global", "q8_0", 100) - bench_run.bytes_per_token("t-neo", "q8_0", 100)
    assert extra == 2 * 64 * 2 * (100 - 16)  # K and V, 64 wide, bf16/f16, of the local layer's 84 older positions
