"""`mindllm select score` against transformers: for each conversation, rendered with the same chat
template into the same tokens and loss mask as `sft` (test_sft_parity.python_sample), the mean and
summed cross-entropy and predictive entropy over the response tokens, the token count and the IFD
ratio equal a float64 transformers computation within 1e-5."""
import json

import pytest
import torch

from mindllm_ref import run
from test_sft_parity import CONVERSATIONS, as_records, chat_model_dir, python_sample


def reference_stats(model, hf_tok, conv):
    """(ce_sum, entropy_sum, n) over the trained tokens, in float64."""
    ids, trained = python_sample(hf_tok, conv)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids[:-1]])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    ce = ent = 0.0
    n = 0
    for t in range(1, len(ids)):
        if trained[t]:
            ce += float(-logp[t - 1, ids[t]])
            ent += float(-(logp[t - 1].exp() * logp[t - 1]).sum())
            n += 1
    return ce, ent, n


def without_instruction(conv):
    """select's IFD denominator: no system message, every user turn empty."""
    return [dict(m, content="") if m["role"] == "user" else m for m in conv if m["role"] != "system"]


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_select_scores_match_transformers(name, tmp_path):
    init, hf_tok, cfg, model = chat_model_dir(name, tmp_path, seed=5)
    model.eval()
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in as_records(CONVERSATIONS)))

    out = tmp_path / "scores.jsonl"
    run("select", "score", "--model", init, "--data", data, "--out", out, "--batch", 4, "--threads", 2, "--quiet")
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [l["id"] for l in lines] == list(range(len(CONVERSATIONS)))  # input order, ids = indices
    for line, conv in zip(lines, CONVERSATIONS):
        ce, ent, n = reference_stats(model, hf_tok, conv)
        ce0, _, n0 = reference_stats(model, hf_tok, without_instruction(conv))
        assert line["n_tokens"] == n and n0 == n
        assert abs(line["ce_mean"] - ce / n) < 1e-5, (line["ce_mean"], ce / n)
        assert abs(line["entropy_mean"] - ent / n) < 1e-5, (line["entropy_mean"], ent / n)
        assert abs(line["ce_sum"] - ce) < 1e-5 * n and abs(line["entropy_sum"] - ent) < 1e-5 * n
        assert abs(line["ifd"] - (ce / n) / (ce0 / n0)) < 1e-5, (line["ifd"], (ce / n) / (ce0 / n0))
        assert line["score"] == line["ce_mean"]
        assert line["source"] == str(data) and line["seq_tokens"] == len(python_sample(hf_tok, conv)[0])

    # --score picks the statistic; the batch size does not change the numbers beyond rounding.
    out2 = tmp_path / "entropy.jsonl"
    run("select", "score", "--model", init, "--data", data, "--out", out2, "--batch", 1, "--threads", 2, "--quiet",
        "--score", "entropy", "--no-ifd")
    for a, b in zip(lines, map(json.loads, out2.read_text().splitlines())):
        assert b["score"] == b["entropy_mean"] and b["ifd"] is None
        assert abs(a["entropy_mean"] - b["entropy_mean"]) < 1e-6
