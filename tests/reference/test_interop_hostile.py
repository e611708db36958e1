"""The importer refuses bad and hostile checkpoints with one line and exit code 2, and runs no code:
truncated or inconsistent safetensors, pickles that call anything but torch.save's rebuild
functions, legacy pickles, storages that do not match, config/weight disagreements, shard paths
outside the model directory, unsupported config options. And a MindLLM-style GPT-Neo tokenizer
(GPT-2 vocab/merges + a few thousand Chinese tokens in added_tokens.json) encodes as transformers'."""
import collections
import json
import os
import pickle
import struct
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import torch
import transformers

from mindllm_ref import randomize_, run
from shared_data import shared_data

V = 64


def tiny_llama(tmp_path, **kw):
    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                   num_attention_heads=2, max_position_embeddings=32, **kw)
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg)).eval()
    d = tmp_path / "m"
    d.mkdir(exist_ok=True)
    cfg.save_pretrained(d)
    return model, d


def tokens_file(tmp_path):
    from safetensors.torch import save_file
    p = tmp_path / "tok.safetensors"
    save_file({"input_ids": torch.zeros(1, 4, dtype=torch.int32)}, str(p))
    return p


def forward_fails(d, tmp_path, *expect):
    """Runs `mindllm forward` on model dir d; asserts exit 2, one line on stderr holding `expect`."""
    p = run("forward", "--model", d, "--tokens", tokens_file(tmp_path), "--out", tmp_path / "o.safetensors", check=False)
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    msg = p.stderr.strip()
    assert "\n" not in msg, msg
    for e in expect:
        assert e in msg, msg
    return msg


# ---- safetensors ----

