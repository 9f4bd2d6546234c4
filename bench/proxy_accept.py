#!/usr/bin/env python3
"""What reading a PROXY header costs a server: connections per second through
`serve -k --echo` with no header, with `--accept-proxy` and a v1 header, and with a v2
header (docs/proxy-protocol.md, "Cost").

    python3 bench/proxy_accept.py [STREAMTOOL] [ROUNDS] [CONNECTIONS]

Each connection: connect, send the header and one byte, half-close, read the echo, close;
one at a time, on loopback. The three modes are interleaved ROUNDS times (default 7, of
1000 connections each) so that a busy machine slows them alike; the median and the best
round are printed. The server is ended by its PID.
"""

import socket
import statistics
import struct
import subprocess
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/streamtool"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 1000

V1 = b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 443\r\n"
V2 = (
    b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"
    + bytes([192, 0, 2, 1, 127, 0, 0, 1])
    + struct.pack(">HH", 56324, 443)
)
MODES = [("no header", [], b""), ("accept-proxy, v1", ["--accept-proxy"], V1), ("accept-proxy, v2", ["--accept-proxy"], V2)]


def rate(args: list[str], header: bytes) -> float:
    server = subprocess.Popen(
        [BIN, "serve", "-k", "--echo", *args, "127.0.0.1:0"], stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = server.stderr.readline().decode()
        port = int(line.rsplit(":", 1)[1])
        start = time.perf_counter()
        for _ in range(COUNT):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(header + b"x")
                s.shutdown(socket.SHUT_WR)
                assert s.recv(16) == b"x"
        return COUNT / (time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    results: dict[str, list[float]] = {name: [] for name, _, _ in MODES}
    for _ in range(ROUNDS):
        for name, args, header in MODES:
            results[name].append(rate(args, header))
    for name, rates in results.items():
        print(f"{name}: median {statistics.median(rates):.0f}, best {max(rates):.0f} connections/s")


if __name__ == "__main__":
    main()
