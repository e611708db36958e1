"""`mindllm eval` against lm-evaluation-harness (PyPI lm-eval, Hugging Face backend) on the same
model directories: a tiny random LLaMA-style model and a GPT-2-style model trained for ~40 s by
`mindllm train` on ../shared corpora. lm-eval reads local copies of the ../shared benchmark
subsets through task configs that mirror its official ones (it cannot download here). Every
item must get the same prediction and the same log-likelihoods (float rounding), and the
aggregate metrics must agree."""
import csv
import json
import math
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mindllm_ref import MINDLLM, randomize_, run, write_model_dir, write_shard
from shared_data import SHARED, shared_data

transformers = pytest.importorskip("transformers")
lm_eval = pytest.importorskip("lm_eval")

EVAL = SHARED / "eval"
MMLU_SUBJECTS = ["abstract_algebra", "college_biology", "high_school_us_history"]
CMMLU_SUBJECTS = ["agronomy", "chinese_history"]
LIMIT = 8
GEN_LIMIT = 4
MAX_GEN = 24
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _gpt2_tokenizer(out):
    tok = transformers.GPT2TokenizerFast.from_pretrained(str(shared_data("tokenizers", "gpt2")))
    tok.save_pretrained(str(out))
    return tok


def _tiny_llama(d):
    cfg = transformers.LlamaConfig(vocab_size=50257, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                                   tie_word_embeddings=False, bos_token_id=50256, eos_token_id=50256)
    model = randomize_(transformers.AutoModelForCausalLM.from_config(cfg), seed=3, scale=0.3).float()
    write_model_dir(d, json.loads(cfg.to_json_string()), {k: v for k, v in model.state_dict().items()})
    _gpt2_tokenizer(d)
    return d


