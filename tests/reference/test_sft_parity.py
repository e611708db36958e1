"""`mindllm sft` against the Hugging Face stack: the tokens and loss mask of each conversation equal
those built in Python from transformers' apply_chat_template (the text before each assistant turn
and the assistant turn tokenized separately, labels -100 outside the assistant turns), and 10
optimizer steps of `mindllm sft` equal 10 steps of a plain PyTorch loop with transformers' masked
loss, for gpt2, gpt_neo and llama."""
import json

import pytest
import torch
import transformers
from safetensors.torch import load_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mindllm_ref import randomize_, run, write_model_dir

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CONVERSATIONS = [
    [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "2 + 3 = 5."}],
    [{"role": "system", "content": "You answer in one word."}, {"role": "user", "content": "Capital of France?"},
     {"role": "assistant", "content": "Paris."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."}, {"role": "assistant", "content": "Why did the chicken cross the road?"},
     {"role": "user", "content": "Why?"}, {"role": "assistant", "content": "To get to the other side."}],
    [{"role": "user", "content": "床前明月光的下一句是什么？"}, {"role": "assistant", "content": "疑是地上霜。"}],
    [{"role": "user", "content": "Translate 'thank you' to Chinese.\nBe brief."}, {"role": "assistant", "content": "谢谢"}],
    [{"role": "user", "content": "List three colours."}, {"role": "assistant", "content": "Red, green and blue."},
     {"role": "user", "content": "And two more?"}, {"role": "assistant", "content": "Yellow and purple."}],
]
STEPS, LR, WD, CLIP = 10, 2e-3, 0.1, 0.5


def as_records(convs):
    """The conversations in the three formats, so each reader is exercised."""
    recs = []
    for i, c in enumerate(convs):
        if i % 3 == 0 and len(c) == 2:
            recs.append({"instruction": c[0]["content"], "output": c[1]["content"]})
        elif i % 3 == 1:
            names = {"user": "human", "assistant": "gpt", "system": "system"}
            recs.append({"conversations": [{"from": names[m["role"]], "value": m["content"]} for m in c]})
        else:
            recs.append({"messages": c})
    return recs


def make_tokenizer(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [m["content"] for c in CONVERSATIONS for m in c] * 20 + ["user assistant system"] * 20
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(path))
    return transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), chat_template=CHATML,
                                                eos_token="<|im_end|>")


def python_sample(hf_tok, conv):
    """ids and trained mask: the prompt text before each assistant turn and the turn itself
    (what rendering through it adds to rendering the prompt with the generation prompt)."""
    render = lambda msgs, gen: hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    full, pieces, pos = render(conv, False), [], 0
    for k, m in enumerate(conv):
        if m["role"] != "assistant":
            continue
        prompt, turn = render(conv[:k], True), render(conv[:k + 1], False)
        assert turn.startswith(prompt) and full.startswith(turn)
        pieces += [(full[pos:len(prompt)], 0), (full[len(prompt):len(turn)], 1)]
        pos = len(turn)
    pieces.append((full[pos:], 0))
    ids, trained = [], []
    for text, t in pieces:
        if text:
            enc = hf_tok.encode(text, add_special_tokens=False)
            ids += enc
            trained += [t] * len(enc)
    trained[0] = 0
    return ids, trained


CASES = {
    "gpt2": lambda v: transformers.GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                              attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0),
    "gpt_neo": lambda v: transformers.GPTNeoConfig(vocab_size=v, hidden_size=32, num_layers=2, num_heads=4,
                                                   max_position_embeddings=128, window_size=8,
                                                   attention_types=[[["global", "local"], 1]],
                                                   tie_word_embeddings=False),
    "llama": lambda v: transformers.LlamaConfig(vocab_size=v, hidden_size=32, intermediate_size=56,
                                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                max_position_embeddings=128, rms_norm_eps=1e-5),
}


