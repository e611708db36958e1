"""LoRA in `mindllm sft` against Hugging Face PEFT (PyPI), for tiny gpt2, gpt_neo and llama models:
the adapter mindllm initialises (A kaiming-uniform, B zero) loads into PEFT; 8 optimizer steps of
`mindllm sft --lora-*` equal 8 steps of a plain PyTorch + PEFT loop with AdamW (losses, gradient
norms, adapter weights); PeftModel.from_pretrained(base, checkpoint) gives the logits of mindllm's
merged export (`mindllm export --merge-lora`, run by transformers and by mindllm); an adapter that
PEFT wrote merges to PEFT's logits; resume is bit-identical; bad input is one line + exit 2."""
import json
import math
import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file

from mindllm_ref import mindllm_forward, run, write_model_dir
from test_sft_parity import CASES, CONVERSATIONS, as_records, chat_model_dir, python_sample

peft = pytest.importorskip("peft")

STEPS, LR, WD, CLIP, RANK, ALPHA = 8, 1e-2, 0.1, 0.5, 4, 8
TARGETS = {"llama": "q,k,v,o,gate,up,down", "gpt_neo": "q,k,v,o,up,down", "gpt2": "q,o,up,down"}


def base_model(name, tmp_path):
    """A random tiny model (float64 in PyTorch, float32 on disk), its directory and tokenizer."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    init, hf_tok, _, model = chat_model_dir(name, tmp_path, seed=3)
    return model, init, hf_tok


def load_base(init):
    m = transformers.AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32, attn_implementation="eager")
    return m.double().eval()


def batch(hf_tok):
    """All conversations as one batch: input ids and labels (-100 outside the answers)."""
    samples = sorted(python_sample(hf_tok, c) for c in CONVERSATIONS)
    T = max(len(x) for x, _ in samples) - 1
    ids = torch.zeros(len(samples), T, dtype=torch.long)
    labels = torch.full((len(samples), T), -100)
    for r, (x, t) in enumerate(samples):
        ids[r, :len(x) - 1] = torch.tensor(x[:-1])
        labels[r, :len(x) - 1] = torch.tensor([tok if keep else -100 for tok, keep in zip(x[1:], t[1:])])
    return ids, labels


def sft(init, data, out, *extra, steps=STEPS, lr=LR, targets="q,v", batch=len(CONVERSATIONS), check=True):
    return run("sft", "--model", init, "--data", data, "--out", out, "--steps", steps, "--batch", batch,
               "--seq", 128, "--lr", lr, "--warmup", 0, "--schedule", "constant", "--weight-decay", WD, "--clip", CLIP,
               "--beta1", 0.9, "--beta2", 0.95, "--threads", 2, "--lora-rank", RANK, "--lora-alpha", ALPHA,
               "--lora-targets", targets, *extra, check=check)


def write_data(tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in as_records(CONVERSATIONS)))
    return data


@pytest.mark.parametrize("name", list(CASES))
def test_lora_steps_match_peft_and_merged_export_matches_peft_logits(name, tmp_path):
    model, init, hf_tok = base_model(name, tmp_path)
    data = write_data(tmp_path)
    vocab = len(hf_tok)

    # mindllm's initial adapter (lr 0 leaves it as initialised): a PEFT adapter directory.
    sft(init, data, tmp_path / "zero", steps=1, lr=0, targets=TARGETS[name])
    start = tmp_path / "zero" / "ckpt" / "step-0000001"
    cfg = json.loads((start / "adapter_config.json").read_text())
    assert (cfg["peft_type"], cfg["task_type"], cfg["r"], cfg["lora_alpha"]) == ("LORA", "CAUSAL_LM", RANK, ALPHA)
    assert cfg["fan_in_fan_out"] == (name == "gpt2")
    assert not (start / "model.safetensors").exists()
    w0 = load_file(str(start / "adapter_model.safetensors"))
    for n, t in w0.items():
        assert n.startswith("base_model.model.") and n.endswith((".lora_A.weight", ".lora_B.weight")), n
        if n.endswith("lora_B.weight"):
            assert t.abs().max() == 0, n  # B starts at zero: training starts from the base model
        else:  # kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))
            bound = 1 / math.sqrt(t.shape[1])
            assert t.abs().max() <= bound and t.abs().max() > 0.8 * bound, n
            assert abs(float(t.std()) - bound / math.sqrt(3)) < 0.25 * bound, n
    n_layers = 2
    per_layer = {"llama": 7, "gpt_neo": 6, "gpt2": 4}[name]
    assert len(w0) == 2 * n_layers * per_layer

    # The same adapter in PEFT, trained by a plain PyTorch loop.
    peft_model = peft.PeftModel.from_pretrained(model, start, is_trainable=True).double()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    assert len(trainable) == len(w0)
    opt = torch.optim.AdamW(trainable, lr=LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=WD)
    ids, labels = batch(hf_tok)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        logits = peft_model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        losses.append(float(loss.detach()))
        norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, CLIP)))
        opt.step()

    sft(init, data, tmp_path / "run", targets=TARGETS[name])
    metrics = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for m, ref, norm in zip(metrics, losses, norms):
        assert abs(m["loss"] - ref) < 2e-5 * max(1.0, abs(ref)), (m["loss"], ref)
        assert abs(m["grad_norm"] - norm) < 1e-4 * max(1.0, norm), (m["grad_norm"], norm)
    assert abs(metrics[-1]["loss"] - metrics[0]["loss"]) > 1e-3  # the adapters did train
    ckpt = tmp_path / "run" / "ckpt" / f"step-{STEPS:07d}"
    got = load_file(str(ckpt / "adapter_model.safetensors"))
    want = {n.replace(".default", ""): p for n, p in peft_model.named_parameters() if p.requires_grad}
    assert set(got) == set(want)
    for n, p in want.items():
        assert float((got[n].double() - p.detach()).abs().max()) < 5e-5, n

    # PEFT loads mindllm's checkpoint onto a fresh base: its logits = the merged export's, run by
    # transformers and by mindllm.
    probe = ids[:2, :12]
    with torch.no_grad():
        ref = peft.PeftModel.from_pretrained(load_base(init), ckpt).double().eval()(input_ids=probe).logits
        trained = peft_model.eval()(input_ids=probe).logits
    assert float((ref - trained).abs().max()) < 1e-4
    run("export", "--merge-lora", "--model", init, "--adapter", ckpt, "--out", tmp_path / "merged")
    assert (tmp_path / "merged" / "tokenizer_config.json").exists()
    with torch.no_grad():
        merged = load_base(tmp_path / "merged")(input_ids=probe).logits
    assert float((merged - ref).abs().max()) < 1e-4
    (tmp_path / "fwd").mkdir()
    mind, _, _ = mindllm_forward(tmp_path / "merged", probe, torch.zeros_like(probe), tmp_path / "fwd", grads=False)
    assert float((mind.reshape(ref.shape) - ref).abs().max()) < 1e-4


@pytest.mark.parametrize("name", list(CASES))
def test_peft_adapter_forward_gradients_and_merge_match_peft(name, tmp_path):
    """An adapter PEFT wrote (random A and B, r 3, alpha 5): `mindllm forward --adapter` gives
    PEFT's loss, logits and adapter gradients; the merged export gives PEFT's logits."""
    model, init, hf_tok = base_model(name, tmp_path)
    modules = {"llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
               "gpt_neo": ["q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"],
               "gpt2": ["c_attn", "c_proj", "c_fc"]}[name]
    lc = peft.LoraConfig(r=3, lora_alpha=5, target_modules=modules, init_lora_weights=False,
                         fan_in_fan_out=name == "gpt2", task_type="CAUSAL_LM")
    torch.manual_seed(0)
    theirs = peft.get_peft_model(load_base(init).float(), lc)
    theirs.save_pretrained(tmp_path / "theirs")  # float32 tensors
    theirs = theirs.double()
    ids, labels = batch(hf_tok)
    logits = theirs(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(hf_tok)), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    (tmp_path / "fwd").mkdir()
    mind, mloss, grads = mindllm_forward(init, ids, labels, tmp_path / "fwd",
                                         extra=("--adapter", tmp_path / "theirs", "--threads", 2))
    assert abs(mloss - float(loss)) < 1e-5 * max(1.0, float(loss))
    assert float((mind.reshape(logits.shape) - logits.detach()).abs().max()) < 1e-4
    want = {n.replace(".default", ""): p.grad for n, p in theirs.named_parameters() if p.requires_grad}
    assert set(grads) == set(want)
    for n, g in want.items():
        assert float((grads[n] - g).abs().max()) < 1e-5 * max(1.0, float(g.abs().max())), n
    probe = ids[:2, :12]
    with torch.no_grad():
        ref = theirs.eval()(input_ids=probe).logits
    run("export", "--merge-lora", "--model", init, "--adapter", tmp_path / "theirs", "--out", tmp_path / "merged")
    with torch.no_grad():
        merged = load_base(tmp_path / "merged")(input_ids=probe).logits
    assert float((merged - ref).abs().max()) < 1e-4


def test_lora_resume_is_bit_identical_and_dropout_is_seeded(tmp_path):
    _, init, _ = base_model("llama", tmp_path)
    data = write_data(tmp_path)
    extra = ("--lora-dropout", 0.1, "--ckpt-every", 3, "--grad-accum", 2)
    sft(init, data, tmp_path / "full", *extra, steps=9, batch=3)
    part = tmp_path / "part"
    sft(init, data, part, *extra, steps=9, batch=3)
    for step in (6, 9):
        shutil.rmtree(part / "ckpt" / f"step-{step:07d}")
    (part / "ckpt" / "latest").write_text("step-0000003")
    sft(init, data, part, *extra, "--resume", steps=9, batch=3)
    for f in ("adapter_model.safetensors", "optimizer.safetensors", "adapter_config.json"):
        a = (tmp_path / "full" / "ckpt" / "step-0000009" / f).read_bytes()
        assert a == (part / "ckpt" / "step-0000009" / f).read_bytes(), f
    # Dropout changes the run (from step 2 on: B is zero at step 1), and the same seed repeats it.
    sft(init, data, tmp_path / "nodrop", "--ckpt-every", 3, "--grad-accum", 2, steps=3, batch=3)
    loss = lambda d: [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert loss(tmp_path / "nodrop")[0] == loss(tmp_path / "full")[0]
    assert loss(tmp_path / "nodrop")[2] != loss(tmp_path / "full")[2]
    # The adapter checkpoint resumes only with the same LoRA flags.
    p = sft(init, data, part, *extra, "--resume", steps=12, batch=3, targets="q,k,v", check=False)
    assert p.returncode == 2 and "differs from --lora-rank" in p.stderr.strip().splitlines()[-1], p.stderr


def test_lora_bad_input_is_one_line_and_exit_2(tmp_path):
    _, init, _ = base_model("gpt2", tmp_path)
    data = write_data(tmp_path)

    def bad(*args, match):
        p = run(*args, check=False)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert match in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr

    common = ("sft", "--model", init, "--data", data, "--out", tmp_path / "o", "--steps", 1, "--seq", 128)
    bad(*common, "--lora-rank", 0, match="--lora-rank")
    bad(*common, "--lora-rank", 4, "--lora-targets", "q,nope", match="--lora-targets nope")
    bad(*common, "--lora-rank", 4, "--lora-targets", "gate", match="gpt2")
    bad(*common, "--lora-rank", 4, "--lora-targets", "q,,v", match="--lora-targets")
    bad(*common, "--lora-rank", 4, "--lora-dropout", 1, match="--lora-dropout")
    bad(*common, "--lora-rank", 4, "--lora-alpha", 0, match="--lora-alpha")
    bad(*common, "--lora-alpha", 8, match="--lora-alpha needs --lora-rank")
    bad(*common, "--lora-rank", 4, "--device", "cuda", match="--lora-rank")

    # An adapter of another base: a llama adapter onto gpt2; a gpt2 adapter onto a wider gpt2.
    _, other, _ = base_model("llama", tmp_path / "x")
    sft(other, data, tmp_path / "llama_run", steps=1)
    adapter = tmp_path / "llama_run" / "ckpt" / "step-0000001"
    bad("export", "--merge-lora", "--model", init, "--adapter", adapter, "--out", tmp_path / "m", match="adapts no module")
    sft(init, data, tmp_path / "gpt2_run", steps=1)
    wide_cfg = transformers.GPT2Config(vocab_size=json.loads((init / "config.json").read_text())["vocab_size"],
                                       n_embd=48, n_layer=2, n_head=4, n_positions=128)
    wide = tmp_path / "wide"
    model = transformers.GPT2LMHeadModel(wide_cfg)
    write_model_dir(wide, json.loads(wide_cfg.to_json_string()),
                    {k: v for k, v in model.state_dict().items()
                     if not k.endswith((".attn.bias", ".attn.masked_bias")) and k != "lm_head.weight"})
    bad("export", "--merge-lora", "--model", wide, "--adapter", tmp_path / "gpt2_run" / "ckpt" / "step-0000001",
        "--out", tmp_path / "m", match="has shape")
    bad("export", "--merge-lora", "--model", init, "--out", tmp_path / "m", match="--adapter")
    bad("export", "--merge-lora", "--model", init, "--adapter", tmp_path / "nothing", "--out", tmp_path / "m",
        match="nothing")
    cfg_path = tmp_path / "gpt2_run" / "ckpt" / "step-0000001" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["use_dora"] = True
    cfg_path.write_text(json.dumps(cfg))
    bad("export", "--merge-lora", "--model", init, "--adapter", cfg_path.parent, "--out", tmp_path / "m", match="DoRA")
    # A LoRA run does not resume as a full one (found after the data summary: the last line).
    p = run(*common[:5], "--out", tmp_path / "gpt2_run", "--steps", 2, "--seq", 128, "--resume", check=False)
    assert p.returncode == 2 and "LoRA checkpoint" in p.stderr.strip().splitlines()[-1], p.stderr
