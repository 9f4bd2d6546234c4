#!/usr/bin/env python3
"""Server CPU per full TLS handshake of one or more streamtool binaries, by `perf stat`.

    python3 bench/handshake_perf.py /tmp/st-ring /tmp/st-awslc          # 10 s each, RSA and ECDSA
    python3 bench/handshake_perf.py --time 5 --rounds 3 --keys ec --openssl A B

For each round, each key type (RSA-2048, ECDSA P-256) and each binary, in that order (so
that noise from the rest of the machine spreads over all binaries): starts
`BINARY serve -q -k --tls --ragged-eof ignore --cert C --key K 127.0.0.1:P` under `perf stat -e
task-clock,context-switches` (every thread of the server counted, start-up included), loads
it with `openssl s_time -new -time T -ciphersuites TLS_AES_128_GCM_SHA256` (X25519, a full
handshake per connection), then ends it by PID (SIGTERM). Prints task-clock per handshake
(microseconds), handshakes per second and context switches per handshake, the median of the
rounds, and the load average. The server's start-up (certificate loading, runtime) is
measured once per binary without load (`--rounds` runs of `serve` started and stopped) and
subtracted. With --openssl, `openssl s_server -quiet` is measured the same way, last.

Loopback only; certificates made with `openssl req` in a temporary directory, deleted at the
end. Needs perf and openssl. Compare with `bench/run.py --only handshake-rsa,handshake-ec`,
which measures the same against openssl s_server and the other peers (from /proc, 10 ms
ticks).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "TLS_AES_128_GCM_SHA256"
OPENSSL = "openssl s_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> bool:
    """Waits until 127.0.0.1:port is listening in /proc/net/tcp (without connecting)."""
    want = f"0100007F:{port:04X}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        with open("/proc/net/tcp") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 3 and parts[1] == want and parts[3] == "0A":
                    return True
        time.sleep(0.02)
    return False


def server_pid(perf: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """The server: perf's only child."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            kids = Path(f"/proc/{perf.pid}/task/{perf.pid}/children").read_text().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    return None


def server_argv(binary: str, cert: Path, key: Path, port: int) -> list[str]:
    if binary == OPENSSL:
        return ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
                "-quiet"]
    return [binary, "serve", "-q", "-k", "--tls", "--ragged-eof", "ignore", "--cert", str(cert), "--key", str(key),
            f"127.0.0.1:{port}"]


def one(binary: str, cert: Path, key: Path, seconds: float, work: Path) -> dict:
    """One server under perf stat, loaded for `seconds` (0: no load, start and stop)."""
    port = free_port()
    out = work / "perf.csv"
    # stdin a pipe held open until the end (s_server ends at EOF on stdin)
    perf = subprocess.Popen(
        ["perf", "stat", "-x,", "-o", str(out), "-e", "task-clock,context-switches", "--",
         *server_argv(binary, cert, key, port)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = None
    try:
        pid = server_pid(perf)
        if pid is None or not wait_listening(port, perf):
            raise RuntimeError(f"{binary} did not start listening")
        handshakes = 0
        if seconds > 0:
            r = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time",
                                f"{seconds:g}", "-ciphersuites", SUITE], capture_output=True, text=True,
                               timeout=seconds + 60)
            m = re.search(r"(\d+) connections in [\d.]+s", r.stdout)
            if not m:
                raise RuntimeError(f"s_time said: {r.stdout[-300:]} {r.stderr[-300:]}")
            handshakes = int(m.group(1))
        os.kill(pid, signal.SIGTERM)
        pid = None
        perf.wait(timeout=30)
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if perf.poll() is None:
            perf.kill()
            perf.wait()
        perf.stdin.close()
    stats = {}
    for line in out.read_text().splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0] and not line.startswith("#"):
            try:
                stats[f[2]] = float(f[0])
            except ValueError:
                pass
    return {"task_ms": stats.get("task-clock", float("nan")), "cs": stats.get("context-switches", float("nan")),
            "handshakes": handshakes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", metavar="[LABEL=]BINARY", help="streamtool binaries to compare")
    ap.add_argument("--time", type=float, default=10.0, help="seconds of s_time per measurement (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="measurements per binary and key type (default 3)")
    ap.add_argument("--keys", default="rsa,ec", help="comma-separated: rsa (RSA-2048), ec (ECDSA P-256)")
    ap.add_argument("--openssl", action="store_true",
                    help="also measure `openssl s_server -quiet` the same way (the reference of issue 7)")
    args = ap.parse_args()
    bins = []
    for spec in args.binaries:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = Path(spec).name, spec
        if not os.access(path, os.X_OK):
            sys.exit(f"handshake_perf.py: {path} is not an executable file")
        bins.append((label, str(Path(path).resolve())))
    if args.openssl:
        bins.append(("s_server", OPENSSL))
    keys = [k for k in args.keys.split(",") if k]
    if set(keys) - {"rsa", "ec"}:
        sys.exit("handshake_perf.py: --keys takes rsa and/or ec")

    with tempfile.TemporaryDirectory(prefix="streamtool-hs.") as tmp:
        work = Path(tmp)
        subj = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30",
                "-nodes"]
        certs = {"rsa": (work / "rsa.pem", work / "rsa.key"), "ec": (work / "ec.pem", work / "ec.key")}
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", *subj, "-keyout", str(certs["rsa"][1]),
                        "-out", str(certs["rsa"][0])], check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", *subj,
                        "-keyout", str(certs["ec"][1]), "-out", str(certs["ec"][0])], check=True,
                       capture_output=True)
        print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        startup = {}
        for label, path in bins:
            startup[label] = statistics.median(
                one(path, *certs["rsa"], 0, work)["task_ms"] for _ in range(max(1, args.rounds)))
            print(f"{label}: start-up and stop without load {startup[label]:.1f} ms task-clock", flush=True)
        results: dict[tuple[str, str], list[dict]] = {}
        for rnd in range(args.rounds):
            for k in keys:
                for label, path in bins:
                    r = one(path, *certs[k], args.time, work)
                    r["load"] = os.getloadavg()[0]
                    n = r["handshakes"] or float("nan")
                    r["us"] = (r["task_ms"] - startup[label]) * 1000 / n
                    results.setdefault((k, label), []).append(r)
                    print(f"round {rnd + 1} {k:3} {label:12} {r['handshakes']:6d} handshakes, "
                          f"{r['us']:7.1f} us CPU each, {r['cs'] / n:5.2f} context switches each "
                          f"(load {r['load']:.2f})", flush=True)
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"\n| key | binary | median us CPU per handshake | min–max | handshakes/s | context switches "
              f"per handshake | vs {bins[0][0]} |" + (" vs s_server |" if args.openssl else ""))
        print("|---|---|---|---|---|---|---|" + ("---|" if args.openssl else ""))
        for k in keys:
            base = statistics.median(r["us"] for r in results[(k, bins[0][0])])
            ossl = statistics.median(r["us"] for r in results[(k, "s_server")]) if args.openssl else 0
            for label, _ in bins:
                rs = results[(k, label)]
                us = [r["us"] for r in rs]
                m = statistics.median(us)
                rate = statistics.median(r["handshakes"] / args.time for r in rs)
                cs = statistics.median(r["cs"] / max(1, r["handshakes"]) for r in rs)
                print(f"| {'RSA-2048' if k == 'rsa' else 'ECDSA P-256'} | {label} | {m:.0f} | "
                      f"{min(us):.0f}–{max(us):.0f} | {rate:.0f} | {cs:.2f} | {m / base:.2f}x |"
                      + (f" {m / ossl:.2f}x |" if args.openssl else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
