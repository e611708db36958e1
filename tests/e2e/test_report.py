"""`mindllm report` as a user runs it: a report of a short real pipeline (data prepare, tokenizer,
train, eval before/after, samples) renders in headless Chromium with non-empty plot paths, no
console errors and non-blank PNGs; damaged inputs (a cut metrics.jsonl, an empty run, NaN losses,
missing files) still give a page stating the problem; nothing usable is one line and exit code 2;
--watch redraws when the run logs and stops cleanly on Ctrl-C.
Binary: $MINDLLM_BIN (default <repo>/build/mindllm). Chromium: Debian's `chromium` (tests skip
without it), driven over the DevTools protocol on a pipe; PNGs are read with Pillow."""
import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mindllm_ref import MINDLLM, run

PIL = pytest.importorskip("PIL.Image")
CHROMIUM = shutil.which("chromium")
KJV_ZH = Path("/usr/share/games/fortunes/tang300")


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe):
    messages are JSON terminated by a NUL byte; Chromium reads fd 3 and writes fd 4."""

    def __init__(self, width=1280, height=900):
        self.profile = tempfile.TemporaryDirectory()
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def child_fds():  # the pipes' own numbers may be 3 or 4: copy them out of the way first
            r, w = os.dup(to_r), os.dup(from_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             f"--user-data-dir={self.profile.name}", "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.next_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(domain + ".enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _read(self, timeout):
        end = time.monotonic() + timeout
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.from_r], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self.from_r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=False, timeout=60, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def open(self, path, timeout=60):
        """Loads a file and waits for its load event (not an earlier page's)."""
        seen = len(self.events)
        self.call("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        end = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events[seen:]):
            self.events.append(self._read(max(0.01, end - time.monotonic())))

    def errors(self):
        """Console errors and warnings, uncaught exceptions and browser log errors seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append("log: " + p["entry"]["text"])
        return out

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)["result"].get("value")

    def screenshot(self):
        r = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)
        return base64.b64decode(r["data"])

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)
        self.profile.cleanup()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's)")
    b = Chromium()
    yield b
    b.close()


def distinct_colours(png_path_or_bytes):
    import io
    data = png_path_or_bytes if isinstance(png_path_or_bytes, bytes) else Path(png_path_or_bytes).read_bytes()
    img = PIL.open(io.BytesIO(data)).convert("RGB")
    return img.size, len(img.getcolors(maxcolors=1 << 24))


# A small real corpus: the start of Genesis (bible-kjv) and Tang poems (fortunes-zh), Debian
# packages that scripts/setup.sh installs for the demo; plus planted duplicates and junk so the
# data funnel has something to remove.
def corpus(path):
    bible = shutil.which("bible")
    if not bible or not KJV_ZH.exists():
        pytest.skip("bible-kjv / fortunes-zh are not installed (scripts/setup.sh installs them)")
    verses = subprocess.run([bible, "-f", "Gen1:1-Gen12:20"], capture_output=True, text=True, check=True).stdout.splitlines()
    verses = [v.split(" ", 1)[1] for v in verses if " " in v]
    docs = [" ".join(verses[i:i + 12]) for i in range(0, len(verses), 12)]
    poems = re.sub(r"\x1b\[[0-9;]*m", "", KJV_ZH.read_text(encoding="utf-8")).split("\n%\n")
    docs += ["\n".join(poems[i:i + 6]) for i in range(0, 240, 6)]
    docs += docs[:5] + ["x", "!!!! #### $$$$ %%%% ^^^^ &&&& **** (((( )))) ____ ++++ ==== ~~~~ " * 3]
    path.write_text("\n\n".join(d.replace("\n\n", "\n") for d in docs) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """data prepare -> tokenizer train -> data tokenize -> train (40 steps, checkpoints at 20 and
    40) -> eval of both checkpoints on a few MMLU-format items."""
    d = tmp_path_factory.mktemp("pipeline")
    corpus(d / "raw.txt")
    run("data", "prepare", "--input", d / "raw.txt", "--text-unit", "paragraph", "--output", d / "clean", "--no-compress",
        "--quiet")
    clean = sorted((d / "clean").glob("data-*.jsonl"))
    run("tokenizer", "train", "--input", *clean, "--vocab-size", 500, "--pattern", "qwen2", "--special", "<|endoftext|>",
        "--output", d / "tokenizer.json", "--quiet")
    run("data", "tokenize", "--tokenizer", d / "tokenizer.json", "--input", *clean, "--output", d / "shards",
        "--val-fraction", 0.1, "--quiet")
    p = run("train", "--model", "tiny-llama", "--data", d / "shards", "--out", d / "run", "--steps", 40, "--batch", 4,
            "--seq", 64, "--lr", 3e-3, "--warmup", 5, "--eval-every", 10, "--eval-batches", 2, "--ckpt-every", 20,
            "--keep", 2, "--threads", 2, "--json")
    summary = json.loads(p.stdout)  # --json: the final summary, one object on stdout
    assert summary["command"] == "train" and summary["steps"] == 40 and summary["val_loss"] > 0, summary
    mmlu = d / "tasks" / "mmlu" / "test"
    mmlu.mkdir(parents=True)
    (mmlu / "anatomy_test.csv").write_text("In the beginning God created the heaven and the,earth,sea,sky,light,A\n" * 4)
    for step in (20, 40):
        p = run("eval", "--model", d / "run" / "ckpt" / f"step-{step:07d}", "--tasks", "mmlu", "--data-dir", d / "tasks",
                "--shots", 0, "--out", d / f"results-{step}.json", "--quiet", "--json", "--threads", 2)
        assert json.loads(p.stdout)["results"]["mmlu"]["n"] == 4 and p.stderr == "", p.stderr
    return d


def report(*args, check=True):
    return run("report", *args, check=check)


def test_report_of_a_real_run_renders_in_chromium(pipeline, browser, tmp_path):
    d = pipeline
    out = tmp_path / "report"
    p = report(d / "run", d / "results-20.json", d / "results-40.json", d / "clean" / "report.json", "--samples", 2,
               "--sample-tokens", 12, "--out", out)
    assert "wrote" in p.stderr and "problem" not in p.stderr, p.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # nothing fetched
    assert "<script" not in html

    browser.open(out / "index.html")
    state = browser.evaluate("""JSON.stringify({
        plots: document.querySelectorAll('svg.plot').length,
        paths: Array.from(document.querySelectorAll('svg.plot path.series')).map(p => p.getAttribute('d') || ''),
        boxes: Array.from(document.querySelectorAll('svg.plot')).map(s => s.getBoundingClientRect().width),
        sections: Array.from(document.querySelectorAll('section')).map(s => s.id),
        samples: document.querySelectorAll('.sample pre').length,
        problems: document.querySelectorAll('.problems li').length,
        deltas: document.querySelectorAll('table.compare td.better, table.compare td.worse').length +
                Array.from(document.querySelectorAll('table.compare td')).filter(t => t.textContent === '+0.0000').length})""")
    s = json.loads(state)
    assert s["sections"] == ["training", "evaluation", "data", "samples"], s["sections"]
    ids = sorted(p.stem for p in out.glob("*.png"))
    assert ids == sorted(["loss_step", "loss_tokens", "lr", "grad_norm", "tokens_per_s", "data_funnel"]), ids
    assert s["plots"] == len(ids)
    assert all(w > 300 for w in s["boxes"]), s["boxes"]  # laid out at their size
    assert len(s["paths"]) >= 10 and all(re.match(r"M[\d.]+ [\d.]+", d) for d in s["paths"]), s["paths"]
    assert s["samples"] == 2 and s["problems"] == 0 and s["deltas"] >= 1
    assert browser.errors() == []

    shot = browser.screenshot()
    size, colours = distinct_colours(shot)
    assert size[0] >= 1200 and size[1] > 2000 and colours > 50, (size, colours)
    for png in out.glob("*.png"):
        size, colours = distinct_colours(png)
        assert size[0] >= 700 and colours > 20, (png, size, colours)  # drawn, not blank


def test_chromium_check_catches_console_errors(browser, tmp_path):
    """The console check above can fail: a page that logs an error and throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body>"
                    "<script>console.error('marker-1'); not_defined();</script></body></html>")
    n = len(browser.errors())
    browser.open(page)
    time.sleep(0.2)
    new = browser.errors()[n:]
    assert any("marker-1" in e for e in new) and any("not_defined" in e for e in new), new


def metrics_line(step, loss, **kw):
    return json.dumps({"step": step, "loss": loss, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 1000.0,
                       "step_time_s": 0.5, **kw}) + "\n"


def page_of(out):
    return (out / "index.html").read_text(encoding="utf-8")


def test_truncated_metrics_render_with_the_problem_stated(tmp_path):
    run_dir = tmp_path / "cut"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(metrics_line(1, 5.0) + metrics_line(2, 4.0) + metrics_line(3, 3.5)[:20])
    p = report(run_dir, "--out", tmp_path / "r", "--json")
    summary = json.loads(p.stdout)  # --json: the summary as one object on stdout
    assert summary["command"] == "report" and summary["runs"] == 1 and summary["plots"] == 5
    assert len(summary["problems"]) == 1 and "line 3 is cut off" in summary["problems"][0]
    html = page_of(tmp_path / "r")
    assert "line 3 is cut off" in html and "class=\"problems\"" in html
    assert re.search(r'class="series" d="M[\d.]+ [\d.]+L', html)  # the two whole lines are plotted


def test_nan_losses_render_as_gaps_with_red_marks(tmp_path):
    run_dir = tmp_path / "nan"
    run_dir.mkdir()
    lines = [metrics_line(s, 5.0 - 0.1 * s) for s in range(1, 6)]
    lines.append(json.dumps({"step": 6, "loss": None, "lr": 1e-3, "grad_norm": None, "skipped": True}) + "\n")
    lines.append('{"step": 7, "loss": NaN, "lr": 0.001}\n{"step": 8, "loss": Infinity, "lr": 0.001}\n')
    lines += [metrics_line(s, 4.0) for s in range(9, 12)]
    (run_dir / "metrics.jsonl").write_text("".join(lines))
    report(run_dir, "--out", tmp_path / "r")
    html = page_of(tmp_path / "r")
    assert "3 step(s) without a finite loss" in html and "first at step 6" in html
    assert html.count('class="non-finite"') >= 3
    assert "NaN" not in "".join(re.findall(r' d="([^"]*)"', html))


def test_empty_run_and_missing_files_render(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    p = report(tmp_path / "empty", tmp_path / "missing.json", "--out", tmp_path / "r")
    assert p.returncode == 0
    html = page_of(tmp_path / "r")
    assert "the run has logged no step yet" in html and "missing.json: no such file or directory" in html
    assert "report: warning:" in p.stderr


@pytest.mark.parametrize("what", ["missing", "empty-dir", "foreign-json"])
def test_nothing_usable_is_one_line_exit_2(tmp_path, what):
    target = tmp_path / "x.json"
    if what == "empty-dir":
        target = tmp_path / "d"
        target.mkdir()
    elif what == "foreign-json":
        target.write_text('{"hello": 1}')
    p = report(target, "--out", tmp_path / "r", check=False)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "nothing to report" in p.stderr, p.stderr
    assert not (tmp_path / "r" / "index.html").exists()


def test_bad_flags_are_exit_2(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(metrics_line(1, 5.0))
    for args in (["--smooth", "1"], ["--smooth", "nan"], ["--samples", "-1"], ["--interval", "0"]):
        p = report(run_dir, "--out", tmp_path / "r", *args, check=False)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and args[0] in p.stderr, (args, p.stderr)
    (tmp_path / "file").write_text("")
    p = report(run_dir, "--out", tmp_path / "file", check=False)
    assert p.returncode == 2 and "--out" in p.stderr, p.stderr


def test_watch_redraws_and_stops_on_ctrl_c(tmp_path):
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(metrics_line(1, 5.0))
    out = tmp_path / "r"
    proc = subprocess.Popen([MINDLLM, "report", run_dir, "--out", out, "--watch", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def wait_for(cond, what):
            t0 = time.monotonic()
            while not cond():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() - t0 < 60, what
                time.sleep(0.05)

        wait_for(lambda: (out / "index.html").exists(), "first page")
        assert 'http-equiv="refresh"' in page_of(out)
        first = page_of(out)
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(metrics_line(2, 4.0) + metrics_line(3, 3.0))
        wait_for(lambda: page_of(out) != first, "redraw after the run logged")
        assert page_of(out).count("<td>3</td>") >= 1  # 3 steps logged now
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "updated" in stderr and "stopped watching" in stderr
