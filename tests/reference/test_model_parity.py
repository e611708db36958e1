"""Parity of mindllm's model with transformers (gpt2, gpt_neo with local layers, llama with
SwiGLU/GeGLU/GQA/biases) and with a float64 PyTorch reference (DeepNorm, partial rotary):
same weights and batch give the same logits, loss and gradients."""
import json

import pytest
import torch
import transformers

from mindllm_ref import (llama_reference_logits, mean_ce, mindllm_forward, randomize_, rel_err, run,
                         write_model_dir)

torch.manual_seed(0)
B, T = 2, 24

HF_CASES = {
    "gpt2": transformers.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                    tie_word_embeddings=True),
    "gpt_neo_local": transformers.GPTNeoConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4,
                                               max_position_embeddings=64, window_size=5, intermediate_size=72,
                                               attention_types=[[["global", "local"], 1]],
                                               tie_word_embeddings=False),
    "llama_swiglu_gqa": transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=56,
                                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                 max_position_embeddings=64, rms_norm_eps=1e-5),
    "llama_geglu_tied": transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=56,
                                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                                 hidden_act="gelu", tie_word_embeddings=True,
                                                 max_position_embeddings=64, rms_norm_eps=1e-5),
    "llama_gelu_tanh_bias_mqa": transformers.LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=40,
                                                         num_hidden_layers=2, num_attention_heads=4,
                                                         num_key_value_heads=1, hidden_act="gelu_pytorch_tanh",
                                                         attention_bias=True, mlp_bias=True,
                                                         max_position_embeddings=64, rms_norm_eps=1e-5),
}


def batch(vocab, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    targets = torch.randint(0, vocab, (B, T), generator=g)
    targets[0, :3] = -1  # ignored positions (loss masks)
    return ids, targets


@pytest.mark.parametrize("name", list(HF_CASES))
def test_logits_loss_grads_match_transformers(name, tmp_path):
    cfg = HF_CASES[name]
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg).double(), seed=len(name)).eval()
    model = model.float().double()  # the float32-rounded weights that the checkpoint holds
    ids, targets = batch(cfg.vocab_size)
    out = model(input_ids=ids)
    ref_logits = out.logits
    ref_loss = mean_ce(ref_logits, targets)
    ref_loss.backward()
    sd = {k: v.float() for k, v in model.state_dict().items() 
          if not k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias", "attention.masked_bias"))}
    write_model_dir(tmp_path / "f32", json.loads(cfg.to_json_string()), sd)

    logits, loss, grads = mindllm_forward(tmp_path / "f32", ids, targets, tmp_path)
    assert rel_err(logits, ref_logits) < 2e-5, f"logits rel err {rel_err(logits, ref_logits)}"
    assert abs(loss - ref_loss.item()) < 1e-5 * max(1.0, abs(ref_loss.item()))
    params = dict(model.named_parameters())
    assert grads, "no gradients written"
    worst = 0.0
    for pname, g in grads.items():
        ref = params[pname].grad
        assert ref is not None, pname
        worst = max(worst, rel_err(g, ref))
        assert rel_err(g, ref) < 1e-4, f"{pname}: grad rel err {rel_err(g, ref)}"
    print(f"{name}: logits rel err {rel_err(logits, ref_logits):.1e}, loss abs err {abs(loss - ref_loss.item()):.1e}, "
          f"worst grad rel err {worst:.1e}")
    # tied heads: every named parameter of transformers got a gradient from mindllm
    missing = [n for n in params if n not in grads and not (n == "lm_head.weight" and cfg.tie_word_embeddings)]
    assert not missing, missing


REF_CASES = {
    "llama_deepnorm_geglu": dict(hidden_act="gelu", mindllm_deepnorm=True, tie_word_embeddings=False),
    "llama_deepnorm_swiglu_gqa_tied": dict(hidden_act="silu", mindllm_deepnorm=True, num_key_value_heads=2,
                                           tie_word_embeddings=True),
    "llama_partial_rotary": dict(hidden_act="silu", mindllm_partial_rotary_factor=0.5),
    "llama_prenorm_reference_selfcheck": dict(hidden_act="silu"),
}


@pytest.mark.parametrize("name", list(REF_CASES))
def test_logits_loss_grads_match_pytorch_reference(name, tmp_path):
    cfg = dict(model_type="llama", vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5,
               rope_theta=10000.0)
    cfg.update(REF_CASES[name])
    # Parameter names and shapes from transformers' llama (the same layout mindllm writes).
    hf_cfg = {k: v for k, v in cfg.items() if not k.startswith("mindllm_")}
    hf = randomize_(transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf_cfg)).double(), seed=7)
    W = {k: v.detach().float().double().requires_grad_(True) for k, v in hf.state_dict().items()}
    if cfg.get("tie_word_embeddings"):
        W.pop("lm_head.weight", None)
    write_model_dir(tmp_path / "m", cfg, {k: v.detach() for k, v in W.items()})
    ids, targets = batch(cfg["vocab_size"], seed=3)
    ref_logits = llama_reference_logits(W, cfg, ids)
    ref_loss = mean_ce(ref_logits, targets)
    ref_loss.backward()
    if name == "llama_prenorm_reference_selfcheck":  # the reference itself agrees with transformers
        hf.float().double()
        assert rel_err(hf(input_ids=ids).logits, ref_logits) < 1e-6
    logits, loss, grads = mindllm_forward(tmp_path / "m", ids, targets, tmp_path)
    assert rel_err(logits, ref_logits) < 2e-5, f"logits rel err {rel_err(logits, ref_logits)}"
    assert abs(loss - ref_loss.item()) < 1e-5 * max(1.0, abs(ref_loss.item()))
    worst = max(rel_err(g, W[pname].grad) for pname, g in grads.items())
    assert worst < 1e-4, f"worst grad rel err {worst}"
    print(f"{name}: logits rel err {rel_err(logits, ref_logits):.1e}, loss abs err {abs(loss - ref_loss.item()):.1e}, "
          f"worst grad rel err {worst:.1e}")