def chat_model_dir(name, tmp_path, seed):
    """tmp_path/init: a CASES[name] model with random weights (float32 values, float64 module),
    make_tokenizer's tokenizer and the ChatML template. Returns (dir, hf_tok, cfg, model)."""
    hf_tok = make_tokenizer(tmp_path / "tokenizer.json")
    cfg = CASES[name](len(hf_tok))
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg).double(), seed=seed).float().double()
    sd = {k: v.float() for k, v in model.state_dict().items()
          if not k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias", "attention.masked_bias"))}
    init = tmp_path / "init"
    write_model_dir(init, json.loads(cfg.to_json_string()), sd)
    (init / "tokenizer.json").write_bytes((tmp_path / "tokenizer.json").read_bytes())
    (init / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML, "eos_token": "<|im_end|>"}))
    return init, hf_tok, cfg, model


@pytest.mark.parametrize("name", list(CASES))
def test_sft_masks_and_ten_steps_match_transformers(name, tmp_path):
    init, hf_tok, cfg, model = chat_model_dir(name, tmp_path, seed=3)
    vocab = len(hf_tok)
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in as_records(CONVERSATIONS)))

    run("sft", "--model", init, "--data", data, "--out", tmp_path / "run", "--dump-samples", tmp_path / "samples.jsonl",
        "--steps", STEPS, "--batch", len(CONVERSATIONS), "--seq", 128, "--lr", LR, "--warmup", 0,
        "--schedule", "constant", "--weight-decay", WD, "--clip", CLIP, "--beta1", 0.9, "--beta2", 0.95,
        "--threads", 2)

    # The same tokens and masks (the samples are in a seeded order: compare as sorted lists).
    expected = sorted(python_sample(hf_tok, c) for c in CONVERSATIONS)
    got = sorted((s["ids"], s["trained"]) for s in map(json.loads, (tmp_path / "samples.jsonl").read_text().splitlines()))
    assert got == expected

    # Every step sees all samples (batch = dataset): the step's loss is the mean over all trained
    # tokens, whatever the order. Pad at the end (causal: the padding changes no earlier logit).
    T = max(len(ids) for ids, _ in expected) - 1
    ids = torch.zeros(len(expected), T, dtype=torch.long)
    labels = torch.full((len(expected), T), -100)
    for r, (x, t) in enumerate(expected):
        ids[r, :len(x) - 1] = torch.tensor(x[:-1])
        labels[r, :len(x) - 1] = torch.tensor([tok if keep else -100 for tok, keep in zip(x[1:], t[1:])])
    params = dict(model.named_parameters())
    embeddings = {n for n in params if "wte" in n or "wpe" in n or "embed_tokens" in n}
    decay = [p for n, p in params.items() if p.dim() >= 2 and n not in embeddings]
    no_decay = [p for n, p in params.items() if not (p.dim() >= 2 and n not in embeddings)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        logits = model(input_ids=ids).logits  # labels are already the next tokens: no shift
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        losses.append(float(loss.detach()))
        torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
        opt.step()
    metrics = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for m, ref in zip(metrics, losses):
        assert abs(m["loss"] - ref) < 2e-5 * max(1.0, abs(ref)), (m["loss"], ref)
    assert metrics[0]["target_tokens"] == sum(sum(t) for _, t in expected)
    ckpt = tmp_path / "run" / "ckpt" / f"step-{STEPS:07d}"
    got_w = load_file(str(ckpt / "model.safetensors"))
    for n, p in params.items():
        if n not in got_w:
            assert n == "lm_head.weight" and cfg.tie_word_embeddings, n
            continue
        diff = (got_w[n].double() - p.detach()).abs()
        if n.endswith("c_attn.bias"):  # the key bias: zero true gradient, rounding noise only (see test_training_parity)
            C = cfg.n_embd
            diff = torch.cat([diff[:C], diff[2 * C:]])
        assert float(diff.max()) < 5e-5, f"{n}: {float(diff.max())}"
    # The checkpoint carries its chat template and tokenizer: transformers renders with it.
    tc = json.loads((ckpt / "tokenizer_config.json").read_text())
    assert tc["chat_template"] == CHATML
    assert (ckpt / "tokenizer.json").exists()


M64 = (1 << 64) - 1


def mix64(a, b=0, c=0):
    """core/hash.h's mix64."""
    z = ((a * 0x9E3779B97F4A7C15) & M64) ^ (((b + 0x632BE59BD9B4E019) * 0xBF58476D1CE4E5B9) & M64) ^ ((c + 0x2545F4914F6CDD1D) & M64)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def neftune_noise(alpha, seed, T, C):
    """model/neftune.h's noise for one row of T positions: splitmix64 (core/rng.h) uniforms in
    [-m, m], m = alpha / sqrt(T * C), in float32 as the C++ computes them."""
    import numpy as np
    out = np.empty(T * C, dtype=np.float32)
    m = np.float32(alpha) / np.sqrt(np.float32(T) * np.float32(C))
    state = seed
    for i in range(T * C):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z ^= z >> 31
        u = np.float32(z >> 40) * np.float32(1.0 / 16777216.0)
        out[i] = (np.float32(2.0) * u - np.float32(1.0)) * m
    return torch.from_numpy(out.reshape(1, T, C))


def test_neftune_is_noise_on_the_input_embeddings_step_for_step(tmp_path):
    """--neftune-alpha 5 on one conversation (batch 1): each step equals PyTorch with that step's
    noise added to the input embeddings (a forward hook on embed_tokens, as TRL applies NEFTune);
    without the flag the loss differs; --neftune-alpha 0 is bit-identical to no flag."""
    hf_tok = make_tokenizer(tmp_path / "tokenizer.json")
    vocab, seed, alpha = len(hf_tok), 1234, 5.0
    cfg = CASES["llama"](vocab)
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg).double(), seed=3).float().double()
    init = tmp_path / "init"
    write_model_dir(init, json.loads(cfg.to_json_string()), {k: v.float() for k, v in model.state_dict().items()})
    (init / "tokenizer.json").write_bytes((tmp_path / "tokenizer.json").read_bytes())
    (init / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML, "eos_token": "<|im_end|>"}))
    conv = CONVERSATIONS[2]
    (tmp_path / "one.jsonl").write_text(json.dumps({"messages": conv}) + "\n")
    common = ("--model", init, "--data", tmp_path / "one.jsonl", "--steps", STEPS, "--batch", 1, "--seq", 128,
              "--lr", LR, "--warmup", 0, "--schedule", "constant", "--weight-decay", 0, "--clip", 0,
              "--beta1", 0.9, "--beta2", 0.95, "--seed", seed, "--threads", 2)
    run("sft", *common, "--out", tmp_path / "noisy", "--neftune-alpha", alpha)
    run("sft", *common, "--out", tmp_path / "clean")
    run("sft", *common, "--out", tmp_path / "zero", "--neftune-alpha", 0)
    final = lambda d: (d / "ckpt" / f"step-{STEPS:07d}" / "model.safetensors").read_bytes()
    assert final(tmp_path / "zero") == final(tmp_path / "clean")  # alpha 0 is no NEFTune, bit for bit

    x, t = python_sample(hf_tok, conv)
    ids = torch.tensor([x[:-1]])
    labels = torch.tensor([[tok if keep else -100 for tok, keep in zip(x[1:], t[1:])]])
    T, C = ids.shape[1], cfg.hidden_size
    step_noise = {}
    model.model.embed_tokens.register_forward_hook(lambda mod, inp, out: out + step_noise["now"])
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    losses = []
    for step in range(STEPS):
        step_noise["now"] = neftune_noise(alpha, mix64(seed, 0x4E454654 + step, 0), T, C).double()
        opt.zero_grad()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=-100)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    noisy = [json.loads(l)["loss"] for l in (tmp_path / "noisy" / "metrics.jsonl").read_text().splitlines()]
    clean = [json.loads(l)["loss"] for l in (tmp_path / "clean" / "metrics.jsonl").read_text().splitlines()]
    for got, ref in zip(noisy, losses):
        assert abs(got - ref) < 2e-5 * max(1.0, abs(ref)), (got, ref)
    assert abs(noisy[0] - clean[0]) > 1e-4  # the noise is there
    got_w = load_file(str(tmp_path / "noisy" / "ckpt" / f"step-{STEPS:07d}" / "model.safetensors"))
    for n, p in model.named_parameters():
        assert float((got_w[n].double() - p.detach()).abs().max()) < 5e-5, n
