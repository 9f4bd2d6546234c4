#!/usr/bin/env python3
"""TLS handshakes per second of `serve -k --tls` as one process (the default current-thread
runtime), as one process with `--threads 0` (a worker per core), and as two processes on
one port with `--reuse-port`, side by side (issue 23; docs/performance.md, "Several
processes on one port").

    python3 bench/reuse_port.py [STREAMTOOL] [ROUNDS] [SECONDS] [CLIENTS]

The load is CLIENTS (default 2) `openssl s_time -new` processes for SECONDS (default 5)
each: full TLS 1.3 handshakes with X25519, an ECDSA P-256 certificate made by
`streamtool gen-cert` (and RSA-2048 made by openssl), TLS_AES_128_GCM_SHA256, nothing
sent. The configurations are interleaved ROUNDS times (default 3) so that a busy machine
slows them alike; the median and range of handshakes/s are printed, with the servers'
CPU seconds per 1,000 handshakes, and each against the one-process default. On a
2-core machine the clients compete with the servers for the same cores: the numbers say
how far a second process or thread helps there, not what a larger machine would do.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/streamtool")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
CLIENTS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
CLK = os.sysconf("SC_CLK_TCK")
CONFIGS = [
    ("1 process", 1, []),
    ("1 process, --threads 0", 1, ["--threads", "0"]),
    ("2 processes, --reuse-port", 2, ["--reuse-port"]),
]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, extra: list[str], cert: str, key: str, log: str) -> subprocess.Popen:
    with open(log, "wb") as err:
        server = subprocess.Popen(
            [BIN, "serve", "-k", "--tls", "--ragged-eof", "ignore", "--grace", "1s", "--cert", cert, "--key", key,
             *extra, f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(log, "rb") as f:
            if b"listening on" in f.read():
                return server
        if server.poll() is not None:
            break
        time.sleep(0.02)
    raise SystemExit(f"the server did not start: {open(log).read()}")


def load(port: int) -> int:
    clients = [
        subprocess.Popen(
            ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(SECONDS),
             "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        for _ in range(CLIENTS)
    ]
    total = 0
    for client in clients:
        out, _ = client.communicate(timeout=SECONDS + 30)
        m = re.search(rb"(\d+) connections in [\d.]+s", out)
        if not m:
            raise SystemExit(f"s_time failed: {out.decode(errors='replace')[-300:]}")
        total += int(m.group(1))
    return total


def measure(processes: int, extra: list[str], cert: str, key: str) -> tuple[float, float]:
    port = free_port()
    logs = os.path.join(os.path.dirname(cert), "server")
    servers = [start(port, extra, cert, key, f"{logs}-{i}.log") for i in range(processes)]
    try:
        before = sum(cpu_seconds(s.pid) for s in servers)
        count = load(port)
        cpu = sum(cpu_seconds(s.pid) for s in servers) - before
        return count / SECONDS, cpu / count * 1000
    finally:
        for s in servers:
            s.terminate()
            try:
                s.wait(timeout=15)
            except subprocess.TimeoutExpired:
                s.kill()
                s.wait()


def certificates(tmp: str) -> dict[str, tuple[str, str]]:
    env = dict(os.environ, STREAMTOOL_CA_DIR=os.path.join(tmp, "ca"))
    subprocess.run([BIN, "gen-cert", "--cert-file", f"{tmp}/ec.pem", "--key-file", f"{tmp}/ec-key.pem", "127.0.0.1"],
                   check=True, capture_output=True, env=env)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/rsa-key.pem",
                    "-out", f"{tmp}/rsa.pem", "-subj", "/CN=127.0.0.1", "-days", "2"], check=True, capture_output=True)
    return {"ECDSA P-256": (f"{tmp}/ec.pem", f"{tmp}/ec-key.pem"), "RSA-2048": (f"{tmp}/rsa.pem", f"{tmp}/rsa-key.pem")}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (cert, key) in certificates(tmp).items():
            rates: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
            cpus: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
            for _ in range(ROUNDS):
                for name, processes, extra in CONFIGS:
                    rate, cpu = measure(processes, extra, cert, key)
                    rates[name].append(rate)
                    cpus[name].append(cpu)
            base = statistics.median(rates[CONFIGS[0][0]])
            print(f"\n{kind}, {CLIENTS} s_time clients x {SECONDS} s, {ROUNDS} rounds, load average "
                  f"{os.getloadavg()[0]:.2f}")
            print("| configuration | handshakes/s (median) | min-max | vs 1 process | server CPU s per 1,000 |")
            print("|---|---:|---:|---:|---:|")
            for name, _, _ in CONFIGS:
                r = rates[name]
                print(f"| {name} | {statistics.median(r):.0f} | {min(r):.0f}-{max(r):.0f} | "
                      f"{statistics.median(r) / base:.2f}x | {statistics.median(cpus[name]):.2f} |")


if __name__ == "__main__":
    main()
