"""`mindllm select score` and `select pick` as a user runs them: a tiny base model, a pool with
broken samples among good ones, a resumed scoring run equal to an uninterrupted one, picking with
--data (the original lines), dedup and tag quotas, and bad input (one line, exit 2)."""
import json

import pytest

from mindllm_ref import run, tiny_chat_model

QA = [("What is two plus two?", "Four."), ("Name a colour.", "Blue."), ("床前明月光", "疑是地上霜"),
      ("Say hello.", "Hello!"), ("举头望明月", "低头思故乡"), ("What is the capital of France?", "Paris."),
      ("Solve 3 + 4 = ?", "3 + 4 = 7."), ("Compute 12 * 3.", "12 * 3 = 36.")]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    text = "\n".join(f"{q} {a}" for q, a in QA * 50) + "\nuser assistant system\n" * 50
    return tiny_chat_model(d, text)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """a.jsonl: 24 good samples (own ids; each text three times) and 3 broken ones; b.json: a JSON
    array of two-turn conversations without ids."""
    d = tmp_path_factory.mktemp("pool")
    lines = [json.dumps({"id": f"a{i}", "instruction": q, "output": a}, ensure_ascii=False)
             for i, (q, a) in enumerate(QA * 3)]  # three copies of each: near duplicates for --dedup
    lines[5:5] = ['{"instruction": "no output"}', "not json", '{"instruction": "q", "output": ""}']
    (d / "a.jsonl").write_text("\n".join(lines) + "\n")
    b = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a},
                       {"role": "user", "content": "Please say that once more, word for word, one more time for me."},
                       {"role": "assistant", "content": a}]} for q, a in QA]
    (d / "b.json").write_text(json.dumps(b, ensure_ascii=False, indent=1))
    return d


def score(base, pool, out, *extra, check=True, quiet=True):
    """--quiet: no progress and no log lines (the tests that read the log lines pass quiet=False)."""
    return run("select", "score", "--model", base, "--data", pool / "a.jsonl", pool / "b.json", "--out", out,
               "--chat-template", "chatml", "--batch", 3, "--threads", 2, *(["--quiet"] if quiet else []), *extra,
               check=check)