def _trained_gpt2(root):
    """A GPT-2-style model trained by mindllm for ~40 s on English + Chinese text."""
    tok = _gpt2_tokenizer(root / "tok")
    texts = [shared_data("corpus", "en", "tinyshakespeare.txt").read_text()[:400_000],
             sorted(shared_data("corpus", "zh").glob("*.txt"))[0].read_text()[:100_000]]
    ids = []
    for t in texts:
        ids += tok.encode(t) + [50256]
    data = root / "shards"
    data.mkdir()
    cut = len(ids) * 95 // 100
    write_shard(data / "train-000.bin", ids[:cut], 50257)
    write_shard(data / "val-000.bin", ids[cut:], 50257)
    cfg = {"model_type": "gpt2", "vocab_size": 50257, "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 2048,
           "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256}
    (root / "cfg.json").write_text(json.dumps(cfg))
    run("train", "--model", root / "cfg.json", "--data", data, "--out", root / "run", "--steps", 30, "--batch", 4,
        "--seq", 128, "--lr", 3e-3, "--warmup", 5, "--tokenizer", root / "tok/tokenizer.json", "--eval-batches", 2,
        "--threads", 2)
    ck = root / "run/ckpt" / (root / "run/ckpt/latest").read_text().strip()
    for f in ("tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"):
        if (root / "tok" / f).exists():
            shutil.copy(root / "tok" / f, ck / f)
    return ck


def _jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _csv_rows(path, names=None):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if names is None:
        names, rows = rows[0], rows[1:]
        names = [n or "_index" for n in names]
    return [dict(zip(names, r)) for r in rows]


MC_METRICS = """metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    shared_data("eval")  # the tests that use the benchmark subsets skip where they are absent
    root = tmp_path_factory.mktemp("evalparity")
    data, tasks = root / "data", root / "tasks"
    tasks.mkdir()
    # mindllm reads the official layouts (subsets); lm-eval reads the same items as local jsonl.
    (data / "mmlu/test").mkdir(parents=True), (data / "mmlu/dev").mkdir(parents=True)
    (data / "cmmlu/test").mkdir(parents=True), (data / "cmmlu/dev").mkdir(parents=True)
    names = ["question", "A", "B", "C", "D", "answer"]
    for s in MMLU_SUBJECTS:
        for split in ("test", "dev"):
            src = EVAL / f"mmlu/{split}/{s}_{split}.csv"
            shutil.copy(src, data / f"mmlu/{split}/{s}_{split}.csv")
            _jsonl(root / f"mmlu_{s}_{split}.jsonl", _csv_rows(src, names))
        (tasks / f"mmlu_{s}.yaml").write_text(textwrap.dedent(f"""\
            task: mmlu_{s}
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {root}/mmlu_{s}_test.jsonl
                dev: {root}/mmlu_{s}_dev.jsonl
            test_split: test
            fewshot_split: dev
            fewshot_config:
              sampler: first_n
            output_type: multiple_choice
            description: "The following are multiple choice questions (with answers) about {s.replace('_', ' ')}.\\n\\n"
            doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{A}}}}\\nB. {{{{B}}}}\\nC. {{{{C}}}}\\nD. {{{{D}}}}\\nAnswer:"
            doc_to_choice: ["A", "B", "C", "D"]
            doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer)}}}}"
            """) + MC_METRICS)
    import yaml
    lm_tasks = Path(lm_eval.__file__).parent / "tasks"
    for s in CMMLU_SUBJECTS:
        for split in ("test", "dev"):
            src = EVAL / f"cmmlu/{split}/{s}.csv"
            shutil.copy(src, data / f"cmmlu/{split}/{s}.csv")
            _jsonl(root / f"cmmlu_{s}_{split}.jsonl", _csv_rows(src))
        desc = yaml.safe_load(open(lm_tasks / f"cmmlu/cmmlu_{s}.yaml"))["description"]
        (tasks / f"cmmlu_{s}.yaml").write_text(textwrap.dedent(f"""\
            task: cmmlu_{s}
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {root}/cmmlu_{s}_test.jsonl
                dev: {root}/cmmlu_{s}_dev.jsonl
            test_split: test
            fewshot_split: dev
            fewshot_config:
              sampler: first_n
            output_type: multiple_choice
            description: {json.dumps(desc, ensure_ascii=False)}
            doc_to_text: "{{{{Question.strip()}}}}\\nA. {{{{A}}}}\\nB. {{{{B}}}}\\nC. {{{{C}}}}\\nD. {{{{D}}}}\\n答案："
            doc_to_choice: ["A", "B", "C", "D"]
            doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(Answer)}}}}"
            """) + MC_METRICS)
    # HellaSwag (the preprocessed ctx variant), ARC (generic query/choices/gold), GSM8K.
    (data / "hellaswag").mkdir(parents=True)
    hs = [json.loads(l) for l in open(EVAL / "hellaswag/hellaswag_val.jsonl", encoding="utf-8")][:LIMIT]
    _jsonl(data / "hellaswag/hellaswag_val.jsonl", hs)
    (tasks / "hs_utils.py").write_text(textwrap.dedent("""\
        import re
        def preprocess(text):
            text = text.strip().replace(" [title]", ". ")
            text = re.sub("\\\\[.*?\\\\]", "", text)
            return text.replace("  ", " ")
        def process_docs(dataset):
            def one(doc):
                return {"query": preprocess(doc["activity_label"] + ": " + doc["ctx"]),
                        "choices": [preprocess(e) for e in doc["endings"]], "gold": int(doc["label"])}
            return dataset.map(one)
        """))
    (tasks / "hellaswag.yaml").write_text(textwrap.dedent(f"""\
        task: hellaswag
        dataset_path: json
        dataset_kwargs:
          data_files:
            validation: {data}/hellaswag/hellaswag_val.jsonl
        validation_split: validation
        process_docs: !function hs_utils.process_docs
        output_type: multiple_choice
        doc_to_text: "{{{{query}}}}"
        doc_to_target: "{{{{gold}}}}"
        doc_to_choice: "choices"
        """) + MC_METRICS)
    (data / "arc").mkdir(parents=True)
    arc = [json.loads(l) for l in open(EVAL / "arc/arc_easy.jsonl", encoding="utf-8")][:LIMIT]
    _jsonl(data / "arc/arc_easy.jsonl", arc)
    (tasks / "arc_easy.yaml").write_text(textwrap.dedent(f"""\
        task: arc_easy
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}/arc/arc_easy.jsonl
        test_split: test
        output_type: multiple_choice
        doc_to_text: "{{{{query}}}}\\nAnswer:"
        doc_to_target: "{{{{gold}}}}"
        doc_to_choice: "{{{{choices}}}}"
        """) + MC_METRICS)
    (data / "gsm8k").mkdir(parents=True)
    shutil.copy(EVAL / "gsm8k/train.jsonl", data / "gsm8k/train.jsonl")
    shutil.copy(EVAL / "gsm8k/test.jsonl", data / "gsm8k/test.jsonl")
    gsm = yaml.safe_load(open(lm_tasks / "gsm8k/gsm8k.yaml"))
    (tasks / "gsm8k.yaml").write_text(textwrap.dedent(f"""\
        task: gsm8k
        dataset_path: json
        dataset_kwargs:
          data_files:
            train: {data}/gsm8k/train.jsonl
            test: {data}/gsm8k/test.jsonl
        output_type: generate_until
        training_split: train
        fewshot_split: train
        test_split: test
        num_fewshot: 5
        doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
        doc_to_target: "{{{{answer}}}}"
        generation_kwargs:
          until: {json.dumps(gsm["generation_kwargs"]["until"])}
          do_sample: false
          temperature: 0.0
          max_gen_toks: {MAX_GEN}
        """) + "metric_list: " + json.dumps(gsm["metric_list"]) + "\nfilter_list: " + json.dumps(gsm["filter_list"]) + "\n")
    return root, data, tasks, _Models(root)


class _Models(dict):
    """Model directories, made on first use (training takes ~1 min of CPU)."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, name):
        self[name] = _tiny_llama(self.root / "llama") if name == "tiny_random_llama" else _trained_gpt2(self.root / "gpt2")
        return self[name]


