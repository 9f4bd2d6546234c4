"""Memory per idle connection after a burst: does a quiet connection give its buffers back?

    python3 bench/burst_idle.py [BINARY] [--conns N] [--burst BYTES] [--quiet SECONDS]

Starts `BINARY serve -q -k --discard 127.0.0.1:0` (default target/release/streamtool),
opens N connections (default 500) on loopback, sends BURST bytes (default 256 KiB) on each,
keeps them open and silent for QUIET seconds (default 3), and prints the server's RssAnon
growth per connection: idle before the burst, and idle again after it. The server is
killed at the end; every wait is bounded.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def rss_anon_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise RuntimeError("no RssAnon")


def listening_port(pid: int, deadline: float) -> int:
    """The TCP port `pid` listens on, from `ss -ltnpH`."""
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if f"pid={pid}," in line:
                return int(line.split()[3].rsplit(":", 1)[1])
        time.sleep(0.05)
    raise RuntimeError("the server did not listen")


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", nargs="?", default=str(root / "target/release/streamtool"))
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--burst", type=int, default=256 * 1024)
    ap.add_argument("--quiet", type=float, default=3.0)
    args = ap.parse_args()
    server = subprocess.Popen([args.binary, "serve", "-q", "-k", "--discard", "127.0.0.1:0"],
                              stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    conns = []
    try:
        port = listening_port(server.pid, time.monotonic() + 10)
        base = rss_anon_kib(server.pid)
        for _ in range(args.conns):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)
        idle = rss_anon_kib(server.pid)
        data = os.urandom(args.burst)
        for s in conns:
            s.sendall(data)
        time.sleep(args.quiet)
        after = rss_anon_kib(server.pid)
        n = args.conns
        print(f"{n} connections: idle {(idle - base) / n:.1f} KiB each; after a {args.burst // 1024} KiB "
              f"burst each and {args.quiet:g} s quiet: {(after - base) / n:.1f} KiB each")
    finally:
        for s in conns:
            s.close()
        server.kill()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
