#!/usr/bin/env python3
"""The data of the selection experiment (recipes/sft-selection/run.sh), from ../shared/data:

  pool.jsonl       the instruction pool: English (Alpaca 5k, LIMA) and Chinese (Alpaca translation,
                   BELLE, OpenAssistant zh, COIG-CQIA zhihu/wiki/ruozhiba/douban) samples, Alpaca
                   fields plus id, lang, source
  heldout.jsonl    held-out samples of the same sources, disjoint from the pool (by instruction text)
  math.jsonl       GSM8K train question -> worked solution (ability "math"), for the math share
  exam.jsonl       Chinese exam-style multiple choice with explanations (ability "exam"): COIG-CQIA
                   traditional-culture and human-value choice questions, TAL-SCQ5K Chinese train
  gsm8k_test.jsonl GSM8K test question -> solution, to measure the response loss on math
  evaldata/        the eval tasks' files for a fixed subset of subjects (symlinks): mmlu/, cmmlu/, gsm8k/

Every training sample whose text contains one of the evaluation questions used (the MMLU/CMMLU
subjects' test and dev questions, the GSM8K test questions) is dropped and counted.
Usage: make_data.py SHARED OUT POOL_PER_LANG HELDOUT_PER_LANG N_MATH N_EXAM N_GSM_TEST MMLU_SUBJECTS CMMLU_SUBJECTS
(subjects comma-separated). Prints a summary; deterministic (seed 0).
"""
import csv
import glob
import json
import os
import random
import sys

shared, out = sys.argv[1], sys.argv[2]
n_pool, n_held, n_math, n_exam, n_gsm_test = map(int, sys.argv[3:8])
mmlu_subjects, cmmlu_subjects = sys.argv[8].split(","), sys.argv[9].split(",")
sft = f"{shared}/sft"
rng = random.Random(0)


def jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]


def alpaca(items, max_chars):
    """Single-turn Alpaca records whose text is shorter than max_chars and whose answer is not empty."""
    keep = []
    for s in items:
        if s.get("history") or not str(s.get("output", "")).strip() or not str(s.get("instruction", "")).strip():
            continue
        rec = {"instruction": s["instruction"], "input": s.get("input", "") or "", "output": s["output"]}
        if len(rec["instruction"]) + len(rec["input"]) + len(rec["output"]) < max_chars:
            keep.append(rec)
    return keep


# Each source: (name, language, records, share of the language's pool).
coig = lambda *subs: [s for sub in subs for p in sorted(glob.glob(f"{sft}/coig_cqia/{sub}/*.jsonl")) for s in jsonl(p)]
sources = [
    ("alpaca_en", "en", alpaca(json.load(open(f"{sft}/alpaca_en_5k.json", encoding="utf-8")), 800), 0.85),
    ("lima", "en", alpaca(json.load(open(f"{sft}/lima.json", encoding="utf-8")), 1000), 0.15),
    ("alpaca_zh", "zh", alpaca(json.load(open(f"{sft}/alpaca_zh_carbonz0/zh-data-part-00.json", encoding="utf-8")), 350), 0.45),
    ("belle", "zh", alpaca(jsonl(f"{sft}/belle_open_source_1k.json"), 350), 0.25),
    ("oaast_zh", "zh", alpaca(json.load(open(f"{sft}/oaast_sft_zh.json", encoding="utf-8")), 350), 0.1),
    ("coig_cqia", "zh", alpaca(coig("zhihu", "wiki", "ruozhiba", "douban"), 350), 0.2),
]

# Evaluation questions that no training sample may contain (first 40 characters, whitespace dropped).
def key(text):
    return "".join(str(text).split())[:40]


eval_keys = set()
for subj in mmlu_subjects:
    for split in ("test", "dev"):
        for row in csv.reader(open(f"{shared}/eval/mmlu/{split}/{subj}_{split}.csv", encoding="utf-8")):
            eval_keys.add(key(row[0]))
for subj in cmmlu_subjects:
    for split in ("test", "dev"):
        for row in csv.DictReader(open(f"{shared}/eval/cmmlu/{split}/{subj}.csv", encoding="utf-8")):
            eval_keys.add(key(row["Question"]))
