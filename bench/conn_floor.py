#!/usr/bin/env python3
"""Server CPU per plain connection: streamtool and ncat beside the smallest servers that do
the same work, so the floor of each design shows (issue 7, "server CPU per plain connection
<= ncat's").

    python3 bench/conn_floor.py                 # 6 rounds x 20,000 connections per server
    python3 bench/conn_floor.py --rounds 10 --conns 30000

Every server does the same with each connection: accept it, read to the end, half-close,
close. The client is `helper conns` (bench/helper.c): connect, half-close, read until the
server closes, one connection at a time. The servers:

- `c-select`: bench/floor_srv.c, select(2) then a blocking accept, as ncat's loop does;
- `c-epoll`: bench/floor_srv.c with tokio's system calls (edge-triggered epoll, every
  connection registered and deregistered, accept4 until EAGAIN), no runtime;
- `tokio-task`: examples/accept_floor.rs, the smallest tokio server (current-thread
  runtime, a task per connection);
- `tokio-late`: a task per connection, but registered with the reactor only when a read
  would wait (`accept4` as tokio does it, through an `AsyncFd`);
- `tokio-inline`: the same runtime, but reading on the accept task and registering a
  connection with the reactor only when a read would wait;
- `streamtool`: `serve -q -k --discard` (target/release/streamtool);
- `ncat`: `ncat -l -k`.

The servers take turns, round after round, so a change in the machine's load hits them all.
CPU time is the sum of every thread's `/proc/PID/task/TID/schedstat` run time (ns) over the
connections; medians with min-max. Loopback only; every process is ended by PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"conn_floor: {proc.args[0]} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"conn_floor: nothing listens on 127.0.0.1:{port} after {timeout} s")


def cpu_ns(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total


def measure(helper: str, argv: list[str], conns: int, timeout: float) -> float:
    """Microseconds of server CPU per connection."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in argv]
    # stdin stays open (a pipe nobody writes) so stdio servers do not see an end.
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        time.sleep(0.2)  # the probe connection is done with
        before = cpu_ns(proc.pid)
        out = subprocess.run([helper, "conns", str(port), str(conns)], capture_output=True, text=True,
                             timeout=timeout)
        time.sleep(0.05)  # the last close is processed
        after = cpu_ns(proc.pid)
        fields = out.stdout.split()
        if out.returncode != 0 or len(fields) < 3 or fields[0] != "CONNS" or fields[2] != "0":
            raise SystemExit(f"conn_floor: {args[0]}: helper conns failed: {out.stdout.strip()} "
                             f"{out.stderr.strip()}")
        return (after - before) / 1000 / conns
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--conns", type=int, default=20000)
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="conn_floor."))
    helper, floor_srv = str(tmp / "helper"), str(tmp / "floor_srv")
    subprocess.run(["cc", "-O2", "-o", helper, str(BENCH / "helper.c")], check=True)
    subprocess.run(["cc", "-O2", "-o", floor_srv, str(BENCH / "floor_srv.c")], check=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "streamtool",
                        "--example", "accept_floor"], cwd=ROOT, check=True)
    release = ROOT / "target" / "release"
    servers = {
        "c-select": [floor_srv, "{port}", "select"],
        "c-epoll": [floor_srv, "{port}", "epoll"],
        "tokio-task": [str(release / "examples" / "accept_floor"), "{port}", "task"],
        "tokio-late": [str(release / "examples" / "accept_floor"), "{port}", "late"],
        "tokio-inline": [str(release / "examples" / "accept_floor"), "{port}", "inline"],
        "streamtool": [str(release / "streamtool"), "serve", "-q", "-k", "--discard", "127.0.0.1:{port}"],
    }
    if shutil.which("ncat"):
        servers["ncat"] = ["ncat", "-l", "-k", "127.0.0.1", "{port}"]
    else:
        print("conn_floor: ncat not installed; measuring without it", file=sys.stderr)

    # Generous: a connection takes about 60 us here.
    timeout = 30 + args.conns * 0.001
    results: dict[str, list[float]] = {name: [] for name in servers}
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{args.rounds} rounds x {args.conns} connections, load average {load} at the start", flush=True)
    for r in range(args.rounds):
        for name, argv in servers.items():
            results[name].append(measure(helper, argv, args.conns, timeout))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in results.items()), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    ref = statistics.median(results["ncat"]) if "ncat" in results else None
    print("\n| server | us per connection, median (min-max) | vs ncat |")
    print("|---|---|---|")
    for name, xs in results.items():
        m = statistics.median(xs)
        ratio = f"{m / ref:.2f}x" if ref else "-"
        print(f"| {name} | {m:.1f} ({min(xs):.1f}-{max(xs):.1f}) | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