def _lm_eval(model_dir, tasks_dir, task_names, shots, limit):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    tm = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    return simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=task_names,
                           num_fewshot=shots, limit=limit, batch_size=4, log_samples=True, task_manager=tm,
                           device="cpu", bootstrap_iters=0)


def _mindllm(model_dir, data, task, shots, limit, tmp, extra=()):
    out, samples = tmp / f"{task}.json", tmp / f"{task}.samples.jsonl"
    args = ["eval", "--model", model_dir, "--tasks", task, "--data-dir", data, "--limit", limit, "--out", out,
            "--log-samples", samples, "--threads", 2, "--quiet", *extra]
    if shots is not None:
        args += ["--shots", shots]
    run(*args)
    res = json.loads(out.read_text())
    by_task = {}
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        by_task.setdefault(s["task"], {})[s["doc_id"]] = s
    return res, by_task


def _compare_mc(ref, mine, mine_results, names):
    compared = 0
    for name in names:
        ref_samples = {s["doc_id"]: s for s in ref["samples"][name]}
        assert set(ref_samples) == set(mine[name]), name
        for doc_id, rs in ref_samples.items():
            ms = mine[name][doc_id]
            ref_ll = [float(r[0][0]) for r in rs["resps"]]
            my_ll = [x[0] for x in ms["scores"]]
            assert np.allclose(my_ll, ref_ll, atol=2e-3, rtol=1e-4), (name, doc_id, my_ll, ref_ll)
            assert int(np.argmax(ref_ll)) == ms["pred"], (name, doc_id, my_ll, ref_ll)
            assert rs["acc"] == ms["acc"] and rs["acc_norm"] == ms["acc_norm"], (name, doc_id)
            compared += 1
        for m in [m for m in ("acc", "acc_norm") if f"{m},none" in mine_results[name]]:
            a, b = ref["results"][name][f"{m},none"], mine_results[name][f"{m},none"]
            assert abs(a - b) < 1e-9, (name, m, a, b)
            sa, sb = ref["results"][name][f"{m}_stderr,none"], mine_results[name][f"{m}_stderr,none"]
            if isinstance(sa, float) and isinstance(sb, float):
                assert abs(sa - sb) < 1e-9, (name, m, sa, sb)
    return compared


@pytest.mark.parametrize("model_name", ["tiny_random_llama", "trained_gpt2"])
@pytest.mark.parametrize("task,shots,names", [
    ("mmlu", 5, [f"mmlu_{s}" for s in MMLU_SUBJECTS]),
    ("cmmlu", 5, [f"cmmlu_{s}" for s in CMMLU_SUBJECTS]),
    ("hellaswag", 0, ["hellaswag"]),
    ("arc_easy", 0, ["arc_easy"]),
])
def test_multiple_choice_matches_lm_eval(setup, task, shots, names, model_name, tmp_path):
    root, data, tasks, models = setup
    model = models[model_name]
    ref = _lm_eval(model, tasks, names, shots, LIMIT)
    res, samples = _mindllm(model, data, task, shots, LIMIT, tmp_path)
    n = _compare_mc(ref, samples, res["results"], names)
    assert n == LIMIT * len(names)
    print(f"{model_name} {task}: {n} items, identical predictions")
    if len(names) > 1:  # the group: size-weighted mean, as lm-eval's weight_by_size groups
        accs = [res["results"][x]["acc,none"] for x in names]
        sizes = [res["n-samples"][x]["effective"] for x in names]
        assert abs(res["results"][task if task != "ceval" else "ceval-valid"]["acc,none"] -
                   sum(a * s for a, s in zip(accs, sizes)) / sum(sizes)) < 1e-12


