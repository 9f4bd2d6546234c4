#!/usr/bin/env python3
"""Runs the memory_stream criterion benchmark several times and summarises it as
docs/performance.md does: per run, throughput = 100,000 items / criterion's median time;
per group, the median throughput of each implementation over the runs, and the median
(min-max) over runs of streamtool / the fastest peer in that run.

    python3 bench/memory_stream_runs.py [RUNS] [FILTER]
    python3 bench/memory_stream_runs.py 6 'cap=unbounded/'
"""
import json, statistics, subprocess, sys
from pathlib import Path

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
flt = sys.argv[2] if len(sys.argv) > 2 else ""
root = Path(__file__).resolve().parent.parent
crit = root / "target" / "criterion"
ITEMS = 100_000
results = {}  # group -> impl -> [M items/s per run]
ratios = {}  # group -> [ratio per run]
for r in range(runs):
    cmd = ["cargo", "bench", "--locked", "--bench", "memory_stream", "--", "--noplot"]
    if flt:
        cmd.append(flt)
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        sys.exit(out.stderr[-2000:])
    groups = [l.strip() for l in out.stdout.splitlines() if l.startswith("memory_stream/")]
    this_run = {}
    for g in groups:
        _, cap, topo, impl = g.split("/")
        est = json.loads((crit / f"memory_stream_{cap}_{topo}" / impl / "new" / "estimates.json").read_text())
        mps = ITEMS / (est["median"]["point_estimate"] / 1e9) / 1e6
        this_run.setdefault(f"{cap} {topo}", {})[impl] = mps
    for group, impls in this_run.items():
        for impl, v in impls.items():
            results.setdefault(group, {}).setdefault(impl, []).append(v)
        peers = [v for i, v in impls.items() if i != "streamtool"]
        ratios.setdefault(group, []).append(impls["streamtool"] / max(peers))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"run {r + 1}/{runs} done (load {load}): " + ", ".join(f"{g} {ratios[g][-1]:.2f}" for g in ratios), flush=True)
print("\n| group | " + " | ".join(["streamtool", "tokio_mpsc", "async_channel", "flume"]) + " | streamtool / fastest peer: median (min-max) | runs >= 0.67 |")
print("|---|---:|---:|---:|---:|---|---|")
for group in results:
    cells = []
    for impl in ["streamtool", "tokio_mpsc", "async_channel", "flume"]:
        vals = results[group].get(impl) or results[group].get(impl + "_mutex_rx")
        cells.append(f"{statistics.median(vals):.2f}" if vals else "-")
    rs = ratios[group]
    ok = sum(1 for x in rs if x >= 1 / 1.5)
    print(f"| {group} | " + " | ".join(cells) + f" | {statistics.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f}) | {ok}/{len(rs)} |")
