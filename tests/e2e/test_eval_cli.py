"""`mindllm eval` as a user runs it (issue 24 items 6, 12, 13, 15, 19): bad flags, task specs and
output paths are one line and exit 2 before any work; a failed run leaves earlier outputs as they
were; the Markdown table prints huge values; AGIEval's published v1 directory runs."""
import json
from pathlib import Path

import pytest
import torch
import transformers

from mindllm_ref import run, write_model_dir

MMLU_ROW = "What is one plus one?,1,2,3,4,B\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level tokenizer trained by mindllm."""
    d = tmp_path_factory.mktemp("model")
    text = d / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 50 + "Question: Answer Choices: among\n" * 20)
    run("tokenizer", "train", "--input", text, "--vocab-size", 300, "--output", d / "tokenizer.json", "--quiet")
    cfg = transformers.GPT2Config(vocab_size=300, n_embd=16, n_layer=1, n_head=2, n_positions=256, bos_token_id=0,
                                  eos_token_id=0)
    torch.manual_seed(0)
    m = transformers.GPT2LMHeadModel(cfg)
    write_model_dir(d, json.loads(cfg.to_json_string()),
                    {k: v.clone() for k, v in m.state_dict().items() if k != "lm_head.weight"})
    return d


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    (d / "mmlu/test").mkdir(parents=True)
    (d / "mmlu/test/anatomy_test.csv").write_text(MMLU_ROW * 3)
    return d


def fails(*args):
    p = run("eval", *args, check=False)
    assert p.returncode == 2, f"exit {p.returncode}: {p.stderr}"
    msg = p.stderr.strip()
    assert "\n" not in msg and "internal error" not in msg, msg
    return msg


@pytest.mark.parametrize("flag,value", [("--limit", -1), ("--limit", 0), ("--shots", -2), ("--threads", -1),
                                        ("--max-length", 0), ("--max-gen-toks", 0), ("--batch", 0)])
def test_numeric_flags_are_checked(model, data, flag, value):
    shots = [] if flag == "--shots" else ["--shots", 0]
    msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, *shots, flag, value, "--quiet")
    # --threads is checked by the shared validator of every command (cli/validate.h)
    assert (f"{flag}: must be a finite number in [0, " if flag == "--threads" else f"{flag} must be >=") in msg, msg


def test_device_cuda_without_a_gpu_is_one_line(model, data):
    # A build without CUDA or a machine without a GPU (CI): one line naming the flag, exit 2, before
    # the model loads. (On the GPU the same run is scripts/cuda-emu-check.sh's eval stage.)
    version = run("--version").stdout
    if "cuda on" in version and "gpu (--device cuda): no GPU" not in version:
        pytest.skip("this machine has a GPU")
    msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, "--device", "cuda")
    assert "error: --device cuda: " in msg and ("no usable GPU" in msg or "no CUDA backend" in msg), msg
    msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--device", "tpu")
    assert "--device: tpu not in {cpu,cuda}" in msg, msg


def test_kv_cache_values_are_checked(model, data):
    # --kv-cache outside its set, and q8_0 for this model's heads of 8 (q8_0 blocks are 32 values):
    # one line, exit 2.
    msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, "--kv-cache", "f16")
    assert "--kv-cache" in msg, msg
    msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, "--kv-cache", "q8_0", "--quiet")
    assert "multiple of 32" in msg and "this model's is 8" in msg, msg


def test_output_paths_are_checked_before_the_work(model, data, tmp_path):
    (tmp_path / "outdir").mkdir()
    for flag in ("--out", "--log-samples"):
        msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, flag, tmp_path / "outdir")
        assert flag in msg and "directory" in msg, msg
        msg = fails("--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, flag,
                    tmp_path / "missing/r.json")
        assert "does not exist" in msg, msg


def spec(tmp_path, **over):
    s = {"task": "t", "data": "mmlu", "test": "test/*_test.csv", "format": "csv", "csv_header": False,
         "columns": ["question", "A", "B", "C", "D", "answer"], "doc_to_text": "{question}\nAnswer:",
         "doc_to_choice": {"list": ["A", "B", "C", "D"]}, "doc_to_target": {"letter": "answer"}}
    s.update(over)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(s))
    return p


@pytest.mark.parametrize("over,expect", [
    ({"num_fewshots": 5}, "unknown key 'num_fewshots'"),
    ({"generation": {"untill": ["\n"]}}, "unknown key 'generation.untill'"),
    ({"num_fewshot": "5"}, "'num_fewshot' must be an integer"),
    ({"metrics": "acc", "fewshot_seed": -1}, "'fewshot_seed' must be an integer >= 0"),
    ({"csv_header": "no"}, "'csv_header' must be true or false"),
    ({"doc_to_choice": {"list": "ABCD", "field": 3}}, "'doc_to_choice.field' must be a string or a list"),
    ({"filters": [{"name": "x", "group_select": "last"}]}, "'filters[0].group_select' must be an integer"),
    ({"exact_match": {"ignore_case": 1}}, "'exact_match.ignore_case' must be true or false"),
    ({"styles": {"opencompass": {"doc_to_txt": "x"}}}, "unknown key 'styles.opencompass.doc_to_txt'"),
])
def test_task_spec_typos_and_wrong_types(model, data, tmp_path, over, expect):
    msg = fails("--model", model, "--tasks", spec(tmp_path, **over), "--data-dir", data)
    assert expect in msg and "t.json" in msg, msg


