"""Data-parallel training under Open MPI (docs/distributed.md), as a user launches it:
`mpirun -np 2 mindllm train` equals one process with --grad-accum 2 within fp32 summation noise,
two np-2 runs are bit-identical, a rank killed with SIGKILL ends the job within a bound naming
the rank and --resume continues exactly, options that differ across ranks are one line and exit
2, a 2-rank checkpoint resumes on 1 rank, and two "hosts" made of network namespaces train over
TCP. Skipped where mpirun is absent or the binary was built without MPI."""
import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from mindllm_ref import MINDLLM, run
from shared_data import shared_data
from test_train_cli import data  # noqa: F401  (the learnable token shards, a fixture)

MPIRUN = shutil.which("mpirun")


def _built_with_mpi():
    try:
        return "data parallel (mpirun -np N): MPI" in run("--version").stdout
    except Exception:
        return False


pytestmark = [
    pytest.mark.skipif(not MPIRUN, reason="mpirun (Open MPI) not installed"),
    pytest.mark.skipif(MPIRUN and not _built_with_mpi(), reason="mindllm built without MPI"),
]

# Two ranks on a 2-core machine: one thread each; shared memory without the ptrace-based single
# copy (not permitted in containers).
MPI = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"]
# The bound on max |w_np2 - w_1proc| after STEPS steps: fp32 gradients summed in another order
# (measured 1.3e-7 after 20 steps, 1.5e-7 after 100; docs/distributed.md).
STEPS = 20
W_BOUND = 1e-5


def train_args(data, out, *extra):
    """`train` on the tiny model; flags in `extra` (flag, value pairs or lone switches) replace the defaults."""
    flags = {"--model": "tiny-llama", "--data": data, "--out": out, "--batch": 4, "--seq": 64, "--lr": 3e-3,
             "--warmup": 5, "--threads": 1, "--eval-batches": 3}
    extra = list(map(str, extra))
    i = 0
    while i < len(extra):
        if i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            flags[extra[i]] = extra[i + 1]
            i += 2
        else:
            flags[extra[i]] = None
            i += 1
    return ["train"] + [x for k, v in flags.items() for x in ([k] if v is None else [k, str(v)])]


def mpirun(n, args, check=True, timeout=300, mpi_extra=()):
    p = subprocess.run([*MPI, *mpi_extra, "-np", str(n), MINDLLM, *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"mpirun -np {n} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def weights(run_dir, step):
    return load_file(str(Path(run_dir) / "ckpt" / f"step-{step:07d}" / "model.safetensors"))


def model_bytes(run_dir, step):
    ckpt = Path(run_dir) / "ckpt" / f"step-{step:07d}"
    return (ckpt / "model.safetensors").read_bytes(), (ckpt / "optimizer.safetensors").read_bytes()


def metrics(run_dir):
    return [json.loads(l) for l in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a)


def test_two_ranks_equal_one_process_with_twice_the_accumulation(data, tmp_path):
    run(*train_args(data, tmp_path / "one", "--steps", STEPS, "--grad-accum", 2))
    p = mpirun(2, train_args(data, tmp_path / "two", "--steps", STEPS, "--grad-accum", 1))
    assert "data parallel: 2 ranks" in p.stderr
    assert p.stderr.count(f"step {STEPS}/{STEPS}") == 1, p.stderr  # rank 0 alone logs
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert [m["step"] for m in two] == list(range(1, STEPS + 1))
    for a, b in zip(one, two):
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)  # measured: 4.8e-7
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-3 * max(1.0, a["grad_norm"]), (a, b)
    assert abs(one[-1]["val_loss"] - two[-1]["val_loss"]) < 1e-4
    assert max_abs_diff(weights(tmp_path / "one", STEPS), weights(tmp_path / "two", STEPS)) < W_BOUND
    # The same rank count twice: the same bytes.
    mpirun(2, train_args(data, tmp_path / "again", "--steps", STEPS, "--grad-accum", 1))
    assert model_bytes(tmp_path / "two", STEPS) == model_bytes(tmp_path / "again", STEPS)


def test_a_two_rank_checkpoint_resumes_on_one_rank(data, tmp_path):
    # Same global batch: 2 ranks x 1 micro-batch, then 1 rank x 2.
    # A constant schedule: the first part may stop at step 10 and the rates match the whole run's.
    const = ("--schedule", "constant")
    mpirun(2, train_args(data, tmp_path / "r", "--steps", 10, "--grad-accum", 1, *const))
    run(*train_args(data, tmp_path / "r", "--steps", STEPS, "--grad-accum", 2, "--resume", *const))
    mpirun(2, train_args(data, tmp_path / "straight", "--steps", STEPS, "--grad-accum", 1, *const))
    a, b = metrics(tmp_path / "r"), metrics(tmp_path / "straight")
    assert [m["step"] for m in a] == list(range(1, STEPS + 1))
    assert [m["loss"] for m in a[:10]] == [m["loss"] for m in b[:10]]
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-4
    assert max_abs_diff(weights(tmp_path / "r", STEPS), weights(tmp_path / "straight", STEPS)) < W_BOUND


def rank_pid(mpirun_pid, rank):
    """The pid of MPI rank `rank` among mpirun's children (from its environment)."""
    for child in subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True, text=True).stdout.split():
        try:
            env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(child)
    return None


