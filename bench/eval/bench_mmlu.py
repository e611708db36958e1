"""MMLU 5-shot on CPU: `mindllm eval` vs lm-evaluation-harness + transformers (HF backend, fp32),
same model directory, same items, same thread count. Prints items/s of both, the ratio, and
checks that every prediction agrees.

  python3 bench/eval/bench_mmlu.py [--subjects 4] [--limit 20] [--threads 2] [--hidden 256 --layers 4]
  python3 bench/eval/bench_mmlu.py --model path/to/hf_model_dir   # an existing llama/gpt2/gpt_neo dir
"""
import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests" / "reference"))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_model(d, hidden, layers):
    import torch
    import transformers
    from mindllm_ref import write_model_dir
    cfg = transformers.LlamaConfig(vocab_size=50257, hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 8 * 8,
                                   num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                                   max_position_embeddings=2048, tie_word_embeddings=True,
                                   bos_token_id=50256, eos_token_id=50256)
    torch.manual_seed(0)
    m = transformers.AutoModelForCausalLM.from_config(cfg).float()
    sd = {k: v for k, v in m.state_dict().items() if k != "lm_head.weight"}
    write_model_dir(d, json.loads(cfg.to_json_string()), sd)
    transformers.GPT2TokenizerFast.from_pretrained(str(SHARED / "tokenizers/gpt2")).save_pretrained(str(d))
    return sum(v.numel() for v in sd.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="mindllm --batch")
    ap.add_argument("--hf-batch", type=int, default=8, help="lm-eval batch_size")
    ap.add_argument("--mindllm", default=os.environ.get("MINDLLM_BIN", str(REPO / "build" / "mindllm")))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    model = Path(a.model) if a.model else tmp / "model"
    nparams = None if a.model else make_model(model, a.hidden, a.layers)
    subjects = sorted(p.name[:-9] for p in (SHARED / "eval/mmlu/test").glob("*_test.csv"))[: a.subjects]
    data, tasks = tmp / "data", tmp / "tasks"
    for split in ("test", "dev"):
        (data / f"mmlu/{split}").mkdir(parents=True)
    tasks.mkdir()
    names = ["question", "A", "B", "C", "D", "answer"]
    for s in subjects:
        for split in ("test", "dev"):
            src = SHARED / f"eval/mmlu/{split}/{s}_{split}.csv"
            (data / f"mmlu/{split}/{src.name}").symlink_to(src)
            with open(src, newline="", encoding="utf-8") as f, open(tmp / f"{s}_{split}.jsonl", "w") as o:
                for r in csv.reader(f):
                    o.write(json.dumps(dict(zip(names, r))) + "\n")
        (tasks / f"mmlu_{s}.yaml").write_text(textwrap.dedent(f"""\
            task: mmlu_{s}
            dataset_path: json
            dataset_kwargs:
              data_files: {{test: {tmp}/{s}_test.jsonl, dev: {tmp}/{s}_dev.jsonl}}
            test_split: test
            fewshot_split: dev
            fewshot_config: {{sampler: first_n}}
            output_type: multiple_choice
            description: "The following are multiple choice questions (with answers) about {s.replace('_', ' ')}.\\n\\n"
            doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{A}}}}\\nB. {{{{B}}}}\\nC. {{{{C}}}}\\nD. {{{{D}}}}\\nAnswer:"
            doc_to_choice: ["A", "B", "C", "D"]
            doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer)}}}}"
            metric_list: [{{metric: acc, aggregation: mean, higher_is_better: true}}]
            """))
    n_items = 0
    # mindllm (load time excluded: results.json's total_evaluation_time_seconds)
    out = tmp / "mindllm.json"
    t = time.time()
    subprocess.run([a.mindllm, "eval", "--model", model, "--tasks", "mmlu", "--data-dir", data, "--limit",
                    str(a.limit), "--shots", "5", "--threads", str(a.threads), "--batch", str(a.batch), "--quiet",
                    "--out", out, "--log-samples", tmp / "mindllm.samples.jsonl"], check=True,
                   stdout=subprocess.DEVNULL)
    wall_m = time.time() - t
    res = json.loads(out.read_text())
    secs_m = res["total_evaluation_time_seconds"]
    n_items = res["items"]
    mine = {}
    for line in open(tmp / "mindllm.samples.jsonl"):
        s = json.loads(line)
        mine[(s["task"], s["doc_id"])] = s["pred"]
    # lm-eval + transformers, model loaded before the clock starts
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    lm = HFLM(pretrained=str(model), dtype="float32", batch_size=a.hf_batch, device="cpu")
    tm = TaskManager(include_path=str(tasks), include_defaults=False)
    t = time.time()
    ref = simple_evaluate(model=lm, tasks=[f"mmlu_{s}" for s in subjects], num_fewshot=5, limit=a.limit,
                          log_samples=True, task_manager=tm, bootstrap_iters=0)
    secs_r = time.time() - t
    same = total = 0
    for name, samples in ref["samples"].items():
        for s in samples:
            total += 1
            same += int(np.argmax([float(r[0][0]) for r in s["resps"]])) == mine[(name, s["doc_id"])]
    cpu = platform.processor() or "cpu"
    try:
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except Exception:
        pass
    print(f"MMLU 5-shot, {len(subjects)} subjects x {a.limit} items = {n_items} items; model "
          f"{model if a.model else f'llama {a.layers}x{a.hidden}, {nparams / 1e6:.1f}M params, vocab 50257'}; "
          f"{a.threads} threads; {cpu}")
    print(f"  mindllm eval        : {n_items / secs_m:8.2f} items/s  ({secs_m:.2f} s eval, {wall_m:.2f} s wall with load)")
    print(f"  lm-eval + transformers: {total / secs_r:8.2f} items/s  ({secs_r:.2f} s)")
    print(f"  speedup: {secs_r / secs_m * n_items / total:.2f}x ; same prediction on {same}/{total} items")


if __name__ == "__main__":
    main()