gsm_test = jsonl(f"{shared}/eval/gsm8k/test.jsonl")
for s in gsm_test:
    eval_keys.add(key(s["question"]))
eval_keys.discard("")
contaminated = 0


def clean(rec):
    global contaminated
    text = "".join((rec["instruction"] + rec["input"] + rec["output"]).split())
    if any(k in text for k in eval_keys if len(k) >= 15):
        contaminated += 1
        return False
    return True


pool, held, seen = [], [], set()
for lang in ("en", "zh"):
    for name, l, recs, share in sources:
        if l != lang:
            continue
        rng.shuffle(recs)
        want_pool, want_held = round(share * n_pool), round(share * n_held)
        k = 0
        for r in recs:
            instr = " ".join((r["instruction"] + " " + r["input"]).split())
            if instr in seen or not clean(r):  # repeated instructions stay on one side of the split
                continue
            seen.add(instr)
            dest = held if k < want_held else pool
            if k >= want_held + want_pool:
                break
            dest.append({"id": f"{name}-{k}", "lang": lang, "source": name, **r})
            k += 1


def write(name, recs):
    with open(f"{out}/{name}", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)


write("pool.jsonl", pool)
write("heldout.jsonl", held)

# The math share: GSM8K train solutions (the eval's few-shot source: disjoint from its test items).
gsm_train = jsonl(f"{shared}/eval/gsm8k/train.jsonl")
rng.shuffle(gsm_train)
math = [{"id": f"gsm8k-{k}", "lang": "en", "source": "gsm8k_train", "ability": "math", "instruction": s["question"],
         "input": "", "output": s["answer"]} for k, s in enumerate(gsm_train[:n_math])]
write("math.jsonl", math)

# The exam share: Chinese multiple-choice questions with worked answers, none from an eval set.
exam = []
for s in coig("chinese_traditional", "human_value"):
    if "选择" in json.dumps(s.get("task_type", ""), ensure_ascii=False):
        exam += alpaca([s], 600)
for s in jsonl(f"{sft}/tal_scq5k/ch_single_choice_train_3K.jsonl"):
    opts = "\n".join(f"{o[0]['aoVal']}. {o[0]['content'].strip()}" for o in s["answer_option_list"])
    analysis = "".join(s.get("answer_analysis") or []).strip()
    rec = {"instruction": s["problem"].strip() + "\n" + opts, "input": "",
           "output": (analysis + "\n" if analysis else "") + "答案：" + s["answer_value"]}
    if len(rec["instruction"]) + len(rec["output"]) < 600:
        exam.append(rec)
rng.shuffle(exam)
exam = [r for r in exam if clean(r)][:n_exam]
write("exam.jsonl", [{"id": f"exam-{k}", "lang": "zh", "source": "exam", "ability": "exam", **r}
                     for k, r in enumerate(exam)])

write("gsm8k_test.jsonl", [{"id": f"gsm8k-test-{k}", "lang": "en", "instruction": s["question"], "input": "",
                            "output": s["answer"]} for k, s in enumerate(gsm_test[:n_gsm_test])])

# The eval subset: the chosen subjects' files, linked (the full sets are used by `eval` as they are).
ev = f"{out}/evaldata"
for task, subjects, pat in (("mmlu", mmlu_subjects, "{s}_{split}.csv"), ("cmmlu", cmmlu_subjects, "{s}.csv")):
    for split in ("test", "dev"):
        os.makedirs(f"{ev}/{task}/{split}", exist_ok=True)
        for s in subjects:
            dst = f"{ev}/{task}/{split}/" + pat.format(s=s, split=split)
            if not os.path.lexists(dst):
                os.symlink(f"{shared}/eval/{task}/{split}/" + pat.format(s=s, split=split), dst)
if not os.path.lexists(f"{ev}/gsm8k"):
    os.symlink(f"{shared}/eval/gsm8k", f"{ev}/gsm8k")

by_src = {}
for r in pool:
    by_src[r["source"]] = by_src.get(r["source"], 0) + 1
print(f"pool {len(pool)} {by_src}, held out {len(held)}, math {len(math)}, exam {len(exam)}, "
      f"gsm8k test {min(len(gsm_test), n_gsm_test)}; dropped for containing an eval question: {contaminated}")