KILL_BOUND_S = 15  # from the SIGKILL to mpirun's exit (measured: 2.3-2.5 s at load 25 on 2 cores)


def test_a_killed_rank_ends_the_job_and_resume_matches(data, tmp_path):
    # Few steps, each long enough (8 x 128 tokens) that the kill after the first checkpoint lands
    # mid-run also on a fast idle machine.
    steps, every = 24, 4
    args = ["--steps", steps, "--ckpt-every", every, "--grad-accum", 1, "--log-every", 100, "--batch", 8, "--seq", 128]
    out = tmp_path / "killed"
    p = subprocess.Popen([*MPI, "-np", "2", MINDLLM, *train_args(data, out, *args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = out / "ckpt" / f"step-{every:07d}"
    deadline = time.time() + 60
    while not first.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    pid = rank_pid(p.pid, 1)
    assert p.poll() is None and pid, "the job ended before a rank could be killed"
    os.kill(pid, signal.SIGKILL)
    t0 = time.time()
    try:
        _, err = p.communicate(timeout=KILL_BOUND_S)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError(f"the job did not end within {KILL_BOUND_S} s of rank 1's SIGKILL")
    took = time.time() - t0
    assert p.returncode != 0
    assert "rank 1" in err and "signal 9" in err, err
    print(f"job ended {took:.2f} s after rank 1's SIGKILL")
    done = sorted(int(d.name.split("-")[1]) for d in (out / "ckpt").glob("step-*"))
    assert done and done[-1] < steps, done
    mpirun(2, train_args(data, out, *args, "--resume"))
    mpirun(2, train_args(data, tmp_path / "straight", *args))
    assert [m["loss"] for m in metrics(out)] == [m["loss"] for m in metrics(tmp_path / "straight")]
    assert model_bytes(out, steps) == model_bytes(tmp_path / "straight", steps)


def test_options_that_differ_across_ranks_are_one_line_and_exit_2(data, tmp_path):
    out = tmp_path / "mismatch"
    a = train_args(data, out, "--steps", 3, "--lr", "3e-3")
    b = train_args(data, out, "--steps", 3, "--lr", "2e-3")
    p = subprocess.run([*MPI, "-np", "1", MINDLLM, *a, ":", "-np", "1", MINDLLM, *b], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2, p.stderr
    ours = [l for l in p.stderr.splitlines() if l.startswith("mindllm train: error")]
    assert len(ours) == 1 and "rank 1" in ours[0] and "--lr" in ours[0], p.stderr
    assert not (out / "ckpt").exists() or not any((out / "ckpt").iterdir())
    # A model that differs is named too.
    c = ["tiny-neo" if x == "tiny-llama" else x for x in a]
    p = subprocess.run([*MPI, "-np", "1", MINDLLM, *a, ":", "-np", "1", MINDLLM, *c],
                       capture_output=True, text=True, timeout=60)
    ours = [l for l in p.stderr.splitlines() if l.startswith("mindllm train: error")]
    assert p.returncode == 2 and len(ours) == 1 and "model config" in ours[0], p.stderr


def test_an_error_on_one_rank_ends_the_job(data, tmp_path):
    # Rank 0 alone reads the run directory: a file in its place stops the job (MPI_Abort) with
    # one line naming it and exit 2, while rank 1 waits in a collective.
    out = tmp_path / "file"
    out.write_text("not a directory")
    p = mpirun(2, train_args(data, out, "--steps", 3), check=False, timeout=60)
    assert p.returncode == 2, p.stderr
    ours = [l for l in p.stderr.splitlines() if l.startswith("mindllm train: error")]
    assert len(ours) == 1 and "rank 0" in ours[0] and "--out" in ours[0], p.stderr


@pytest.fixture
def two_hosts(tmp_path):
    """Two "hosts": network namespaces joined by a veth pair, 10.231.x.1 and .2, and an rsh agent
    for Open MPI that runs a command in the namespace of the address it is given."""
    tag = f"{os.getpid() % 10000}"
    ns = [f"mlA{tag}", f"mlB{tag}"]
    net = f"10.231.{os.getpid() % 200}"
    ips = [f"{net}.1", f"{net}.2"]

    def ip(*args):
        return subprocess.run(["ip", *args], capture_output=True, text=True)

    if not shutil.which("ip") or ip("netns", "add", ns[0]).returncode != 0:
        pytest.skip("ip netns is not permitted here (needs root and CAP_SYS_ADMIN)")
    try:
        ip("netns", "add", ns[1])
        steps = [["link", "add", f"v{ns[0]}", "type", "veth", "peer", "name", f"v{ns[1]}"]]
        for n, addr in zip(ns, ips):
            steps += [["link", "set", f"v{n}", "netns", n], ["-n", n, "addr", "add", f"{addr}/24", "dev", f"v{n}"],
                      ["-n", n, "link", "set", f"v{n}", "up"], ["-n", n, "link", "set", "lo", "up"]]
        for s in steps:
            r = ip(*s)
            if r.returncode != 0:
                pytest.skip(f"ip {' '.join(s)}: {r.stderr.strip()}")
        agent = tmp_path / "agent.sh"
        agent.write_text("#!/bin/sh\nhost=$1; shift\ncase \"$host\" in\n" +
                         "".join(f"  {a}) ns={n} ;;\n" for a, n in zip(ips, ns)) +
                         "  *) echo \"agent: unknown host $host\" >&2; exit 1 ;;\nesac\n"
                         "exec ip netns exec \"$ns\" sh -c \"$*\"\n")
        agent.chmod(0o755)
        hostfile = tmp_path / "hosts"
        hostfile.write_text("".join(f"{a} slots=1\n" for a in ips))
        yield dict(ns=ns, launch=["ip", "netns", "exec", ns[0], MPIRUN, "--allow-run-as-root", "--hostfile",
                                  str(hostfile), "--mca", "plm_rsh_agent", str(agent), "--mca", "btl", "tcp,self",
                                  "--mca", "btl_tcp_if_include", f"{net}.0/24", "--mca", "oob_tcp_if_include",
                                  f"{net}.0/24"])
    finally:
        for n in ns:
            ip("netns", "del", n)


def test_two_hosts_over_tcp(data, tmp_path, two_hosts):
    launch = two_hosts["launch"]
    where = subprocess.run([*launch, "-np", "2", "sh", "-c", "echo $OMPI_COMM_WORLD_RANK $(ip netns identify $$)"],
                           capture_output=True, text=True, timeout=60)
    assert sorted(where.stdout.split("\n")[:2]) == [f"0 {two_hosts['ns'][0]}", f"1 {two_hosts['ns'][1]}"], where
    args = train_args(data, tmp_path / "over_tcp", "--steps", 6, "--grad-accum", 1)
    p = subprocess.run([*launch, "-np", "2", MINDLLM, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    # The same job on one host (shared memory) gives the same bytes: 2-rank sums are exact.
    mpirun(2, train_args(data, tmp_path / "local", "--steps", 6, "--grad-accum", 1))
    assert model_bytes(tmp_path / "over_tcp", 6) == model_bytes(tmp_path / "local", 6)


def test_zero1_matches_plain_data_parallel_and_resumes_anywhere(data, tmp_path):
    mpirun(2, train_args(data, tmp_path / "plain", "--steps", STEPS, "--grad-accum", 1))
    mpirun(2, train_args(data, tmp_path / "zero", "--steps", STEPS, "--grad-accum", 1, "--zero", 1))
    a, b = metrics(tmp_path / "plain"), metrics(tmp_path / "zero")
    assert max(abs(x["loss"] - y["loss"]) for x, y in zip(a, b)) < 1e-4
    assert max_abs_diff(weights(tmp_path / "plain", STEPS), weights(tmp_path / "zero", STEPS)) < W_BOUND
    # The checkpoint holds the whole optimizer state: it equals plain data parallelism's within
    # the same bound, and resumes on one process without --zero.
    opt = lambda d: load_file(str(d / "ckpt" / f"step-{STEPS:07d}" / "optimizer.safetensors"))
    assert max_abs_diff(opt(tmp_path / "plain"), opt(tmp_path / "zero")) < W_BOUND
    mpirun(2, train_args(data, tmp_path / "zero2", "--steps", STEPS, "--grad-accum", 1, "--zero", 1))
    assert model_bytes(tmp_path / "zero", STEPS) == model_bytes(tmp_path / "zero2", STEPS)
    run(*train_args(data, tmp_path / "zero", "--steps", STEPS + 5, "--grad-accum", 2, "--resume"))
    assert [m["step"] for m in metrics(tmp_path / "zero")] == list(range(1, STEPS + 6))
    # One process cannot shard: one line, exit 2.
    p = run(*train_args(data, tmp_path / "one", "--steps", 2, "--zero", 1), check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--zero 1" in p.stderr, p.stderr



@pytest.mark.parametrize("n,zero", [(2, 0), (3, 0), (2, 1), (3, 1)])
def test_reduction_overlapped_with_the_backward_is_bit_identical(data, tmp_path, n, zero):
    # Small buckets (many of them, started from the last layer's as the backward reaches them): the
    # same sums as after the backward, so the same bytes. With --zero 1 each bucket is
    # reduce-scattered (MPI_Ireduce_scatter: each rank gets the part in its slice of the optimizer
    # state), and --no-overlap starts the same buckets after the backward.
    args = ("--steps", 6, "--grad-accum", 2, "--bucket-mb", 0.01) + (("--zero", 1) if zero else ())
    p = mpirun(n, train_args(data, tmp_path / "overlap", *args))
    assert "reduced during the backward" in p.stderr, p.stderr
    buckets = int(p.stderr.split(" buckets")[0].rsplit(" ", 1)[1])
    assert buckets > 5
    mpirun(n, train_args(data, tmp_path / "after", *args, "--no-overlap"))
    assert model_bytes(tmp_path / "overlap", 6) == model_bytes(tmp_path / "after", 6)
    assert [m["loss"] for m in metrics(tmp_path / "overlap")] == [m["loss"] for m in metrics(tmp_path / "after")]

def test_the_gpu_check_dist_stage_on_the_cpu(data, tmp_path):
    """scripts/gpu-dist-check.sh, the data-parallel stage of scripts/gpu-check.sh: its comparison
    (mpirun -np N against one process with --grad-accum N) run with the CPU's MPI, and its skips."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu-dist-check.sh"

    def stage(**env):
        e = {**os.environ, "BIN": MINDLLM, "DATA": str(data), "WORK": str(tmp_path / "w"), "MPIRUN": MPIRUN, **env}
        p = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=e, timeout=300)
        return p.returncode, p.stdout.strip().splitlines()[-1]

    rc, line = stage(DEVICE="cpu", NP="2")
    assert rc == 0 and line.startswith("dist stage: ok: mpirun -np 2 --device cpu (MPI) vs 1 process --grad-accum 2"), line
    diff = float(line.split("max loss rel diff ")[1].split(" ")[0])
    assert diff <= 1e-4
    # Without mpirun, or (here) without a GPU: one line, not a failure.
    assert stage(MPIRUN="") == (0, "dist stage: skipped: no mpirun (Open MPI) on this machine")
    rc, line = stage(DEVICE="cuda", PATH="/usr/bin:/bin")
    assert rc == 0 and line.startswith("dist stage: skipped:"), line


# ---- `mpirun -np N mindllm data prepare`: the inputs split across ranks, dedup global ----------


def _near_copy(text, k):
    """A near duplicate: one word in the middle replaced, a sentence appended."""
    words = text.split(" ")
    words[len(words) // 2] = f"variant{k}"
    return " ".join(words) + f" Copied again, number {k}."


def prepare_inputs(root):
    """Real English (C4) and Chinese (红楼梦) documents in three files - plain JSONL, gzip JSONL, plain
    JSONL - with exact and near copies placed far from their originals (so in other ranks'
    shares), a copy of a copy, and a broken line."""
    c4 = [json.loads(line)["text"] for line in shared_data("corpus", "en", "c4_demo.jsonl").open(encoding="utf-8")]
    novel = shared_data("corpus", "zh", "红楼梦.txt").read_text(encoding="utf-8").splitlines()
    zh = [p.strip() for p in novel if len(p.strip()) > 150][:250]
    root.mkdir()
    a = c4[:200] + [_near_copy(zh[3], 1)]
    b = c4[200:] + [c4[5].upper(), _near_copy(c4[10], 2), zh[0]]
    c = zh + [_near_copy(c4[k], 10 + k) for k in range(20, 60, 3)] + [c4[7] + " ", _near_copy(zh[5], 3)]
    c += [_near_copy(_near_copy(c4[30], 4), 5), _near_copy(zh[40], 6), c4[199]]

    def lines(docs):
        return "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs)

    (root / "a.jsonl").write_text(lines(a), encoding="utf-8")
    (root / "b.jsonl.gz").write_bytes(gzip.compress(lines(b).encode()))
    (root / "c.jsonl").write_text(lines(c[:100]) + "{broken\n" + lines(c[100:]), encoding="utf-8")
    return root


def prepare(n, inputs, out, *extra):
    args = ["data", "prepare", "-i", str(inputs), "-o", str(out), "--threads", "1", "--quiet", *map(str, extra)]
    if n == 0:
        return run(*args)
    return mpirun(n, args)


def outputs(out):
    """The output parts' bytes and report.json less its timing, dedup index sizes and output path."""
    parts = {p.name: p.read_bytes() for p in sorted(out.glob("data-*"))}
    rep = json.loads((out / "report.json").read_text())
    del rep["config"]["output"]
    return parts, {k: v for k, v in rep.items() if k not in ("timing", "dedup")}, rep["dedup"]["exact_index_entries"]


def test_prepare_across_ranks_equals_one_process(tmp_path):
    inputs = prepare_inputs(tmp_path / "in")
    config = tmp_path / "small-parts.json"
    config.write_text(json.dumps({"max_file_bytes": 200000}))  # several output parts
    prepare(0, inputs, tmp_path / "one", "--config", config)
    parts, rep, exact = outputs(tmp_path / "one")
    assert len(parts) > 2
    removed = rep["removed"]
    # The injected copies were found: exact ones (case/space variants, repeated documents) and most of
    # the 19 near ones (a short document with one word changed falls below the LSH threshold).
    assert removed["exact_duplicate"]["total"]["docs"] >= 3
    assert removed["near_duplicate"]["total"]["docs"] >= 10
    assert rep["read"]["bad_json"] == 1
    for n in (2, 3):
        prepare(n, inputs, tmp_path / f"np{n}", "--config", config)
        got_parts, got_rep, got_exact = outputs(tmp_path / f"np{n}")
        assert got_rep == rep, n
        assert got_parts == parts, n  # the same bytes (zstd parts)
        assert got_exact == exact
        assert not list((tmp_path / f"np{n}").glob(".prepare-rank-*")), "spill files left behind"


def test_prepare_splits_one_big_text_file_by_lines(tmp_path):
    # One file, documents per line, split at byte ranges: line numbers ("source") and dedup agree.
    src = shared_data("corpus", "en", "wiki_demo.txt")
    prepare(0, src, tmp_path / "one", "--text-unit", "line", "--no-compress")
    prepare(2, src, tmp_path / "two", "--text-unit", "line", "--no-compress")
    parts, rep, _ = outputs(tmp_path / "one")
    assert rep["documents"]["kept"] > 10  # 30 long lines, about half on each rank
    assert outputs(tmp_path / "two")[:2] == (parts, rep)


def _two_views(tmp_path, second_y):
    """Two working directories as two hosts' views of the inputs: x.jsonl the same, y.jsonl as given."""
    views = []
    for host, y in (("hostA", "y" * 3000), ("hostB", second_y)):
        d = tmp_path / host / "in"
        d.mkdir(parents=True)
        (d / "x.jsonl").write_text(json.dumps({"text": "A short document about one thing."}) + "\n")
        if y is not None:
            (d / "y.jsonl").write_text(json.dumps({"text": y}) + "\n")
        views.append(tmp_path / host)
    return views


@pytest.mark.parametrize("second_y, what", [(None, "no such file"), ("y" * 2000, "bytes here but")])
def test_prepare_input_a_rank_cannot_read_is_one_line_and_no_output(tmp_path, second_y, what):
    a, b = _two_views(tmp_path, second_y)
    out = tmp_path / "out"
    args = ["data", "prepare", "-i", "in/x.jsonl", "-i", "in/y.jsonl", "-o", str(out), "--threads", "1", "--quiet"]
    p = subprocess.run([*MPI, "-np", "1", "-wdir", str(a), MINDLLM, *args, ":", "-np", "1", "-wdir", str(b), MINDLLM,
                        *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("mindllm data: error")]
    assert len(errors) == 1 and "rank 1: in/y.jsonl" in errors[0] and what in errors[0], p.stderr
    assert not out.exists() or not [f for f in out.iterdir() if not f.name.startswith(".")]
