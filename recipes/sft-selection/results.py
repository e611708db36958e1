#!/usr/bin/env python3
"""The results table of the selection experiment (recipes/sft-selection/run.sh): per arm, mean ± sd
over seeds of every metric; writes OUT/results.json and OUT/results.md.
Usage: results.py OUT "SEEDS" "ARMS"
"""
import json
import math
import os
import statistics
import sys

out, seeds, arms = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()


def response_ce(path):
    """Token-weighted mean response cross-entropy over a scored file, overall and per language."""
    tot = {}
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        for k in ("all", r["lang"]):
            c, n = tot.get(k, (0.0, 0))
            tot[k] = (c + r["ce_sum"], n + r["n_tokens"])
    return {k: c / n for k, (c, n) in tot.items()}


def multiple_choice(path):
    """MMLU and CMMLU accuracy, and the mean probability of the right letter among the four."""
    acc, p_gold = {"mmlu": [], "cmmlu": []}, {"mmlu": [], "cmmlu": []}
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        task = "cmmlu" if r["task"].startswith("cmmlu") else "mmlu"
        lp = [s[0] for s in r["scores"]]
        top = max(lp)
        z = sum(math.exp(x - top) for x in lp)
        acc[task].append(r["acc"])
        p_gold[task].append(math.exp(lp[r["target"]] - top) / z)
    return {**{f"{t}_acc": statistics.mean(v) for t, v in acc.items()},
            **{f"{t}_pgold": statistics.mean(v) for t, v in p_gold.items()},
            "mc_items": {t: len(v) for t, v in acc.items()}}


def gsm8k_em(path):
    if not os.path.exists(path):  # GSM_EM=0: not run
        return {"gsm8k_em_strict": math.nan, "gsm8k_em_flex": math.nan}
    res = json.load(open(path, encoding="utf-8"))["results"]["gsm8k"]
    return {"gsm8k_em_strict": res["exact_match,strict-match"], "gsm8k_em_flex": res["exact_match,flexible-extract"]}


def metrics(run):
    held = response_ce(f"{out}/runs/{run}.heldout.jsonl")
    m = {"heldout_all": held["all"], "heldout_en": held["en"], "heldout_zh": held["zh"],
         "gsm8k_test_ce": response_ce(f"{out}/runs/{run}.gsm8k-test.jsonl")["all"]}
    m.update(multiple_choice(f"{out}/runs/{run}.mc.jsonl"))
    m.update(gsm8k_em(f"{out}/runs/{run}.gsm8k.json"))
    return m


def subset_info(arm, seed):
    path = f"{out}/subsets/{arm}.jsonl" if arm != "random" else f"{out}/subsets/random-s{seed}.jsonl"
    ids = {json.loads(l)["id"] for l in open(path, encoding="utf-8")}
    scores = [json.loads(l) for l in open(f"{out}/scores-all.jsonl", encoding="utf-8")]
    kept = [s for s in scores if s["id"] in ids]
    return {"samples": len(ids), "tokens": sum(s["seq_tokens"] for s in kept),
            "base_ce": statistics.mean(s["ce_mean"] for s in kept)}


KEYS = ["heldout_all", "heldout_en", "heldout_zh", "gsm8k_test_ce", "mmlu_acc", "mmlu_pgold", "cmmlu_acc",
        "cmmlu_pgold", "gsm8k_em_flex"]
res = {"seeds": seeds, "base": metrics("base"), "arms": {}}
for arm in arms:
    runs = [metrics(f"{arm}-s{s}") for s in seeds]
    entry = {"runs": runs, **subset_info(arm, seeds[0])}
    for k in KEYS + ["gsm8k_em_strict"]:
        vals = [r[k] for r in runs]
        if any(math.isnan(v) for v in vals):  # not measured (GSM_EM=0)
            entry[f"{k}_mean"] = entry[f"{k}_sd"] = math.nan
            continue
        entry[f"{k}_mean"] = statistics.mean(vals)
        entry[f"{k}_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    entry["runtime"] = [open(f"{out}/runs/{arm}-s{s}.done").read().strip() for s in seeds]
    res["arms"][arm] = entry
json.dump(res, open(f"{out}/results.json", "w"), indent=2, allow_nan=True)

b = res["base"]
head = ("| arm | samples | tokens | base CE of subset | held-out CE (all) | en | zh | GSM8K-test CE | MMLU acc "
        "| MMLU p(gold) | CMMLU acc | CMMLU p(gold) | GSM8K EM |")
lines = [head, "|" + "---|" * (head.count("|") - 1)]
fmt = lambda k: ".3f" if ("acc" in k or "em" in k) else ".4f"
lines.append("| (base, no sft) | 0 | 0 | | " + " | ".join("–" if math.isnan(b[k]) else f"{b[k]:{fmt(k)}}" for k in KEYS)
             + " |")
for arm, e in res["arms"].items():
    cells = []
    for k in KEYS:
        cells.append("–" if math.isnan(e[k + "_mean"]) else f"{e[k + '_mean']:{fmt(k)}} ± {e[k + '_sd']:{fmt(k)}}")
    lines.append(f"| {arm} | {e['samples']} | {e['tokens']} | {e['base_ce']:.3f} | " + " | ".join(cells) + " |")
mc = b["mc_items"]
lines.append("")
lines.append(f"(mean ± sd over seeds {' '.join(seeds)}; CE in nats per response token, lower is better; "
             f"MMLU {mc['mmlu']} and CMMLU {mc['cmmlu']} items, 5-shot; p(gold): the mean probability of the "
             f"right letter among the four (chance 0.25); GSM8K EM: flexible-extract exact match.)")
# Each arm against the middle band on the held-out loss: the difference of the seed means, Welch's t and its
# two-sided p (Welch-Satterthwaite degrees of freedom; scipy.stats.ttest_ind with equal_var=False).
if "middle" in res["arms"] and len(seeds) > 1:
    from scipy import stats
    mid = [r["heldout_all"] for r in res["arms"]["middle"]["runs"]]
    lines += ["", "| arm − middle | held-out CE difference | Welch t | p |", "|---|---|---|---|"]
    for arm, e in res["arms"].items():
        if arm == "middle":
            continue
        v = [r["heldout_all"] for r in e["runs"]]
        t = stats.ttest_ind(v, mid, equal_var=False)
        e["heldout_vs_middle"] = {"diff": statistics.mean(v) - statistics.mean(mid), "welch_t": float(t.statistic),
                                  "p": float(t.pvalue)}
        lines.append(f"| {arm} | {e['heldout_vs_middle']['diff']:+.4f} | {t.statistic:+.2f} | {t.pvalue:.3f} |")
    lines.append("\n(positive: the arm's held-out loss is higher than the middle band's.)")
    json.dump(res, open(f"{out}/results.json", "w"), indent=2, allow_nan=True)
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
