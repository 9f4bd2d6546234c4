#!/usr/bin/env python3
"""pipe as a TLS terminator: handshakes per second and server CPU per handshake with one
runtime thread against one per core, and haproxy as the reference (issue 29, item 5).

    python3 bench/pipe_threads.py                      # 3 rounds x 5 s per server
    python3 bench/pipe_threads.py --rounds 5 --time 10 --clients 6 --no-build

The server under test is `streamtool pipe -q tls-listen:127.0.0.1:P,fork,cert=C,key=K
tcp:127.0.0.1:B` (target/release/streamtool) with `--threads 1` and `--threads 0`, and,
if installed, `haproxy` in `mode tcp` with `bind ... ssl crt` (its default threads) in
front of the same backend. The backend is `streamtool serve -q -k --echo --threads 1`.
The certificate is ECDSA P-256 (`openssl req`), made in a temporary directory.

The load is `--clients` processes of `openssl s_time -new -connect 127.0.0.1:P -time T`
(TLS 1.3, X25519, a full handshake per connection, then close_notify and close), all at
once, so the server always has handshakes waiting. Handshakes per second are the sum of
the connections the clients report over T; CPU per handshake is the server's own CPU
(the sum of `/proc/PID/task/TID/schedstat` run time over every thread; for haproxy, every
process of it) divided by those connections. That CPU is the server's whatever else runs
on the machine, so it holds up under load better than the rate does. "busy" is the
server's CPU over the wall time (1.0 = one core).

The servers take turns, round after round, so a change in the machine's load hits them
all; medians with min-max. Loopback only; every process is ended by PID.
"""

from __future__ import annotations

import argparse
import os
import re
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Waits until 127.0.0.1:port is listening in /proc/net/tcp (without connecting)."""
    want = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"pipe_threads: {proc.args[0]} exited with {proc.returncode} before listening")
        with open("/proc/net/tcp") as f:
            if any(len(p) > 3 and p[1] == want and p[3] == "0A" for p in (line.split() for line in f)):
                return
        time.sleep(0.02)
    raise SystemExit(f"pipe_threads: nothing listens on 127.0.0.1:{port} after {timeout} s")


def cpu_ns(pids: list[int]) -> int:
    """Run time of every thread of these processes, in nanoseconds."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError):
                pass
    return total


def children(pid: int) -> list[int]:
    """The process and its descendants (haproxy's master and worker)."""
    out = [pid]
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.extend(children(int(p)))
    return out


def measure(argv: list[str], port: int, clients: int, seconds: float) -> tuple[float, float, float]:
    """(handshakes per second, microseconds of server CPU per handshake, busy)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        time.sleep(0.3)
        pids = children(proc.pid)
        before, started = cpu_ns(pids), time.monotonic()
        load = [subprocess.Popen(["openssl", "s_time", "-new", "-connect", f"127.0.0.1:{port}",
                                  "-time", str(int(seconds))],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for _ in range(clients)]
        outputs = [c.communicate(timeout=seconds + 30)[0] for c in load]
        elapsed = time.monotonic() - started
        after = cpu_ns(pids)
        done = 0
        for out in outputs:
            # "1234 connections in 5.01s; 246.31 connections/user sec, bytes read 0"
            m = re.search(r"(\d+) connections in [\d.]+s", out)
            if not m:
                raise SystemExit(f"pipe_threads: s_time said: {out.strip()}")
            done += int(m.group(1))
        if done == 0:
            raise SystemExit("pipe_threads: no handshake completed")
        cpu_s = (after - before) / 1e9
        return done / seconds, cpu_s * 1e6 / done, cpu_s / elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=float, default=5.0, help="seconds of load per measurement")
    ap.add_argument("--clients", type=int, default=4, help="concurrent s_time processes")
    ap.add_argument("--no-build", action="store_true", help="use target/release/streamtool as built")
    ap.add_argument("--streamtool", default=str(ROOT / "target" / "release" / "streamtool"))
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "streamtool"], cwd=ROOT,
                       check=True)
    tmp = Path(tempfile.mkdtemp(prefix="pipe_threads."))
    cert, key, both = tmp / "cert.pem", tmp / "key.pem", tmp / "both.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert), "-nodes",
                    "-days", "30"], check=True, capture_output=True)
    both.write_text(cert.read_text() + key.read_text())

    backend_port = free_port()
    backend = subprocess.Popen([args.streamtool, "serve", "-q", "-k", "--echo", "--threads", "1",
                                f"127.0.0.1:{backend_port}"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(backend_port, backend)

    def pipe(threads: str):
        def argv(port: int) -> list[str]:
            return [args.streamtool, "pipe", "-q", "--threads", threads,
                    f"tls-listen:127.0.0.1:{port},fork,cert={cert},key={key}",
                    f"tcp:127.0.0.1:{backend_port}"]
        return argv

    servers = {"pipe --threads 1": pipe("1"), "pipe --threads 0 (per core)": pipe("0")}
    if shutil.which("haproxy"):
        def haproxy(port: int) -> list[str]:
            conf = tmp / f"haproxy-{port}.cfg"
            conf.write_text(
                "global\n  log stderr format raw local0 emerg\n"
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
                f"frontend tls\n  bind 127.0.0.1:{port} ssl crt {both}\n  default_backend echo\n"
                f"backend echo\n  server b 127.0.0.1:{backend_port}\n")
            return ["haproxy", "-db", "-f", str(conf)]
        servers["haproxy (default threads)"] = haproxy
    else:
        print("pipe_threads: haproxy not installed; measuring without it", file=sys.stderr)

    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{args.rounds} rounds x {args.time:g} s, {args.clients} s_time clients, {os.cpu_count()} cores, "
          f"load average {load} at the start", flush=True)
    try:
        for r in range(args.rounds):
            for name, argv in servers.items():
                port = free_port()
                results[name].append(measure(argv(port), port, args.clients, args.time))
            print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1][0]:.0f}/s {v[-1][1]:.0f} us"
                                                 for n, v in results.items()), flush=True)
    finally:
        backend.send_signal(signal.SIGTERM)
        backend.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"load average {load} at the end\n")
    print("| server | handshakes/s, median (min-max) | server CPU per handshake, us | busy (cores) |")
    print("|---|---|---|---|")
    for name, xs in results.items():
        rate, cpu, busy = ([x[i] for x in xs] for i in range(3))
        print(f"| {name} | {statistics.median(rate):.0f} ({min(rate):.0f}-{max(rate):.0f}) "
              f"| {statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f}) "
              f"| {statistics.median(busy):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