def test_score_counts_skipped_and_writes_every_good_sample(base, pool, tmp_path):
    p = score(base, pool, tmp_path / "s.jsonl", quiet=False)
    assert "35 samples, 32 kept, 3 skipped" in p.stderr, p.stderr
    assert "missing field 'output': 1" in p.stderr and "empty assistant turn: 1" in p.stderr
    lines = [json.loads(l) for l in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [l["id"] for l in lines] == [f"a{i}" for i in range(24)] + list(range(27, 35))  # pool order; index ids
    for l in lines:
        assert set(l) >= {"id", "score", "ce_mean", "entropy_mean", "ce_sum", "entropy_sum", "n_tokens", "ifd",
                          "source", "lang", "tags", "seq_tokens"}
        assert l["n_tokens"] > 0 and l["score"] == l["ce_mean"] > 0 and l["ifd"] > 0
    assert {tuple(l["tags"]) for l in lines if l["source"].endswith("b.json")} >= {("multi_turn",)}
    assert any("math" in l["tags"] for l in lines)
    assert {l["lang"] for l in lines} >= {"zh"}
    assert not (tmp_path / "s.jsonl.partial").exists()


def test_resume_gives_the_same_file(base, pool, tmp_path):
    score(base, pool, tmp_path / "full.jsonl")
    p = score(base, pool, tmp_path / "r.jsonl", "--max-batches", 3, quiet=False)
    assert "continue with --resume" in p.stderr
    assert not (tmp_path / "r.jsonl").exists()
    partial = tmp_path / "r.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 9
    with open(partial, "a") as f:
        f.write('{"id": "a1", "sco')  # a torn last line, as a crash mid-write leaves it
    # Without --resume an interrupted run is not overwritten.
    p = score(base, pool, tmp_path / "r.jsonl", check=False)
    assert p.returncode == 2 and "--resume" in p.stderr
    score(base, pool, tmp_path / "r.jsonl", "--resume", "--max-batches", 2)
    score(base, pool, tmp_path / "r.jsonl", "--resume")
    assert (tmp_path / "r.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    # Other settings are refused on resume.
    score(base, pool, tmp_path / "x.jsonl", "--max-batches", 1)
    p = score(base, pool, tmp_path / "x.jsonl", "--resume", "--no-ifd", check=False)
    assert p.returncode == 2 and "other settings" in p.stderr


def test_pick_writes_original_samples_and_reports(base, pool, tmp_path):
    score(base, pool, tmp_path / "s.jsonl")
    scores = [json.loads(l) for l in (tmp_path / "s.jsonl").read_text().splitlines()]
    run("select", "pick", "--scores", tmp_path / "s.jsonl", "--data", pool / "a.jsonl", pool / "b.json",
        "--band", "25:75", "--size", 8, "--out", tmp_path / "subset.jsonl", "--report-dir", tmp_path / "rep")
    sub = [json.loads(l) for l in (tmp_path / "subset.jsonl").read_text().splitlines()]
    assert len(sub) == 8
    good = [json.loads(l) for l in (pool / "a.jsonl").read_text().splitlines()[:5] +
            (pool / "a.jsonl").read_text().splitlines()[8:]]
    good += json.loads((pool / "b.json").read_text())
    assert all(s in good for s in sub)
    # The eight nearest the median by rank.
    order = sorted(range(len(scores)), key=lambda i: scores[i]["score"])
    pct = {order[r]: 100 * r / (len(scores) - 1) for r in range(len(scores))}
    near = sorted(range(len(scores)), key=lambda i: (abs(pct[i] - 50), i))[:8]
    want = [good[i] for i in sorted(near)]
    assert sub == want
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["all"]["pool"] == 32 and rep["all"]["kept"] == 8
    assert set(rep["by_source"]) == {str(pool / "a.jsonl"), str(pool / "b.json")}
    assert "<svg" in (tmp_path / "rep" / "report.html").read_text()
    # Without --data the score lines are written.
    run("select", "pick", "--scores", tmp_path / "s.jsonl", "--top", 3, "--out", tmp_path / "top.jsonl")
    top = [json.loads(l) for l in (tmp_path / "top.jsonl").read_text().splitlines()]
    assert sorted(t["score"] for t in top) == sorted(s["score"] for s in scores)[-3:]
    assert (tmp_path / "report.json").exists()


def test_pick_dedup_and_tag_quotas(base, pool, tmp_path):
    score(base, pool, tmp_path / "s.jsonl")
    # a.jsonl holds each of 8 texts three times: 16 copies are refused.
    p = run("select", "pick", "--scores", tmp_path / "s.jsonl", "--data", pool / "a.jsonl", pool / "b.json",
            "--random", "--size", 32, "--dedup", "--out", tmp_path / "d.jsonl", "--report-dir", tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["refused_near_duplicates"] == 16 and rep["all"]["kept"] == 16
    run("select", "pick", "--scores", tmp_path / "s.jsonl", "--top", 4, "--tag-share", "math=0.5",
        "--out", tmp_path / "m.jsonl", "--report-dir", tmp_path)
    kept = [json.loads(l) for l in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sum("math" in k["tags"] for k in kept) >= 2
    # Tags from a field of the samples.
    p = run("select", "pick", "--scores", tmp_path / "s.jsonl", "--data", pool / "a.jsonl", pool / "b.json",
            "--top", 2, "--tag-field", "nope", "--tag-share", "math=0.5", "--out", tmp_path / "x.jsonl", check=False)
    assert p.returncode == 2 and "unknown tag 'math'" in p.stderr


def one_line_exit_2(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


def test_bad_input(base, pool, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "noresp.jsonl").write_text('{"instruction": "q"}\n{"messages": [{"role": "user", "content": "x"}]}\n')
    for data, word in [(tmp_path / "empty.jsonl", "no sample"), (tmp_path / "noresp.jsonl", "no sample"),
                       (tmp_path / "missing.jsonl", "no such file")]:
        p = run("select", "score", "--model", base, "--data", data, "--out", tmp_path / "o.jsonl",
                "--chat-template", "chatml", "--quiet", check=False)
        assert p.returncode == 2 and word in p.stderr, p.stderr
    p = run("select", "score", "--model", base, "--data", pool / "a.jsonl", "--out", tmp_path / "o.jsonl",
            "--device", "cuda", check=False)
    one_line_exit_2(p, "--device cuda")
    good = {"id": 1, "score": 1.5, "source": "x"}
    nan = {"id": 2, "score": None, "source": "x"}
    (tmp_path / "nan.jsonl").write_text(json.dumps(nan) + "\n")
    (tmp_path / "mixed.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(nan) + "\n")
    (tmp_path / "garbage.jsonl").write_text(json.dumps(good) + "\n{oops\n")
    pick = lambda *a: run("select", "pick", "--out", tmp_path / "p.jsonl", *a, check=False)
    one_line_exit_2(pick("--scores", tmp_path / "nan.jsonl", "--top", 1), "no usable scores")
    p = pick("--scores", tmp_path / "mixed.jsonl", "--top", 1, "--report-dir", tmp_path)
    assert p.returncode == 0 and json.loads((tmp_path / "report.json").read_text())["counts"]["invalid_scores"] == 1
    one_line_exit_2(pick("--scores", tmp_path / "garbage.jsonl", "--top", 1), "garbage.jsonl:2")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl", "--top", 1, "--tag-share", "law=0.5"), "unknown tag 'law'")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl", "--band", "80:20"), "--band")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl", "--top", 1, "--dedup"), "--dedup needs --data")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl"), "choose one strategy")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl", "--random"), "--random needs --size")
    one_line_exit_2(pick("--scores", tmp_path / "mixed.jsonl", "--band-z", "5:6"), "nothing was picked")


def test_json_summaries(base, pool, tmp_path):
    """--json: score and pick print their summary as one JSON object on stdout (nothing on stderr
    with --quiet), and its numbers agree with the files written."""
    p = score(base, pool, tmp_path / "s.jsonl", "--json")
    s = json.loads(p.stdout)
    assert p.stderr == "" and len(p.stdout.splitlines()) == 1
    assert s["command"] == "select score" and s["samples"] == s["scored"] == 32 and s["out"] == str(tmp_path / "s.jsonl")
    assert s["tokens"] > 0 and s["tokens_per_s"] > 0
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 32
    p = run("select", "pick", "--scores", tmp_path / "s.jsonl", "--top", 5, "--out", tmp_path / "k.jsonl", "--json",
            "--quiet")
    s = json.loads(p.stdout)
    assert p.stderr == "" and s["command"] == "select pick" and s["picked"] == 5 and s["pool"] == 32
    kept = [json.loads(l) for l in (tmp_path / "k.jsonl").read_text().splitlines()]
    assert len(kept) == 5 and s["tokens"] == sum(k["seq_tokens"] for k in kept)
