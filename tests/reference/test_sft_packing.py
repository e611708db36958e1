"""Packing (`mindllm sft --packing`): samples packed into one row, positions restarting at 0 for
each and attention confined to each (block-diagonal causal, composed with gpt_neo's local
window), give each sample the logits, loss and gradients it has alone — against mindllm's own
unpacked batch and against transformers running each sample alone — for gpt2 (learned
positions), gpt_neo (learned positions, a local layer whose window is shorter than a sample) and
llama (RoPE, GQA)."""
import json

import pytest
import torch
import transformers
from safetensors.torch import save_file

from mindllm_ref import mindllm_forward, randomize_, rel_err, run, write_model_dir

V = 97
# Samples as (n tokens); a sample of n tokens takes n - 1 positions (inputs ids[:-1], targets
# ids[1:]), so no target crosses a boundary. Rows: [0, 1, 2] then padding; [3, 4, 5] exactly full.
LENGTHS = [6, 18, 2, 13, 9, 14]
ROWS = [[0, 1, 2], [3, 4, 5]]
T = 33

CASES = {
    "gpt2": transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt_neo": transformers.GPTNeoConfig(vocab_size=V, hidden_size=32, num_layers=2, num_heads=4,
                                         max_position_embeddings=64, window_size=5, intermediate_size=72,
                                         attention_types=[[["global", "local"], 1]], tie_word_embeddings=False),
    "llama": transformers.LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      rms_norm_eps=1e-5),
}


def samples():
    g = torch.Generator().manual_seed(7)
    out = []
    for n in LENGTHS:
        ids = torch.randint(0, V, (n,), generator=g)
        targets = ids[1:].clone()
        targets[torch.rand(n - 1, generator=g) < 0.3] = -1  # a loss mask (prompt tokens)
        targets[-1] = ids[-1]  # the last token (an end of turn) is always trained
        out.append((ids, targets))
    return out


def packed(smp, only=None):
    """The packed batch: input_ids, targets (only sample `only` trained, if given), position_ids."""
    ids, tg, pos = torch.zeros(len(ROWS), T, dtype=torch.long), torch.full((len(ROWS), T), -1), torch.zeros(
        len(ROWS), T, dtype=torch.long)
    where = {}
    for r, row in enumerate(ROWS):
        t = 0
        for i in row:
            x, y = smp[i]
            n = len(x) - 1
            ids[r, t:t + n], pos[r, t:t + n] = x[:-1], torch.arange(n)
            if only is None or only == i:
                tg[r, t:t + n] = y
            where[i] = (r, t, n)
            t += n
        pos[r, t:] = torch.arange(T - t)  # the padding tail: its own segment, no targets
    return ids, tg, pos, where


def unpacked(smp):
    n_max = max(len(x) for x, _ in smp) - 1
    ids, tg = torch.zeros(len(smp), n_max, dtype=torch.long), torch.full((len(smp), n_max), -1)
    for i, (x, y) in enumerate(smp):
        ids[i, :len(x) - 1], tg[i, :len(x) - 1] = x[:-1], y
    return ids, tg


def hf_model(name):
    cfg = CASES[name]
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg).double(), seed=11).eval()
    return cfg, model.float().double()  # the float32-rounded weights the checkpoint holds


def hf_sample(model, x, y):
    """transformers on one sample alone: logits, mean loss over its targets, gradients."""
    model.zero_grad()
    logits = model(input_ids=x[:-1].unsqueeze(0)).logits[0]
    loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=-1)
    loss.backward()
    return logits.detach(), float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", list(CASES))
def test_packed_equals_each_sample_alone(name, tmp_path):
    assert sum(LENGTHS[i] - 1 for i in ROWS[1]) == T and max(LENGTHS) - 1 > CASES["gpt_neo"].window_size
    cfg, model = hf_model(name)
    sd = {k: v.float() for k, v in model.state_dict().items()
          if not k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias", "attention.masked_bias"))}
    write_model_dir(tmp_path / "m", json.loads(cfg.to_json_string()), sd)
    smp = samples()
    ids, tg, pos, where = packed(smp)

    # mindllm packed vs mindllm unpacked (one sample per row, padded): the same logits at every
    # sample position, the same loss and gradients (the batch's mean over all trained tokens).
    p_logits, p_loss, p_grads = mindllm_forward(tmp_path / "m", ids, tg, tmp_path, position_ids=pos)
    u_ids, u_tg = unpacked(smp)
    u_logits, u_loss, u_grads = mindllm_forward(tmp_path / "m", u_ids, u_tg, tmp_path)
    for i, (r, t, n) in where.items():
        assert rel_err(p_logits[r, t:t + n], u_logits[i, :n]) < 1e-5, f"sample {i}: logits differ"
    assert abs(p_loss - u_loss) < 1e-5 * max(1.0, abs(u_loss))
    for k in u_grads:
        assert rel_err(p_grads[k], u_grads[k]) < 1e-4, f"{k}: packed vs unpacked grad {rel_err(p_grads[k], u_grads[k])}"

    # Per sample, against transformers on that sample alone: the packed batch with only that
    # sample's targets gives its loss and its gradients (nothing leaks in from its neighbours).
    hf_all, n_all = 0.0, 0
    for i, (x, y) in enumerate(smp):
        ref_logits, ref_loss, ref_grads = hf_sample(model, x, y)
        r, t, n = where[i]
        assert rel_err(p_logits[r, t:t + n], ref_logits) < 2e-5, f"sample {i}: logits vs transformers"
        ids_i, tg_i, pos_i, _ = packed(smp, only=i)
        _, loss_i, grads_i = mindllm_forward(tmp_path / "m", ids_i, tg_i, tmp_path, position_ids=pos_i)
        assert abs(loss_i - ref_loss) < 1e-5 * max(1.0, ref_loss), (i, loss_i, ref_loss)
        for k, g in grads_i.items():
            assert rel_err(g, ref_grads[k]) < 1e-4, f"sample {i}, {k}: grad rel err {rel_err(g, ref_grads[k])}"
        k_i = int((y >= 0).sum())
        hf_all, n_all = hf_all + ref_loss * k_i, n_all + k_i
    assert abs(p_loss - hf_all / n_all) < 1e-5 * max(1.0, p_loss)


def test_bad_position_ids_are_bad_input(tmp_path):
    cfg, model = hf_model("llama")
    write_model_dir(tmp_path / "m", json.loads(cfg.to_json_string()), {k: v.float() for k, v in model.state_dict().items()})
    ids, tg, pos, _ = packed(samples())
    pos[1, 5] += 3  # not 0 and not the previous + 1
    save_file({"input_ids": ids.int(), "targets": tg.int(), "position_ids": pos.int()}, str(tmp_path / "t.safetensors"))
    r = run("forward", "--model", tmp_path / "m", "--tokens", tmp_path / "t.safetensors", "--out",
            tmp_path / "o.safetensors", check=False)
    assert r.returncode == 2 and "position ids: row 1" in r.stderr, r.stderr