def st_bytes(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def test_safetensors_hostile(tmp_path):
    model, d = tiny_llama(tmp_path)
    model.save_pretrained(d)
    good = (d / "model.safetensors").read_bytes()
    cases = {
        "truncated": (good[: len(good) // 2], "out of range"),
        "header past end": (struct.pack("<Q", 1 << 40) + good[8:], "runs past the end"),
        "out of range": (st_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
                         "out of range"),
        "overlap": (st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlap"),
        "size mismatch": (st_bytes({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
                          "does not match"),
    }
    for name, (blob, expect) in cases.items():
        (d / "model.safetensors").write_bytes(blob)
        forward_fails(d, tmp_path, "model.safetensors", expect)


def test_shard_paths_stay_inside_the_directory(tmp_path):
    model, d = tiny_llama(tmp_path)
    model.save_pretrained(d, max_shard_size="4KB")
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    name = next(iter(idx["weight_map"]))
    idx["weight_map"][name] = "../outside.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    forward_fails(d, tmp_path, "not a plain file name")
    idx["weight_map"][name] = "missing.safetensors"
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    forward_fails(d, tmp_path, "does not exist")


# ---- pytorch_model.bin ----

class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bin_with_pickle(path, pkl, extra=None):
    """A torch.save-shaped zip (archive/data.pkl, archive/version) around arbitrary pickle bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        for k, v in (extra or {}).items():
            z.writestr(k, v)


def test_pickles_that_call_code_are_refused(tmp_path):
    model, d = tiny_llama(tmp_path)
    marker = tmp_path / "pwned"
    b = d / "pytorch_model.bin"
    bin_with_pickle(b, pickle.dumps(Evil(marker), protocol=2))
    forward_fails(d, tmp_path, "pytorch_model.bin", "system", "not allowed")
    # protocol 0 INST opcode, and a builtins.eval GLOBAL inside an otherwise normal dict
    bin_with_pickle(b, b"(X\x02\x00\x00\x00hiios\nsystem\n.")
    forward_fails(d, tmp_path, "INST", "not allowed")
    bin_with_pickle(b, pickle.dumps(collections.OrderedDict(a=eval), protocol=2))
    forward_fails(d, tmp_path, "builtin__.eval", "not allowed")
    # a real torch.save whose state dict holds something other than tensors
    torch.save({"w": torch.zeros(2), "c": Counter("ab")}, b)
    forward_fails(d, tmp_path, "collections.Counter", "not allowed")
    assert not marker.exists(), "a pickle ran code"


def test_bin_structure_errors(tmp_path):
    model, d = tiny_llama(tmp_path)
    b = d / "pytorch_model.bin"
    torch.save(model.state_dict(), b)
    good = b.read_bytes()
    b.write_bytes(good[: len(good) * 2 // 3])
    forward_fails(d, tmp_path, "pytorch_model.bin")
    b.write_bytes(b"hello world, not a zip")
    forward_fails(d, tmp_path, "not a PyTorch checkpoint")
    torch.save(model.state_dict(), b, _use_new_zipfile_serialization=False)
    forward_fails(d, tmp_path, "legacy")
    # a storage entry shorter than the pickle says
    torch.save(model.state_dict(), b)
    with zipfile.ZipFile(b) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    key = next(n for n in entries if "/data/" in n and len(entries[n]) > 8)
    entries[key] = entries[key][:-4]
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        for n, v in entries.items():
            z.writestr(n, v)
    forward_fails(d, tmp_path, "storage", "bytes")
    # deflated entries (not what torch.save writes, but valid zip) still read
    torch.save(model.state_dict(), b)
    with zipfile.ZipFile(b) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in entries.items():
            z.writestr(n, v)
    run("forward", "--model", d, "--tokens", tokens_file(tmp_path), "--out", tmp_path / "o.safetensors")


def patch_declared_size(path, name, size):
    """Rewrites the uncompressed size that zip entry `name` declares (local and central headers)."""
    b = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        struct.pack_into("<I", b, z.getinfo(name).header_offset + 22, size)
    i = b.find(b"PK\x01\x02")
    while i >= 0:
        n = struct.unpack_from("<H", b, i + 28)[0]
        if b[i + 46:i + 46 + n] == name.encode():
            struct.pack_into("<I", b, i + 24, size)
        i = b.find(b"PK\x01\x02", i + 4)
    path.write_bytes(bytes(b))


def test_bin_declared_sizes_are_checked_before_allocating(tmp_path):
    """Issue 24 item 17: a few-MB .bin whose zip headers claim gigabytes is refused (exit 2) without
    allocating what the headers claim; checked under a 1.5 GB address-space limit."""
    import resource

    model, d = tiny_llama(tmp_path)
    b = d / "pytorch_model.bin"
    sd = dict(model.state_dict())
    sd["pad"] = torch.randint(0, 256, (4 << 20,), dtype=torch.uint8)  # 4 MiB that deflate cannot shrink
    torch.save(sd, b)
    with zipfile.ZipFile(b) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in entries.items():
            z.writestr(n, v)
    big = next(n for n, v in entries.items() if len(v) == 4 << 20)
    patch_declared_size(b, big, 0xF0000000)  # 3.75 GiB: within deflate's 1032:1 of 4 MiB

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    p = run("forward", "--model", d, "--tokens", tokens_file(tmp_path), "--out", tmp_path / "o.safetensors",
            "--threads", 1, check=False, preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    assert "storage" in p.stderr and str(0xF0000000) in p.stderr and "\n" not in p.stderr.strip(), p.stderr
    # A deflated entry whose real data is shorter than its (consistent) declared size is refused
    # after inflating only what is there.
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, v in entries.items():
            z.writestr(n, v if n != big else v[: len(v) // 2])
    patch_declared_size(b, big, 4 << 20)
    p = run("forward", "--model", d, "--tokens", tokens_file(tmp_path), "--out", tmp_path / "o.safetensors",
            check=False)
    assert p.returncode == 2 and "does not inflate to its declared size" in p.stderr, p.stderr


def test_config_weight_disagreements(tmp_path):
    model, d = tiny_llama(tmp_path)
    sd = model.state_dict()
    b = d / "pytorch_model.bin"
    cfg = json.loads((d / "config.json").read_text())
    # shape: config says a wider MLP than the weights
    (d / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 32}))
    torch.save(sd, b)
    forward_fails(d, tmp_path, "gate_proj.weight", "shape", "expected")
    (d / "config.json").write_text(json.dumps(cfg))
    # dtype: an integer tensor where a weight should be
    torch.save({**sd, "model.norm.weight": torch.ones(16, dtype=torch.int64)}, b)
    forward_fails(d, tmp_path, "model.norm.weight", "int64")
    # missing and unexpected tensors
    torch.save({k: v for k, v in sd.items() if k != "model.norm.weight"}, b)
    forward_fails(d, tmp_path, "missing tensor 'model.norm.weight'")
    torch.save({**sd, "model.layers.0.self_attn.q_proj.bias": torch.zeros(16)}, b)
    forward_fails(d, tmp_path, "q_proj.bias", "not part of")


@pytest.mark.parametrize("patch,expect", [
    ({"model_type": "qwen2", "use_sliding_window": True}, "use_sliding_window"),
    ({"model_type": "qwen2", "layer_types": ["sliding_attention"]}, "layer_types"),
    ({"model_type": "mistral"}, "not supported"),
    ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
])
def test_unsupported_config_options(tmp_path, patch, expect):
    model, d = tiny_llama(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, **patch}))
    model.save_pretrained(d)
    (d / "config.json").write_text(json.dumps({**cfg, **patch}))
    forward_fails(d, tmp_path, "config.json", expect)


# ---- MindLLM-style tokenizer: GPT-2 files + added Chinese tokens ----

def chinese_added_tokens(n_chars=2500, n_words=500):
    text = shared_data("corpus", "zh", "红楼梦.txt").read_text(encoding="utf-8")
    cjk = [c for c in text if "\u4e00" <= c <= "\u9fff"]
    chars = [c for c, _ in Counter(cjk).most_common(n_chars)]
    words = Counter(a + b for a, b in zip(text, text[1:]) if "\u4e00" <= a <= "\u9fff" and "\u4e00" <= b <= "\u9fff")
    return chars + [w for w, _ in words.most_common(n_words)]


def test_mindllm_style_gpt_neo_tokenizer_matches_transformers(tmp_path, mindllm_encode):
    d = tmp_path / "tok"
    d.mkdir()
    for f in ("vocab.json", "merges.txt"):
        (d / f).write_bytes(shared_data("tokenizers", "gpt2", f).read_bytes())
    added = chinese_added_tokens()
    (d / "added_tokens.json").write_text(json.dumps({t: 50257 + i for i, t in enumerate(added)}, ensure_ascii=False),
                                         encoding="utf-8")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer", "model_max_length": 2048}))
    (d / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                                           "unk_token": "<|endoftext|>"}))
    hf = transformers.AutoTokenizer.from_pretrained(str(d))
    assert len(hf) == 50257 + len(added)
    xiyou = shared_data("corpus", "zh", "西游记.txt").read_text(encoding="utf-8")
    wiki = shared_data("corpus", "en", "wiki_demo.txt").read_text(encoding="utf-8")
    texts = [xiyou[i:i + 300] for i in range(0, 30000, 1500)] + [wiki[i:i + 300] for i in range(0, 20000, 1000)]
    texts += ["床前明月光，疑是地上霜。 The moon, 2024年 GDP 增长5.2%。", "  贾宝玉 and 林黛玉 <|endoftext|> 薛宝钗"]
    want = [hf.encode(t, add_special_tokens=False) for t in texts]
    got = mindllm_encode(d, texts)
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)} texts differ; first: {bad[0][0][:60]!r}\nhf:      {bad[0][1][:30]}\nmindllm: {bad[0][2][:30]}"
    assert any(i >= 50257 for ids in got for i in ids), "no added Chinese token was used"