@pytest.mark.parametrize("model_name", ["tiny_random_llama", "trained_gpt2"])
def test_gsm8k_generation_matches_lm_eval(setup, model_name, tmp_path):
    root, data, tasks, models = setup
    model = models[model_name]
    ref = _lm_eval(model, tasks, ["gsm8k"], 5, GEN_LIMIT)
    res, samples = _mindllm(model, data, "gsm8k", 5, GEN_LIMIT, tmp_path, ["--max-gen-toks", MAX_GEN])
    compared = 0
    for rs in ref["samples"]["gsm8k"]:
        ms = samples["gsm8k"][rs["doc_id"]]
        # the same prompt: lm-eval's randomly drawn shots (seed 1234), reproduced by mindllm
        assert ms["prompt"] == rs["arguments"][0][0], rs["doc_id"]
        ref_text = rs["resps"][0][0]
        assert ms["resp"] == ref_text, (rs["doc_id"], ms["resp"], ref_text)
        f = rs["filter"]
        assert ms["filtered"][f]["answer"] == rs["filtered_resps"][0], (rs["doc_id"], f)
        assert ms["filtered"][f]["exact_match"] == rs["exact_match"], (rs["doc_id"], f)
        compared += 1
    assert compared == 2 * GEN_LIMIT
    for f in ("strict-match", "flexible-extract"):
        assert abs(ref["results"]["gsm8k"][f"exact_match,{f}"] - res["results"]["gsm8k"][f"exact_match,{f}"]) < 1e-12


def test_bf16_matmuls_score_like_fp32(setup, tmp_path):
    """eval --precision bf16: the same items, log-likelihoods within bf16 precision of fp32's and
    (nearly) the same predictions."""
    bf16 = next(l for l in run("--version").stdout.splitlines() if l.startswith("bf16 matmul"))
    if "unavailable" in bf16:
        pytest.skip(bf16)
    root, data, tasks, models = setup
    names = [f"mmlu_{s}" for s in MMLU_SUBJECTS]
    _, fp32 = _mindllm(models["trained_gpt2"], data, "mmlu", 5, LIMIT, tmp_path)
    (tmp_path / "bf16").mkdir()
    _, bf16 = _mindllm(models["trained_gpt2"], data, "mmlu", 5, LIMIT, tmp_path / "bf16", ["--precision", "bf16"])
    items = same = 0
    worst = 0.0
    for name in names:
        assert set(fp32[name]) == set(bf16[name])
        for doc_id, a in fp32[name].items():
            b = bf16[name][doc_id]
            la, lb = np.array([x[0] for x in a["scores"]]), np.array([x[0] for x in b["scores"]])
            worst = max(worst, float(np.abs(la - lb).max() / np.abs(la).max()))
            items += 1
            same += a["pred"] == b["pred"]
    print(f"bf16 vs fp32: {items} items, {same} same predictions, worst relative log-likelihood difference {worst:.1e}")
    assert 0 < worst < 2e-2
    assert same >= 0.8 * items


def test_bad_files_name_file_and_line(tmp_path):
    d = tmp_path / "data"
    (d / "mmlu/test").mkdir(parents=True)
    (d / "mmlu/test/x_test.csv").write_text("q1,a,b,c,d,A\nq2,a,b,c,d,Z\n")
    model = tmp_path / "m"
    write_model_dir(model, {"model_type": "gpt2", "vocab_size": 300, "n_embd": 8, "n_layer": 1, "n_head": 2,
                            "n_positions": 64}, {})
    p = run("eval", "--model", model, "--tasks", "mmlu", "--data-dir", d, "--shots", 0, check=False)
    assert p.returncode == 2 and "x_test.csv:2" in p.stderr and "'Z'" in p.stderr, p.stderr
    (d / "hellaswag").mkdir()
    (d / "hellaswag/hellaswag_val.jsonl").write_text('{"ctx": "a", "activity_label": "b", "endings": ["x"], "label": 0}\n{"ctx": \n')
    p = run("eval", "--model", model, "--tasks", "hellaswag", "--data-dir", d, check=False)
    assert p.returncode == 2 and "hellaswag_val.jsonl:2" in p.stderr, p.stderr
