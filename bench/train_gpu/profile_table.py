#!/usr/bin/env python3
"""Per-kernel table from Nsight Compute's CSV (`ncu --csv --page raw --print-units base` with
gpu__time_duration.sum and the SM / memory speed-of-light percentages; bench/train_gpu/profile.sh).

Lines that are not CSV (the profiled program's own output, ncu's ==PROF== notes) are skipped.
Kernels are grouped by name (template arguments and parameter lists dropped); printed by total
time: calls, total and mean time, the time-weighted mean SM and memory throughput in % of peak.

    python3 bench/train_gpu/profile_table.py ncu.csv [--top 30]
"""
import argparse
import csv
import re
import sys

DURATION = "gpu__time_duration.sum"
SM = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
MEM = "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
SCALE = {"nsecond": 1e-9, "ns": 1e-9, "usecond": 1e-6, "us": 1e-6, "msecond": 1e-3, "ms": 1e-3, "second": 1.0, "s": 1.0}


def short_name(name):
    """`void ns::kernel<...>(args)` -> `ns::kernel`; long library kernel names cut to 70 characters."""
    name = re.sub(r"^void ", "", name.strip()).replace("(anonymous namespace)::", "")
    depth, out = 0, []
    for ch in name:  # drop template arguments
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out).split("(")[0].strip()
    return name[:70]


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv")
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args()
    with open(a.csv, errors="replace") as f:
        rows = list(csv.reader(line for line in f if line.startswith('"')))
    if not rows or "Kernel Name" not in rows[0]:
        sys.exit(f"profile_table: no Nsight Compute CSV header in {a.csv}")
    head = rows[0]
    col = {k: head.index(k) for k in ("Kernel Name", DURATION) if k in head}
    if DURATION not in col:
        sys.exit(f"profile_table: no {DURATION} column in {a.csv}")
    sm_col = head.index(SM) if SM in head else None
    mem_col = head.index(MEM) if MEM in head else None
    data, scale = rows[1:], 1e-9
    if data and not data[0][0].strip():  # the units row
        scale = SCALE.get(data[0][col[DURATION]].strip(), 1e-9)
        data = data[1:]
    kernels = {}
    for r in data:
        if len(r) != len(head):
            continue
        t = number(r[col[DURATION]]) * scale
        k = kernels.setdefault(short_name(r[col["Kernel Name"]]), [0, 0.0, 0.0, 0.0])
        k[0] += 1
        k[1] += t
        k[2] += t * (number(r[sm_col]) if sm_col is not None else float("nan"))
        k[3] += t * (number(r[mem_col]) if mem_col is not None else float("nan"))
    total = sum(k[1] for k in kernels.values())
    if not kernels or total <= 0:
        sys.exit("profile_table: no kernel rows")
    print(f"{len(data)} kernel launches, {len(kernels)} kernels, {total * 1e3:.2f} ms of GPU time in all")
    print(f"{'kernel':70s} {'calls':>6s} {'total ms':>9s} {'mean us':>9s} {'share':>6s} {'SM %':>5s} {'mem %':>5s}")
    for name, (n, t, sm, mem) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[: a.top]:
        print(f"{name:70s} {n:6d} {t * 1e3:9.2f} {t / n * 1e6:9.1f} {t / total:6.1%} {sm / t:5.0f} {mem / t:5.0f}")


if __name__ == "__main__":
    main()