def _bf16_matmuls(model):
    """Makes every matrix multiply of `model` (nn.Linear, GPT-2's Conv1D) take bf16-rounded
    operands, computed in the model's own dtype: the arithmetic of mindllm's --precision bf16
    (bf16 operands, exact products, wide accumulation)."""
    def bf(t):
        return t.to(torch.bfloat16).to(t.dtype)

    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.forward = (lambda m: lambda x: torch.nn.functional.linear(bf(x), bf(m.weight), m.bias))(m)
        elif type(m).__name__ == "Conv1D":
            m.forward = (lambda m: lambda x: torch.addmm(m.bias, bf(x).reshape(-1, x.size(-1)),
                                                         bf(m.weight)).view(*x.shape[:-1], m.nf))(m)
    return model


@pytest.mark.parametrize("name", ["gpt2", "gpt_neo_local", "llama_swiglu_gqa", "llama_gelu_tanh_bias_mqa"])
def test_bf16_matmuls_match_rounded_reference(name, tmp_path):
    """--precision bf16: the logits equal a float64 model whose matrix multiplies take bf16-rounded
    operands (up to rare rounding-boundary flips), and are measurably different from fp32; the
    gradients (mindllm also rounds the incoming gradient of each GEMM) agree to bf16 precision."""
    cfg = HF_CASES[name]
    cfg._attn_implementation = "eager"
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg).double(), seed=len(name)).eval()
    model = model.float().double()
    ids, targets = batch(cfg.vocab_size)
    sd = {k: v.float() for k, v in model.state_dict().items()
          if not k.endswith((".attn.bias", ".attn.masked_bias", "attention.bias", "attention.masked_bias"))}
    write_model_dir(tmp_path / "f32", json.loads(cfg.to_json_string()), sd)
    with torch.no_grad():
        fp_logits = model(input_ids=ids).logits
    _bf16_matmuls(model)
    ref_logits = model(input_ids=ids).logits
    ref_loss = mean_ce(ref_logits, targets)
    ref_loss.backward()
    bf16 = next(l for l in run("--version").stdout.splitlines() if l.startswith("bf16 matmul"))
    if "unavailable" in bf16:
        pytest.skip(bf16)
    logits, loss, grads = mindllm_forward(tmp_path / "f32", ids, targets, tmp_path, extra=["--precision", "bf16"])
    # An fp32 activation a hair away from a bf16 rounding boundary can round the other way than
    # its float64 twin: such flips move a few logits by ~1e-3. Typical elements (90th
    # percentile) must agree to fp32 precision, and the largest difference stay at bf16 level.
    def p90(a, b):
        return float((a - b).abs().flatten().quantile(0.9) / b.abs().max())

    err, fp_err, worst_logit = p90(logits, ref_logits), p90(logits, fp_logits), rel_err(logits, ref_logits)
    print(f"{name}: bf16 logits 90th-percentile rel err {err:.1e} (vs the fp32 model: {fp_err:.1e}), "
          f"max {worst_logit:.1e}, loss abs err {abs(loss - ref_loss.item()):.1e}")
    assert err < 1e-5, f"logits rel err {err}"
    assert fp_err > 30 * err, f"bf16 logits are not distinguishable from fp32 ({fp_err} vs {err})"
    assert worst_logit < 1e-2
    assert abs(loss - ref_loss.item()) < 1e-3 * max(1.0, abs(ref_loss.item()))
    params = dict(model.named_parameters())
    worst = max(rel_err(g, params[p].grad) for p, g in grads.items())
    print(f"{name}: worst grad rel err {worst:.1e}")
    assert worst < 3e-2, f"worst grad rel err {worst}"