def test_failed_run_keeps_earlier_outputs(model, data, tmp_path):
    # A generation task whose filter regex is broken fails during scoring, after the model loaded.
    bad = spec(tmp_path, output_type="generate_until", doc_to_target="{answer}", generation={"max_gen_toks": 2},
               filters=[{"name": "x", "regex": "("}])
    log, out = tmp_path / "samples.jsonl", tmp_path / "results.json"
    log.write_text("earlier samples\n")
    out.write_text("{}")
    msg = fails("--model", model, "--tasks", bad, "--data-dir", data, "--log-samples", log, "--out", out, "--quiet")
    assert "regular expression" in msg, msg
    assert log.read_text() == "earlier samples\n" and out.read_text() == "{}"
    # and a good run writes both
    run("eval", "--model", model, "--tasks", "mmlu", "--data-dir", data, "--shots", 0, "--log-samples", log,
        "--out", out, "--quiet")
    assert len(log.read_text().splitlines()) == 3 and json.loads(out.read_text())["results"]["mmlu"]["n"] == 3


def test_markdown_table_prints_huge_values(model, tmp_path):
    (tmp_path / "data/text").mkdir(parents=True)
    # one word of ~10 tokens: the word perplexity is exp(-ll) of the whole text, about e^57
    (tmp_path / "data/text/a.txt").write_text("xqzvkwjpfy")
    p = run("eval", "--model", model, "--tasks", "perplexity", "--data-dir", tmp_path / "data", "--quiet",
            "--out", tmp_path / "r.json")
    ppl = json.loads((tmp_path / "r.json").read_text())["results"]["perplexity"]["word_perplexity,none"]
    assert ppl > 1e6
    row = next(l for l in p.stdout.splitlines() if "| word_perplexity |" in l)
    cell = row.split("|")[5].strip()
    assert "e+" in cell and float(cell) == pytest.approx(ppl, rel=1e-3), row


def agieval_v1(root):
    """AGIEval as published (github.com/microsoft/AGIEval data/v1): passage, question, options,
    label, answer, other; cloze subsets with options null, multi-answer subsets with label lists."""
    v1 = root / "agieval/data/v1"
    v1.mkdir(parents=True)
    rows = {
        "lsat-ar": [{"passage": "Five people sit in a row.", "question": "Who sits first?",
                     "options": ["(A)Ann", "(B)Bo", "(C)Cy", "(D)Di", "(E)Ed"], "label": "C", "answer": None,
                     "other": None}],
        "logiqa-zh": [{"passage": None, "question": "哪一项正确？", "options": ["(A)甲", "(B)乙", "(C)丙", "(D)丁"],
                       "label": "A", "answer": None, "other": {"source": "x"}}],
        "jec-qa-kd": [{"passage": None, "question": "下列说法正确的是", "options": ["(A)一", "(B)二", "(C)三", "(D)四"],
                       "label": ["A", "C"], "answer": None, "other": None}],
        "math": [{"passage": None, "question": "What is $1+1$?", "options": None, "label": None, "answer": "2",
                  "other": {"solution": "2", "level": 1, "type": "Algebra"}}],
        "gaokao-mathcloze": [{"passage": None, "question": "1+1=", "options": None, "label": None, "answer": "2",
                              "other": None}],
    }
    for name, items in rows.items():
        (v1 / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items))


def test_agieval_reads_the_published_v1_layout(model, tmp_path):
    agieval_v1(tmp_path)
    out = tmp_path / "r.json"
    run("eval", "--model", model, "--tasks", "agieval", "--data-dir", tmp_path, "--quiet", "--out", out,
        "--log-samples", tmp_path / "s.jsonl")
    r = json.loads(out.read_text())
    assert r["results"]["agieval"]["n"] == 3
    assert set(r["group_subtasks"]["agieval"]) == {"agieval_lsat-ar", "agieval_logiqa-zh", "agieval_jec-qa-kd"}
    multi = [json.loads(l) for l in (tmp_path / "s.jsonl").read_text().splitlines() if "jec-qa" in l]
    assert multi[0]["target"] == [0, 2]
    assert multi[0]["acc"] == (1.0 if multi[0]["pred"] in (0, 2) else 0.0)


def test_template_errors_name_the_template_and_task(model, tmp_path):
    agieval_v1(tmp_path)
    # A spec without the built-in's exclusions meets the cloze items (options null).
    s = json.loads((Path(__file__).parents[2] / "configs/tasks/agieval.json").read_text())
    del s["exclude_subjects"]
    p = tmp_path / "my_agieval.json"
    p.write_text(json.dumps(s))
    msg = fails("--model", model, "--tasks", p, "--data-dir", tmp_path)
    assert "my_agieval.json" in msg and "doc_to_text" in msg and "{options|join}" in msg, msg
    assert "'join' needs a list" in msg and "'options' is null" in msg and "gaokao-mathcloze.jsonl:1" in msg, msg
