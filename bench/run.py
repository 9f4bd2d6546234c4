#!/usr/bin/env python3
"""Side-by-side benchmark of streamtool against socat, ncat, OpenBSD nc and openssl (issue 7),
and of its datagrams (issue 21).

    python3 bench/run.py            # everything, 5 runs each (about 10-15 minutes, 2 cores)
    python3 bench/run.py --quick    # a smoke run: small sizes, 1 run each (about 2 minutes)
    python3 bench/run.py --doc      # also write the results into docs/performance.md
                                    # and the chart into docs/perf-throughput.svg
    python3 bench/run.py --only dump --runs 3
                                    # what recording the traffic costs (issue 22; only when
                                    # named: socat -x takes minutes per run)
    python3 bench/run.py --only udp --runs 5
                                    # datagrams (issue 21): UDP relays and echo servers
                                    # against socat and ncat, iperf3 as the limit, with
                                    # bench/udp_load.c at the ends (only when named)
    python3 bench/run.py --only handshake-rsa,tls \
        --streamtool ring=/tmp/st-ring --streamtool aws-lc=/tmp/st-awslc
                                    # two streamtool builds side by side, same run

Loopback only (127.0.0.1), on ports picked free by the script. Every process is started
under `helper reap` (bench/helper.c, a child subreaper), so wait4() reports the CPU time and
peak RSS of the whole process tree, forks included; every process is ended by PID, also on
Ctrl-C. Every transfer is checked byte for byte against the file that was sent.

See docs/performance.md ("Against the peers") for what each scenario runs and why.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STREAMTOOL = ROOT / "target" / "release" / "streamtool"
GIB = 1 << 30
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SUITE128 = "TLS_AES_128_GCM_SHA256"
SUITE256 = "TLS_AES_256_GCM_SHA384"

# Filled in by main().
HELPER = ""
TLS_SEND = ""  # bench/tls_send.c, built beside the helper
WORK: Path = Path()
LOGS: Path = Path()
VERBOSE = False


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def vlog(msg: str) -> None:
    if VERBOSE:
        log(msg)


# ---------------------------------------------------------------------------------------
# Processes: started under `helper reap`, tracked, ended by PID.
# ---------------------------------------------------------------------------------------

LIVE: set["Proc"] = set()
REPORTS = 0


class Proc:
    """A started process. With reap=True it runs under `helper reap`, so the rusage that
    wait4() returns covers the whole tree (the tool and every process it forks)."""

    def __init__(self, name: str, argv: list[str], *, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=None, env=None, reap: bool = True):
        self.name = name
        self.argv = argv
        self.report = None
        if reap:
            global REPORTS
            REPORTS += 1
            self.report = WORK / "rusage" / f"{REPORTS}"
            cmd = [HELPER, "reap", str(self.report), *argv]
        else:
            cmd = argv
        if stderr is None:
            stderr = open(LOGS / f"{safe(name)}.err", "ab")
            self._err = stderr
        else:
            self._err = None
        vlog(f"  start {name}: {' '.join(argv)}")
        self.popen = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                      start_new_session=True, close_fds=True)
        self.pid = self.popen.pid
        self.status: int | None = None
        self.rusage = None
        self.killed = False
        LIVE.add(self)

    def poll(self) -> bool:
        if self.status is not None:
            return True
        try:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.status, self.rusage = -1, None
            self._done()
            return True
        if pid == 0:
            return False
        self.status = os.waitstatus_to_exitcode(status)
        self.rusage = ru
        self._done()
        if self.report:
            # the wrapper's own figures: CPU of the tree, and a peak RSS that is not
            # inherited from this Python process (ru_maxrss survives fork and exec)
            try:
                _, ut, st, rss = self.report.read_text().split()
                self.rusage = Usage(int(ut) / 1e6, int(st) / 1e6, int(rss))
            except (OSError, ValueError):
                pass
        return True

    def _done(self) -> None:
        self.popen.returncode = self.status
        LIVE.discard(self)
        if self._err:
            self._err.close()
            self._err = None

    def wait(self, deadline: float) -> bool:
        while not self.poll():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.004)
        return True

    def cpu(self) -> float:
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else float("nan")

    def maxrss_kib(self) -> int:
        return self.rusage.ru_maxrss if self.rusage else 0

    def end(self, grace: float = 2.0) -> None:
        """SIGTERM the process and each of its descendants (by PID), SIGKILL what is left
        after `grace` seconds, and reap."""
        if self.poll():
            return
        self.killed = True
        signal_tree(self.pid, signal.SIGTERM)
        if self.wait(time.monotonic() + grace):
            return
        signal_tree(self.pid, signal.SIGKILL)
        self.wait(time.monotonic() + 5)


@dataclass
class Usage:
    ru_utime: float
    ru_stime: float
    ru_maxrss: int


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(d))
    return out


def descendants(root: int) -> list[int]:
    kids = children_map()
    out, stack = [], [root]
    while stack:
        for c in kids.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def signal_tree(pid: int, sig: int) -> None:
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def cleanup_all() -> None:
    """End every process this script started, by PID: tracked ones first, then any stray
    descendant (this script is a child subreaper, so orphans come back to it)."""
    for p in list(LIVE):
        try:
            p.end(grace=1.0)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    me = os.getpid()
    strays = descendants(me)
    for p in strays:
        try:
            os.kill(p, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    if strays:
        time.sleep(0.3)
    for p in descendants(me):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reap_strays()


def reap_strays() -> None:
    tracked = {p.pid for p in LIVE}
    for p in children_map().get(os.getpid(), []):
        if p in tracked:
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                os.waitpid(p, os.WNOHANG)
        except (OSError, ChildProcessError):
            pass


def set_subreaper() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


class Lines(threading.Thread):
    """Collects the lines a process prints; wait_for() blocks until one starts with a prefix."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.eof = False
        self.start()

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, prefix: str, deadline: float) -> str | None:
        with self.cond:
            while True:
                for _, line in self.lines:
                    if line.startswith(prefix):
                        return line
                if self.eof:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))


# ---------------------------------------------------------------------------------------
# Ports, /proc helpers
# ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    want = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def wait_listening(port: int, proc: Proc, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
            return True
        if proc.poll():
            return False
        time.sleep(0.01)
    return False


def tree_cpu_ticks(root: int) -> int:
    """CPU ticks of a reap wrapper's tree right now: what it reaped plus what is alive."""
    total = 0
    for i, p in enumerate([root, *descendants(root)]):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ut, st, cut, cst = (int(x) for x in fields[11:15])
        total += cut + cst + (ut + st if i else 0)
    return total


def tree_anon_kib(root: int) -> int:
    """Proportional anonymous memory (Pss_Anon, KiB) of a reap wrapper's descendants, so
    that copy-on-write pages shared by forks are counted once."""
    total = 0
    for p in descendants(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss_Anon:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------

@dataclass
class Run:
    ok: bool
    value: float = float("nan")      # GiB/s, us, conn/s or KiB, depending on the scenario
    cpu_per_gib: float = float("nan")
    cpu_s: float = float("nan")
    rss_kib: int = 0
    seconds: float = float("nan")
    extra: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class Case:
    scenario: str
    tool: str
    ours: bool
    runner: object
    note: str = ""
    suite: str = ""
    ref: bool = False  # a reference row (the neutral ends alone), not a peer
    runs: list[Run] = field(default_factory=list)
    base: str = ""  # `dump`: the same tool's unrecorded row, compared with
    vs: str = ""    # `dump`: the peer row compared with (socat -x)


def med(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------------------
# One run of each kind
# ---------------------------------------------------------------------------------------

class Ctx:
    def __init__(self, args):
        self.args = args
        self.timeout = args.timeout
        self.cert = WORK / "rsa.pem"
        self.key = WORK / "rsa.key"
        self.ec_cert = WORK / "ec.pem"
        self.ec_key = WORK / "ec.key"
        self.plain = WORK / "plain.bin"
        self.tls = WORK / "tls.bin"
        self.dump = WORK / "dump.bin"  # the `dump` scenario's data (--dump-size)
        self.conf = {SUITE128: WORK / "aes128.cnf", SUITE256: WORK / "aes256.cnf"}

    def env(self, suite: str | None) -> dict:
        env = dict(os.environ)
        env.pop("SSLKEYLOGFILE", None)
        env["RUST_LOG"] = "error"
        if suite:
            env["OPENSSL_CONF"] = str(self.conf[suite])
        return env


def fmt_argv(argv: list[str], **kw) -> list[str]:
    return [a.format(**kw) for a in argv]


def transfer(ctx: Ctx, name: str, server: list[str], client: list[str], data: Path, *,
             client_stdin: str = "file", server_stdin: str = "null",
             suite: str | None = None, client_stderr: Path | None = None,
             timeout: float | None = None) -> Run:
    """Tool server -> stdout -> `helper check`; tool client <- data (file, pipe or a pipe
    held open until the checker has every byte). Times client start to last byte checked.
    `client_stderr`: a file the client's stderr goes to (socat -x's dump), else the logs;
    `timeout`: this run's limit instead of --timeout."""
    size = data.stat().st_size
    port = free_port()
    env = ctx.env(suite)
    procs: list[Proc] = []
    held: list[int] = []
    try:
        r, w = os.pipe()
        check = Proc(f"{name}.check", [HELPER, "check", str(data)], stdin=r,
                     stdout=subprocess.PIPE, reap=False)
        procs.append(check)
        lines = Lines(check.popen.stdout)
        if server_stdin == "hold":
            sr, sw = os.pipe()
            held.append(sw)
            sin = sr
        else:
            sin = subprocess.DEVNULL
        srv = Proc(f"{name}.server", fmt_argv(server, port=port), stdin=sin, stdout=w, env=env)
        procs.append(srv)
        os.close(r)
        os.close(w)
        if server_stdin == "hold":
            os.close(sin)
        if not wait_listening(port, srv):
            return Run(False, note=f"server did not listen (exit {srv.status})")
        feeder = None
        if client_stdin == "file":
            cin = open(data, "rb")
        else:
            fr, fw = os.pipe()
            feeder = Proc(f"{name}.feeder", ["cat", str(data)], stdout=fw, reap=False)
            procs.append(feeder)
            if client_stdin == "hold":
                held.append(fw)  # EOF only once the checker has everything
            else:
                os.close(fw)
            cin = fr
        t0 = time.monotonic_ns()
        cerr = open(client_stderr, "wb") if client_stderr else None
        try:
            cli = Proc(f"{name}.client", fmt_argv(client, port=port), stdin=cin, env=env, stderr=cerr)
        finally:
            if cerr:
                cerr.close()
        procs.append(cli)
        if isinstance(cin, int):
            os.close(cin)
        else:
            cin.close()
        deadline = time.monotonic() + (timeout or ctx.timeout)
        done = lines.wait_for("DONE", deadline)
        if done is None:
            return Run(False, note="timed out" if time.monotonic() >= deadline else
                       "checker ended early")
        t_done = int(done.split()[1])
        for fd in held:
            os.close(fd)
        held.clear()
        end = lines.wait_for("END", deadline)
        verdict = end.split()[2] if end else "no verdict"
        got = int(end.split()[1]) if end else 0
        # the tools get a few seconds after the last byte to exit on their own
        grace = min(deadline, time.monotonic() + 5)
        notes = []
        for p in (cli, srv):
            if not p.wait(grace):
                p.end()
                notes.append(f"{p.name.rsplit('.', 1)[1]} killed after the transfer")
            elif p.status not in (0,):
                notes.append(f"{p.name.rsplit('.', 1)[1]} exit {p.status}")
        check.wait(time.monotonic() + 5)
        secs = (t_done - t0) / 1e9
        ok = verdict == "ok" and got == size
        if not ok:
            notes.insert(0, f"check: {verdict} ({got} of {size} bytes)")
        cpu = srv.cpu() + cli.cpu()
        return Run(ok, value=size / GIB / secs, seconds=secs, cpu_s=cpu,
                   cpu_per_gib=cpu / (size / GIB), rss_kib=max(srv.maxrss_kib(), cli.maxrss_kib()),
                   extra={"server_cpu": srv.cpu(), "client_cpu": cli.cpu(),
                          "server_rss_kib": srv.maxrss_kib(), "client_rss_kib": cli.maxrss_kib()},
                   note="; ".join(notes))
    finally:
        for fd in held:
            os.close(fd)
        for p in reversed(procs):
            p.end()


def relay(ctx: Ctx, name: str, relay_argv: list[str], data: Path, *, tls_suite: str | None = None) -> Run:
    """`helper send` (plain) or tls_send (TLS, C or Python) -> the tool's relay -> `helper sink`.
    Only the relay's CPU and memory are counted."""
    size = data.stat().st_size
    procs: list[Proc] = []
    try:
        sink = Proc(f"{name}.sink", [HELPER, "sink", str(data)], stdout=subprocess.PIPE, reap=False)
        procs.append(sink)
        lines = Lines(sink.popen.stdout)
        pl = lines.wait_for("PORT", time.monotonic() + 10)
        if not pl:
            return Run(False, note="sink did not start")
        dest = int(pl.split()[1])
        port = free_port()
        env = ctx.env(tls_suite)
        rel = Proc(f"{name}.relay", fmt_argv(relay_argv, port=port, dest=dest), env=env)
        procs.append(rel)
        if not wait_listening(port, rel):
            return Run(False, note=f"relay did not listen (exit {rel.status})")
        if tls_suite and ctx.args.tls_sender == "python":
            sender_argv = [sys.executable, str(BENCH / "tls_send.py"), str(port), str(data)]
        elif tls_suite:
            unbuffered = ["--unbuffered"] if ctx.args.tls_sender == "c-unbuffered" else []
            sender_argv = [TLS_SEND, str(port), str(data), *unbuffered]
        else:
            sender_argv = [HELPER, "send", str(port), str(data)]
        t0 = time.monotonic_ns()
        errlog = open(LOGS / f"{safe(name)}.sender.err", "w+b")
        sender = Proc(f"{name}.sender", sender_argv, env=env, stderr=errlog, reap=False)
        procs.append(sender)
        deadline = time.monotonic() + ctx.timeout
        done = lines.wait_for("DONE", deadline)
        if done is None:
            return Run(False, note="timed out" if time.monotonic() >= deadline else "sink ended early")
        t_done = int(done.split()[1])
        end = lines.wait_for("END", deadline)
        verdict = end.split()[2] if end else "no verdict"
        got = int(end.split()[1]) if end else 0
        grace = min(deadline, time.monotonic() + 5)
        notes = []
        for p in (sender, rel):
            if not p.wait(grace):
                p.end()
                notes.append(f"{p.name.rsplit('.', 1)[1]} killed after the transfer")
            elif p.status != 0:
                notes.append(f"{p.name.rsplit('.', 1)[1]} exit {p.status}")
        errlog.seek(0)
        m = re.search(rb"SUITE (\S+)", errlog.read())
        errlog.close()
        secs = (t_done - t0) / 1e9
        ok = verdict == "ok" and got == size
        if not ok:
            notes.insert(0, f"check: {verdict} ({got} of {size} bytes)")
        return Run(ok, value=size / GIB / secs, seconds=secs, cpu_s=rel.cpu(),
                   cpu_per_gib=rel.cpu() / (size / GIB), rss_kib=rel.maxrss_kib(),
                   extra={"suite": m.group(1).decode() if m else ""}, note="; ".join(notes))
    finally:
        for p in reversed(procs):
            p.end()


def ends_only(ctx: Ctx, name: str, data: Path) -> Run:
    """`helper send` -> `helper sink` with nothing in between: the ceiling of the relay
    scenario on this machine."""
    size = data.stat().st_size
    procs: list[Proc] = []
    try:
        sink = Proc(f"{name}.sink", [HELPER, "sink", str(data)], stdout=subprocess.PIPE, reap=False)
        procs.append(sink)
        lines = Lines(sink.popen.stdout)
        pl = lines.wait_for("PORT", time.monotonic() + 10)
        if not pl:
            return Run(False, note="sink did not start")
        t0 = time.monotonic_ns()
        sender = Proc(f"{name}.sender", [HELPER, "send", pl.split()[1], str(data)], reap=False)
        procs.append(sender)
        deadline = time.monotonic() + ctx.timeout
        done = lines.wait_for("DONE", deadline)
        end = lines.wait_for("END", deadline)
        if not done or not end:
            return Run(False, note="timed out")
        ok = end.split()[2] == "ok"
        secs = (int(done.split()[1]) - t0) / 1e9
        sender.wait(deadline)
        return Run(ok, value=size / GIB / secs, seconds=secs, note="" if ok else end)
    finally:
        for p in reversed(procs):
            p.end()


def via_proxy(ctx: Ctx, name: str, client: list[str], data: Path, kind: str = "socks5") -> Run:
    """A plain transfer (`socat -u` server, the tool as the client, stdin from a file) through
    a proxy started for the run on its own port (`{pport}` in `client`): microsocks for
    SOCKS5, tinyproxy for HTTP CONNECT (any port allowed, loopback clients only). The
    proxy is the same for every tool, so the rows compare the clients' proxy support."""
    pport = free_port()
    if kind == "http":
        conf = Path(tempfile.mkdtemp(prefix="bench-tinyproxy-")) / "tinyproxy.conf"
        conf.write_text(f"Port {pport}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 20\n"
                        "LogLevel Warning\n")
        argv = ["tinyproxy", "-d", "-c", str(conf)]
    else:
        argv = ["microsocks", "-i", "127.0.0.1", "-p", str(pport)]
    proxy = Proc(f"{name}.proxy", argv, reap=False)
    try:
        if not wait_listening(pport, proxy):
            return Run(False, note=f"{argv[0]} did not listen")
        server = ["socat", "-u", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "STDOUT"]
        argv = [a.replace("{pport}", str(pport)) for a in client]
        return transfer(ctx, name, server, argv, data)
    finally:
        proxy.end()


def recorded(ctx: Ctx, name: str, server: list[str], client: list[str], data: Path, *,
             to_stderr: bool = False, min_ratio: float = 0.0) -> Run:
    """`transfer()` with the client recording the traffic to a file (`{dump}` in `client`,
    or the client's stderr with `to_stderr`, for socat -x). The file goes under the work
    directory and is deleted after the run; its size is kept (extra["dump_bytes"]), and a
    run whose file is smaller than `min_ratio` x the data (nothing recorded) is BAD.
    Without a recording (neither `{dump}` nor `to_stderr`) it is `transfer()`, so the
    unrecorded rows are measured the same way."""
    size = data.stat().st_size
    dumps = WORK / "dumps"
    dumps.mkdir(exist_ok=True)
    out = dumps / safe(name)
    records = to_stderr or any("{dump}" in a for a in client)
    # a hex dump is about 4.4x the data: want that much free, and a margin
    if records and shutil.disk_usage(dumps).free < 5 * size + 256 * MIB:
        return Run(False, note=f"not enough free space in {dumps} for the recording")
    argv = [a.replace("{dump}", str(out)) for a in client]
    try:
        # socat -x costs about 800 CPU s/GiB here (a write(2) per byte): a recording run
        # may take longer than --timeout, up to 1500 s/GiB
        limit = max(ctx.timeout, 1500 * size / GIB) if records else ctx.timeout
        r = transfer(ctx, name, server, argv, data, client_stderr=out if to_stderr else None,
                     timeout=limit)
        r.extra["client_cpu_per_gib"] = r.extra.get("client_cpu", float("nan")) / (size / GIB)
        if records:
            got = out.stat().st_size if out.exists() else 0
            r.extra["dump_bytes"] = got
            if got < min_ratio * size:
                r.ok = False
                r.note = "; ".join(x for x in (r.note, f"recording only {got} bytes") if x)
        return r
    finally:
        out.unlink(missing_ok=True)


def start_server(ctx: Ctx, name: str, argv: list[str], port: int, *, hold: bool,
                 suite: str | None) -> tuple[Proc | None, int | None, str]:
    if hold:
        r, w = os.pipe()
        srv = Proc(name, fmt_argv(argv, port=port), stdin=r, env=ctx.env(suite))
        os.close(r)
    else:
        w = None
        srv = Proc(name, fmt_argv(argv, port=port), env=ctx.env(suite))
    if not wait_listening(port, srv):
        if w is not None:
            os.close(w)
        srv.end()
        return None, None, f"server did not listen (exit {srv.status})"
    return srv, w, ""


def server_window(ctx: Ctx, name: str, argv: list[str], *, hold: bool, suite: str | None,
                  load) -> Run:
    """Starts a keep-open server, runs `load(port)` -> (count, seconds, note) against it, and
    charges the server's CPU from just before the load until it is stopped (by PID) after."""
    port = free_port()
    srv, w, err = start_server(ctx, f"{name}.server", argv, port, hold=hold, suite=suite)
    if srv is None:
        return Run(False, note=err)
    try:
        time.sleep(0.2)
        before = tree_cpu_ticks(srv.pid) / CLK_TCK
        count, secs, note = load(port)
        time.sleep(0.2)
        alive = not srv.poll()
        srv.end(grace=3.0)
        cpu = srv.cpu() - before
        if not count:
            return Run(False, note=note or "no successful connection")
        if not alive:
            note = (note + "; " if note else "") + f"server exited during the load ({srv.status})"
        return Run(bool(count) and alive, value=cpu / count * 1e6, cpu_s=cpu, seconds=secs,
                   rss_kib=srv.maxrss_kib(), extra={"count": count, "per_s": count / secs},
                   note=note)
    finally:
        if w is not None:
            os.close(w)
        srv.end()


def s_time_load(ctx: Ctx, seconds: float):
    def load(port: int):
        out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                              "-time", str(int(seconds)), "-ciphersuites", SUITE128],
                             capture_output=True, timeout=seconds + ctx.timeout, env=ctx.env(None))
        m = re.search(rb"(\d+) connections in ([\d.]+)s", out.stdout)
        m2 = re.search(rb"(\d+) connections in (\d+) real seconds", out.stdout)
        if not m:
            return 0, 0.0, "s_time: " + out.stdout.decode(errors="replace")[-200:]
        n = int(m.group(1))
        real = float(m2.group(2)) if m2 else seconds
        return n, real, ""
    return load


def conns_load(ctx: Ctx, n: int):
    def load(port: int):
        out = subprocess.run([HELPER, "conns", str(port), str(n)], capture_output=True,
                             timeout=ctx.timeout)
        m = re.search(rb"CONNS (\d+) (\d+) (\d+)", out.stdout)
        if not m:
            return 0, 0.0, "conns: " + (out.stdout + out.stderr).decode(errors="replace")[-200:]
        ok, failed, ns = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return ok, ns / 1e9, (f"{failed} failed" if failed else "")
    return load


def idle(ctx: Ctx, name: str, argv: list[str], n: int, *, tls: bool, suite: str | None) -> Run:
    """Opens n idle connections (plain: `helper idle`; TLS: handshaken here with Python's ssl)
    to a keep-open server and charges it the growth of its anonymous memory (Pss_Anon)."""
    port = free_port()
    srv, w, err = start_server(ctx, f"{name}.server", argv, port, hold=True, suite=suite)
    if srv is None:
        return Run(False, note=err)
    socks: list = []
    holder = None
    try:
        time.sleep(0.5)
        before = tree_anon_kib(srv.pid)
        deadline = time.monotonic() + ctx.timeout
        opened = 0
        if tls:
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            c.check_hostname = False
            c.verify_mode = ssl.CERT_NONE
            for _ in range(n):
                if time.monotonic() > deadline:
                    break
                try:
                    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                    socks.append(c.wrap_socket(raw))
                    opened += 1
                except OSError:
                    break
        else:
            holder = Proc(f"{name}.idle", [HELPER, "idle", str(port), str(n)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, reap=False)
            lines = Lines(holder.popen.stdout)
            ready = lines.wait_for("READY", deadline)
            opened = int(ready.split()[1]) if ready else 0
        # let the server accept everything (forking servers take a while): sample until
        # two samples 0.5 s apart agree within 1% of the growth, for at most 15 s
        time.sleep(0.5)
        after = tree_anon_kib(srv.pid)
        settle = time.monotonic() + 15
        while time.monotonic() < settle:
            time.sleep(0.5)
            now = tree_anon_kib(srv.pid)
            if abs(now - after) <= max(0.01 * (now - before), 8):
                after = max(now, after)
                break
            after = now
        alive = not srv.poll()
        note = "" if opened == n else f"only {opened} of {n} connections opened"
        if not alive:
            note += f"; server exited ({srv.status})"
        return Run(opened == n and alive, value=(after - before) / max(opened, 1),
                   extra={"before_kib": before, "after_kib": after, "conns": opened}, note=note)
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        if holder:
            try:
                holder.popen.stdin.close()
            except OSError:
                pass
            holder.wait(time.monotonic() + 5)
            holder.end()
        if w is not None:
            os.close(w)
        srv.end()


# ---------------------------------------------------------------------------------------
# The scenarios
# ---------------------------------------------------------------------------------------

@dataclass
class Binary:
    """A streamtool binary under test: `--streamtool [LABEL=]PATH`, or target/release."""
    path: str
    tool: str        # its name in the tables: "streamtool", or "streamtool (LABEL)"
    provider: str    # the TLS crypto provider its `--version` names, or ""


def provider_of(path: str) -> str:
    """`ring` or `aws-lc-rs`, from `streamtool --version` ("... (TLS: rustls with ring)");
    "" for a binary that does not say."""
    try:
        r = subprocess.run([path, "--version"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(rb"rustls with (\S+?)\)", r.stdout)
    return m.group(1).decode() if m else ""


def binaries(specs: list[str] | None) -> list[Binary]:
    """The binaries to measure. Without --streamtool: target/release/streamtool, named
    `streamtool`. With one --streamtool and no label: that binary, named `streamtool`.
    Otherwise each is `streamtool (LABEL)`, LABEL defaulting to the provider its --version
    names (else the file name)."""
    if not specs:
        return [Binary(str(STREAMTOOL), "streamtool", provider_of(str(STREAMTOOL)))]
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = "", spec
        path = str(Path(path).resolve())
        if not os.access(path, os.X_OK):
            sys.exit(f"run.py: --streamtool {spec}: {path} is not an executable file")
        prov = provider_of(path)
        if not label and len(specs) > 1:
            label = prov or Path(path).name
        out.append(Binary(path, f"streamtool ({label})" if label else "streamtool", prov))
    names = [b.tool for b in out]
    if len(set(names)) != len(names):
        sys.exit(f"run.py: --streamtool: two binaries with the same name ({', '.join(names)}); give labels")
    return out

# ---------------------------------------------------------------------------------------
# Datagrams (issue 21): bench/udp_load.c at both ends, the tool in between or as the echo
# ---------------------------------------------------------------------------------------

UDP_LOAD = ""  # bench/udp_load.c, built beside the helper when a udp scenario runs


def udp_bound(port: int) -> bool:
    want = f":{port:04X}"
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                if any(line.split()[1].endswith(want) for line in f):
                    return True
        except OSError:
            pass
    return False


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp(port: int, proc: Proc, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp_bound(port):
            return True
        if proc.poll():
            return False
        time.sleep(0.01)
    return False


def udp_end(name: str, argv: list[str]) -> tuple[Proc, Lines, int]:
    """Starts `udp_load echo-server` or `udp_load sink ...` (argv after the program) and
    returns it with its output and the port it printed (0 if none came)."""
    p = Proc(name, [UDP_LOAD, *argv], stdout=subprocess.PIPE, reap=False)
    lines = Lines(p.popen.stdout)
    pl = lines.wait_for("PORT", time.monotonic() + 10)
    return p, lines, int(pl.split()[1]) if pl else 0


def udp_tool(ctx: Ctx, name: str, argv: list[str] | None, dest: int, procs: list[Proc],
             tcp_argv: list[str] | None = None) -> tuple[int, list[Proc], str]:
    """Starts the tool on a free port with `{port}` and `{dest}` filled in (and its TCP twin
    on the same port number, for iperf3's control connection). Without argv (a reference
    row) the load goes straight to `dest`. Returns (port, the tool's processes, error)."""
    if argv is None:
        return dest, [], ""
    port = free_udp_port()
    tool = Proc(f"{name}.tool", fmt_argv(argv, port=port, dest=dest), env=ctx.env(None))
    procs.append(tool)
    if not wait_udp(port, tool):
        return 0, [], f"tool did not bind (exit {tool.status})"
    if tcp_argv:
        twin = Proc(f"{name}.tcp", fmt_argv(tcp_argv, port=port, dest=dest), env=ctx.env(None))
        procs.append(twin)
        if not wait_listening(port, twin):
            return 0, [], f"TCP twin did not listen (exit {twin.status})"
        return port, [tool, twin], ""
    return port, [tool], ""


def cpu_now(tools: list[Proc]) -> float:
    return sum(tree_cpu_ticks(p.pid) for p in tools) / CLK_TCK


def tool_cpu(tools: list[Proc], before: float) -> float:
    """The tool's CPU (each process tree, forks included) since `before` (`cpu_now()`);
    NaN for a reference row. Ends the tool's processes by PID."""
    if not tools:
        return float("nan")
    for p in tools:
        p.end(grace=3.0)
    return sum(p.cpu() for p in tools) - before


def udp_window(ctx: Ctx, name: str, argv: list[str] | None, size: int, *, relay: bool) -> Run:
    """`udp_load window` against the tool: as a relay (`{port}` -> `{dest}`, an echo server
    at dest) or as the echo server itself (argv None: udp_load's own echo server, the
    reference). One value: replies per second (round trips)."""
    a = ctx.args
    procs: list[Proc] = []
    try:
        dest = 0
        if relay or argv is None:
            echo, _, dest = udp_end(f"{name}.echo", ["echo-server"])
            procs.append(echo)
            if not dest:
                return Run(False, note="echo server did not start")
        port, tools, err = udp_tool(ctx, name, argv, dest, procs)
        if err:
            return Run(False, note=err)
        before = cpu_now(tools)
        load = [UDP_LOAD, "window", str(port), str(a.udp_count), str(size), str(a.udp_window), str(int(a.udp_time))]
        out = subprocess.run(load, capture_output=True, timeout=a.udp_time + 30)
        m = re.search(rb"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
        if not m:
            return Run(False, note=f"load gave no result: {out.stderr.decode(errors='replace').strip()}")
        sent, got, nbytes, ns, stalls, bad, refused = (int(x) for x in m.groups())
        cpu = tool_cpu(tools, before)
        return udp_run(sent, got, nbytes, ns / 1e9, cpu, tools, bad=bad,
                       notes=["stalls of 50 ms (lost replies)" if stalls > 2 else "",
                              "ICMP refusals" if refused else ""])
    finally:
        for p in reversed(procs):
            p.end()


def udp_run(sent: int, got: int, nbytes: int, secs: float, cpu: float, tools: list[Proc], *,
            bad: int = 0, notes: list[str] | None = None, lost_pct: float | None = None) -> Run:
    """A Run of a datagram scenario: value datagrams/s; extra MiB/s, loss %, tool CPU us
    per datagram counted."""
    notes = [n for n in (notes or []) if n]
    loss = lost_pct if lost_pct is not None else (100.0 * (sent - got) / sent if sent else float("nan"))
    ok = got > 0 and secs > 0
    return Run(ok, value=got / secs if ok else float("nan"), seconds=secs, cpu_s=cpu,
               rss_kib=max((p.maxrss_kib() for p in tools), default=0),
               extra={"mib_s": nbytes / MIB / secs if ok else float("nan"), "loss_pct": loss,
                      "sent": sent, "received": got, "bad": bad,
                      "cpu_us": cpu / got * 1e6 if got else float("nan")},
               note="; ".join(notes) if ok or notes else "nothing came back")


def udp_flood(ctx: Ctx, name: str, argv: list[str] | None, size: int, rate: int) -> Run:
    """`udp_load flood` (full speed: rate 0) through the relay to `udp_load sink`:
    what arrives per second, from the first send to the last datagram in; loss in bytes
    (a relay through a byte pipe may merge datagrams)."""
    a = ctx.args
    procs: list[Proc] = []
    try:
        sink, lines, dest = udp_end(f"{name}.sink", ["sink", str(size), "500", str(int(a.udp_time) + 5)])
        procs.append(sink)
        if not dest:
            return Run(False, note="sink did not start")
        port, tools, err = udp_tool(ctx, name, argv, dest, procs)
        if err:
            return Run(False, note=err)
        before = cpu_now(tools)
        load = [UDP_LOAD, "flood", str(port), str(a.udp_count), str(size), str(rate), str(int(a.udp_time))]
        out = subprocess.run(load, capture_output=True, timeout=a.udp_time + 30)
        m = re.search(rb"RESULT (\d+) (\d+) (\d+) (\d+)", out.stdout)
        res = lines.wait_for("RESULT", time.monotonic() + a.udp_time + 10)
        if not m or not res:
            return Run(False, note="no result from the load or the sink")
        sent, _errors, t0, _t1 = (int(x) for x in m.groups())
        got, nbytes, _first, last, bad = (int(x) for x in res.split()[1:6])
        cpu = tool_cpu(tools, before)
        lost = 100.0 * (1 - nbytes / (sent * size)) if sent else float("nan")
        return udp_run(sent, got, nbytes, (last - t0) / 1e9 if last else 0.0, cpu, tools, bad=bad, lost_pct=lost)
    finally:
        for p in reversed(procs):
            p.end()


def udp_iperf(ctx: Ctx, name: str, argv: list[str] | None, tcp_argv: list[str] | None) -> Run:
    """`iperf3 -u -b RATE -l 1400` client -> (the tool's UDP relay, with a TCP relay on the
    same port number for iperf3's control connection) -> `iperf3 -s -1`; the server's count
    of what arrived. The tool's CPU is both relays'."""
    a = ctx.args
    procs: list[Proc] = []
    try:
        sport = free_port()
        srv = Proc(f"{name}.iperf3-s", ["iperf3", "-s", "-1", "-p", str(sport)], reap=False)
        procs.append(srv)
        if not wait_listening(sport, srv):
            return Run(False, note="iperf3 -s did not listen")
        port, tools, err = udp_tool(ctx, name, argv, sport, procs, tcp_argv)
        if err:
            return Run(False, note=err)
        before = cpu_now(tools)
        secs = max(1, int(a.udp_time / 2))
        cli = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-u", "-b", a.iperf_rate, "-l", "1400",
                              "-t", str(secs), "-J"], capture_output=True, timeout=secs + 30)
        try:
            rcv = json.loads(cli.stdout)["end"]["sum_received"]
        except (ValueError, KeyError):
            return Run(False, note=f"iperf3 -c gave no result (exit {cli.returncode})")
        cpu = tool_cpu(tools, before)
        got = rcv["packets"] - rcv["lost_packets"]
        return udp_run(rcv["packets"], got, rcv["bytes"], rcv["seconds"], cpu, tools, lost_pct=rcv["lost_percent"])
    finally:
        for p in reversed(procs):
            p.end()


SCENARIOS = {
    "plain": "plain TCP client -> server, stdin from a file",
    "plain-pipe": "plain TCP client -> server, stdin from a pipe",
    "relay": "plain TCP through a relay",
    "proxy": "plain TCP client -> server through a SOCKS5 proxy (microsocks)",
    "proxy-http": "plain TCP client -> server through an HTTP CONNECT proxy (tinyproxy)",
    "dump": "plain TCP client -> server, the client recording the traffic to a file",
    "tls": f"TLS 1.3 client -> server, {SUITE256}",
    "tls128": f"TLS 1.3 client -> server, {SUITE128}",
    "tls-relay": f"TLS terminating relay (TLS in, plain out), {SUITE128}",
    "handshake-rsa": "server CPU per full TLS handshake, RSA-2048",
    "handshake-ec": "server CPU per full TLS handshake, ECDSA P-256",
    "conns": "plain connections, 1 client: server CPU per connection",
    "idle": "anon memory per idle connection, plain",
    "idle-tls": "anon memory per idle connection, TLS",
    "udp-relay-64": "UDP relay, 64 B datagrams to an echo behind it and back (a window of requests)",
    "udp-relay-1400": "UDP relay, 1400 B datagrams to an echo behind it and back (a window of requests)",
    "udp-echo-64": "UDP echo server, 64 B datagrams (a window of requests)",
    "udp-echo-1400": "UDP echo server, 1400 B datagrams (a window of requests)",
    "udp-flood": "UDP relay one way to a sink, 1400 B datagrams sent at full speed",
    "udp-paced": "UDP relay one way to a sink, 1400 B datagrams paced at --udp-rate",
    "udp-iperf": "iperf3 -u -l 1400 (-b 0 unless --iperf-rate), direct and through the relays",
}
UDP = [s for s in SCENARIOS if s.startswith("udp-")]
ALIASES = {"udp": UDP, "udp-relay": ["udp-relay-64", "udp-relay-1400"],
           "udp-echo": ["udp-echo-64", "udp-echo-1400"]}
OPT_IN = {"dump", *UDP}  # scenarios run only when --only names them
THROUGHPUT = ["plain", "plain-pipe", "relay", "tls", "tls128", "tls-relay"]


def build_cases(ctx: Ctx, binary: Binary, peers: bool) -> list[Case]:
    """The cases of one streamtool binary, and the peers' (and reference rows) when `peers`."""
    ST = binary.path
    cert, key, ec_cert, ec_key = str(ctx.cert), str(ctx.key), str(ctx.ec_cert), str(ctx.ec_key)
    plain, tlsdata = ctx.plain, ctx.tls
    cases: list[Case] = []

    def add(scen, tool, ours, runner, note="", suite="", ref=False):
        if ours:
            tool = tool.replace("streamtool", binary.tool, 1)
        elif not peers:
            return
        cases.append(Case(scen, tool, ours, runner, note, suite, ref))

    # (1) plain client -> server, and the same with stdin from a pipe
    direct = [
        ("streamtool", True, [ST, "serve", "-q", "127.0.0.1:{port}"],
         [ST, "connect", "-q", "--keep-sending", "127.0.0.1:{port}"], "connect --keep-sending"),
        ("socat", False, ["socat", "-u", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "STDOUT"],
         ["socat", "-u", "STDIN", "TCP:127.0.0.1:{port}"], "-u"),
        ("socat -b 131072", False,
         ["socat", "-b", "131072", "-u", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "STDOUT"],
         ["socat", "-b", "131072", "-u", "STDIN", "TCP:127.0.0.1:{port}"], "-u"),
        ("ncat", False, ["ncat", "-l", "127.0.0.1", "{port}"], ["ncat", "127.0.0.1", "{port}"], ""),
        ("nc", False, ["nc", "-l", "127.0.0.1", "{port}"], ["nc", "-N", "127.0.0.1", "{port}"], "client -N"),
    ]
    for scen, stdin in (("plain", "file"), ("plain-pipe", "pipe")):
        for tool, ours, s, c, note in direct:
            add(scen, tool, ours, lambda ctx, n, s=s, c=c, stdin=stdin:
                transfer(ctx, n, s, c, plain, client_stdin=stdin), note)

    # (2) plain relay: helper send -> relay -> helper sink
    relays = [
        ("streamtool", True, [ST, "pipe", "-q", "tcp-listen:127.0.0.1:{port}", "tcp:127.0.0.1:{dest}"],
         "pipe (splice)"),
        ("socat", False, ["socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "TCP:127.0.0.1:{dest}"], ""),
        ("socat -b 131072", False, ["socat", "-b", "131072", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
                                    "TCP:127.0.0.1:{dest}"], ""),
        ("ncat", False, ["ncat", "-l", "127.0.0.1", "{port}", "-c", "ncat 127.0.0.1 {dest}"],
         "-c 'ncat ...': 2 processes (fork+exec)"),
    ]
    for tool, ours, argv, note in relays:
        add("relay", tool, ours, lambda ctx, n, argv=argv: relay(ctx, n, argv, plain), note)
    add("relay", "(no relay: sender -> sink)", False, lambda ctx, n: ends_only(ctx, n, plain),
        "reference: the neutral ends alone, the ceiling", ref=True)

    # (2b) plain client -> server through a proxy: connect --proxy against ncat --proxy,
    # through microsocks (SOCKS5) and tinyproxy (HTTP CONNECT); each skipped without its proxy
    proxies = [
        ("proxy", "microsocks", "socks5", "socks5h://", "socks5"),
        ("proxy-http", "tinyproxy", "http", "http://", "http"),
    ]
    for scenario, program, kind, scheme, ncat_type in proxies:
        if not shutil.which(program):
            continue
        proxied = [
            ("streamtool", True, [ST, "connect", "-q", "--keep-sending", "--proxy", scheme + "127.0.0.1:{pport}",
                                  "127.0.0.1:{port}"], f"connect --proxy {scheme}"),
            ("ncat", False, ["ncat", "--proxy", "127.0.0.1:{pport}", "--proxy-type", ncat_type,
                             "127.0.0.1", "{port}"], f"--proxy-type {ncat_type}"),
        ]
        for tool, ours, c, note in proxied:
            add(scenario, tool, ours, lambda ctx, n, c=c, k=kind: via_proxy(ctx, n, c, plain, k), note)

    # (2c) the same plain transfer with the client recording it (issue 22): each tool's
    # own server as in (1), recording on the client only; each recording row compared with
    # its tool's unrecorded row and with socat -x (what users run today)
    ST_CLI = [ST, "connect", "-q", "--keep-sending", "127.0.0.1:{port}"]
    SO_SRV = ["socat", "-u", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "STDOUT"]
    NC_SRV = ["ncat", "-l", "127.0.0.1", "{port}"]
    st_srv = [ST, "serve", "-q", "127.0.0.1:{port}"]
    dumped = [
        # tool, ours, server, client, socat-style stderr dump, least file size / data, base
        ("streamtool", True, st_srv, ST_CLI, False, 0, "", "connect --keep-sending: no recording (splice)"),
        ("streamtool --dump hex", True, st_srv, [*ST_CLI, "--dump", "hex", "--dump-file", "{dump}"],
         False, 4.0, "streamtool", "--dump hex --dump-file F"),
        ("streamtool --pcap", True, st_srv, [*ST_CLI, "--pcap", "{dump}"], False, 1.0, "streamtool",
         "--pcap F (pcapng)"),
        ("streamtool --transcript", True, st_srv, [*ST_CLI, "--transcript", "{dump}"], False, 1.3,
         "streamtool", "--transcript F (JSON lines, base64)"),
        ("socat", False, SO_SRV, ["socat", "-u", "STDIN", "TCP:127.0.0.1:{port}"], False, 0, "",
         "-u: no recording"),
        ("socat -x", False, SO_SRV, ["socat", "-x", "-u", "STDIN", "TCP:127.0.0.1:{port}"], True, 3.0,
         "socat", "-x -u ... 2> F (hex dump on stderr)"),
        ("ncat", False, NC_SRV, ["ncat", "127.0.0.1", "{port}"], False, 0, "", "no recording"),
        ("ncat -x", False, NC_SRV, ["ncat", "-x", "{dump}", "127.0.0.1", "{port}"], False, 3.0, "ncat",
         "--hex-dump F"),
        ("ncat -o", False, NC_SRV, ["ncat", "-o", "{dump}", "127.0.0.1", "{port}"], False, 1.0, "ncat",
         "--output F (the raw bytes)"),
    ]
    for tool, ours, s, c, to_err, least, base, note in dumped:
        vs = "socat -x" if base else ""
        before = len(cases)
        add("dump", tool, ours, lambda ctx, n, s=s, c=c, to_err=to_err, least=least: recorded(
            ctx, n, s, c, ctx.dump, to_stderr=to_err, min_ratio=least), note)
        if len(cases) > before:
            cases[-1].base = base.replace("streamtool", binary.tool, 1) if ours else base
            cases[-1].vs = vs

    # (3) TLS client -> server, at AES-256-GCM (what streamtool negotiates with itself) and
    # at AES-128-GCM (the issue's suite; streamtool has no option to pin it)
    def tls_direct(suite):
        ossl_suite = ["-ciphersuites", suite]
        return [
            ("openssl", False,
             ["openssl", "s_server", "-accept", "127.0.0.1:{port}", "-cert", cert, "-key", key,
              "-naccept", "1", "-quiet", *ossl_suite],
             ["openssl", "s_client", "-connect", "127.0.0.1:{port}", "-CAfile", cert, "-quiet",
              "-no_ign_eof", "-nocommands", *ossl_suite], "hold", "file", "s_server/s_client"),
            ("socat", False,
             ["socat", "-u", f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0",
              "STDOUT"],
             ["socat", "-u", "STDIN", f"OPENSSL:127.0.0.1:{{port}},cafile={cert}"], "null", "file", "-u"),
            ("socat -b 131072", False,
             ["socat", "-b", "131072", "-u",
              f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0", "STDOUT"],
             ["socat", "-b", "131072", "-u", "STDIN", f"OPENSSL:127.0.0.1:{{port}},cafile={cert}"],
             "null", "file", "-u"),
            ("ncat", False,
             ["ncat", "-l", "--recv-only", "--ssl", "--ssl-cert", cert, "--ssl-key", key, "127.0.0.1", "{port}"],
             ["ncat", "--send-only", "--ssl", "127.0.0.1", "{port}"], "null", "hold",
             "stdin held open until the sink has every byte (ncat --ssl loses the tail otherwise)"),
        ]

    add("tls", "streamtool", True, lambda ctx, n: transfer(
        ctx, n, [ST, "serve", "-q", "--tls", "--cert", cert, "--key", key, "127.0.0.1:{port}"],
        [ST, "connect", "-q", "--keep-sending", "--tls", "--ca", cert, "127.0.0.1:{port}"], tlsdata),
        f"rustls + {binary.provider or '?'}", suite="")
    for scen, suite in (("tls", SUITE256), ("tls128", SUITE128)):
        for tool, ours, s, c, sstdin, cstdin, note in tls_direct(suite):
            add(scen, tool, ours, lambda ctx, n, s=s, c=c, sstdin=sstdin, cstdin=cstdin, suite=suite:
                transfer(ctx, n, s, c, tlsdata, server_stdin=sstdin, client_stdin=cstdin, suite=suite),
                note, suite=suite)

    # (4) TLS terminating relay: tls_send (pinned suite) -> relay -> helper sink
    tls_relays = [
        ("streamtool", True, [ST, "pipe", "-q", f"tls-listen:127.0.0.1:{{port}},cert={cert},key={key}",
                              "tcp:127.0.0.1:{dest}"], "pipe"),
        ("socat", False, ["socat", f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0",
                          "TCP:127.0.0.1:{dest}"], ""),
        ("socat -b 131072", False, ["socat", "-b", "131072",
                                    f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,cert={cert},key={key},verify=0",
                                    "TCP:127.0.0.1:{dest}"], ""),
        ("ncat", False, ["ncat", "-l", "--ssl", "--ssl-cert", cert, "--ssl-key", key, "127.0.0.1", "{port}",
                         "-c", "ncat 127.0.0.1 {dest}"], "-c 'ncat ...': 2 processes"),
    ]
    for tool, ours, argv, note in tls_relays:
        add("tls-relay", tool, ours, lambda ctx, n, argv=argv: relay(ctx, n, argv, tlsdata, tls_suite=SUITE128),
            note, suite=SUITE128)

    # (5) server CPU per full handshake (openssl s_time -new, AES-128-GCM, X25519)
    for scen, c, k in (("handshake-rsa", cert, key), ("handshake-ec", ec_cert, ec_key)):
        servers = [
            ("streamtool", True, [ST, "serve", "-q", "-k", "--tls", "--ragged-eof", "ignore", "--cert", c, "--key", k,
                                  "127.0.0.1:{port}"], False, "serve -k"),
            ("openssl", False, ["openssl", "s_server", "-accept", "127.0.0.1:{port}", "-cert", c, "-key", k,
                                "-quiet"], True, "s_server"),
            ("socat", False, ["socat", f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,fork,cert={c},key={k},verify=0",
                              "STDIO"], False, "fork per connection"),
            ("ncat", False, ["ncat", "-l", "-k", "--max-conns", "5000", "--ssl", "--ssl-cert", c, "--ssl-key", k,
                             "127.0.0.1", "{port}"], False, "-k"),
        ]
        for tool, ours, argv, hold, note in servers:
            add(scen, tool, ours, lambda ctx, n, argv=argv, hold=hold: server_window(
                ctx, n, argv, hold=hold, suite=SUITE128, load=s_time_load(ctx, ctx.args.hs_time)), note,
                suite=SUITE128)

    # (6) plain connections, one client (connect, half-close, read to EOF, close)
    conn_servers = [
        ("streamtool", True, [ST, "serve", "-q", "-k", "127.0.0.1:{port}"], "serve -k (stdio)"),
        ("streamtool --discard", True, [ST, "serve", "-q", "-k", "--discard", "127.0.0.1:{port}"],
         "serve -k --discard"),
        ("socat", False, ["socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "STDIO"], "fork per connection"),
        ("ncat", False, ["ncat", "-l", "-k", "--max-conns", "5000", "127.0.0.1", "{port}"], "-k"),
        ("nc", False, ["nc", "-l", "-k", "127.0.0.1", "{port}"], "-k"),
    ]
    for tool, ours, argv, note in conn_servers:
        add("conns", tool, ours, lambda ctx, n, argv=argv: server_window(
            ctx, n, argv, hold=False, suite=None, load=conns_load(ctx, ctx.args.conns)), note)

    # (7) idle connections: keep-open stdio servers, stdin held open
    for scen, tls in (("idle", False), ("idle-tls", True)):
        t = ["--tls", "--cert", cert, "--key", key] if tls else []
        nt = ["--ssl", "--ssl-cert", cert, "--ssl-key", key] if tls else []
        so = (f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,reuseaddr,fork,backlog=1024,cert={cert},key={key},verify=0"
              if tls else "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=1024")
        servers = [
            ("streamtool", True, [ST, "serve", "-q", "-k", *t, "127.0.0.1:{port}"], "serve -k"),
            ("socat", False, ["socat", so, "STDIO"], "fork per connection (Pss_Anon summed)"),
            ("ncat", False, ["ncat", "-l", "-k", "--max-conns", "5000", *nt, "127.0.0.1", "{port}"], "-k"),
        ]
        for tool, ours, argv, note in servers:
            add(scen, tool, ours, lambda ctx, n, argv=argv, tls=tls: idle(
                ctx, n, argv, ctx.args.idle_conns, tls=tls, suite=SUITE128 if tls else None), note)
    udp_cases(ST, add)
    return cases


def udp_cases(ST: str, add) -> None:
    """The datagram scenarios (issue 21): relays and echo servers under bench/udp_load.c,
    and iperf3 through the relays."""
    relays = [
        ("streamtool", True, [ST, "pipe", "-q", "udp-listen:127.0.0.1:{port},fork", "udp:127.0.0.1:{dest}"],
         "pipe udp-listen:P,fork udp:...: a session per peer"),
        ("socat", False, ["socat", "UDP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", "UDP:127.0.0.1:{dest}"],
         "UDP-LISTEN,fork: a child per peer"),
        ("ncat", False, ["ncat", "-u", "-l", "-k", "127.0.0.1", "{port}", "--sh-exec", "ncat -u 127.0.0.1 {dest}"],
         "-u -l -k --sh-exec 'ncat -u ...': 3 processes per peer, a byte pipe between them"),
        ("(no relay)", False, None, "reference: the load straight to the echo (or sink)"),
    ]
    for size in (64, 1400):
        for tool, ours, argv, note in relays:
            add(f"udp-relay-{size}", tool, ours, lambda ctx, n, argv=argv, size=size: udp_window(
                ctx, n, argv, size, relay=True), note, ref=argv is None)
    for scen in ("udp-flood", "udp-paced"):
        for tool, ours, argv, note in relays:
            add(scen, tool, ours, lambda ctx, n, argv=argv, scen=scen: udp_flood(
                ctx, n, argv, 1400, ctx.args.udp_rate if scen == "udp-paced" else 0), note, ref=argv is None)
    echoes = [
        ("streamtool", True, [ST, "serve", "-q", "-u", "-k", "--echo", "127.0.0.1:{port}"], "serve -u -k --echo"),
        ("socat", False, ["socat", "UDP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", "PIPE"],
         "UDP-LISTEN,fork PIPE: a child per peer, a byte pipe"),
        ("socat RECVFROM", False, ["socat", "UDP-RECVFROM:{port},bind=127.0.0.1,fork", "SYSTEM:cat"],
         "UDP-RECVFROM,fork SYSTEM:cat: a child and a shell per datagram"),
        ("ncat", False, ["ncat", "-u", "-l", "-k", "127.0.0.1", "{port}", "--exec", "/bin/cat"],
         "-u -l -k --exec /bin/cat: a cat per peer, a byte pipe"),
        ("(C echo server)", False, None, "reference: udp_load echo-server (recvmmsg/sendmmsg)"),
    ]
    for size in (64, 1400):
        for tool, ours, argv, note in echoes:
            add(f"udp-echo-{size}", tool, ours, lambda ctx, n, argv=argv, size=size: udp_window(
                ctx, n, argv, size, relay=False), note, ref=argv is None)
    if not shutil.which("iperf3"):
        log("run.py: iperf3 missing (apt-get install iperf3): no udp-iperf rows")
        return
    iperfs = [
        ("streamtool", True, [ST, "pipe", "-q", "udp-listen:127.0.0.1:{port},fork", "udp:127.0.0.1:{dest}"],
         [ST, "pipe", "-q", "tcp-listen:127.0.0.1:{port},fork", "tcp:127.0.0.1:{dest}"],
         "pipe udp-listen,fork + pipe tcp-listen,fork on the same port number"),
        ("socat", False, ["socat", "UDP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", "UDP:127.0.0.1:{dest}"],
         ["socat", "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", "TCP:127.0.0.1:{dest}"],
         "UDP-LISTEN,fork + TCP-LISTEN,fork on the same port number"),
        ("(iperf3 direct)", False, None, None, "reference: client -> server, no relay"),
    ]
    for tool, ours, argv, tcp_argv, note in iperfs:
        add("udp-iperf", tool, ours, lambda ctx, n, argv=argv, tcp_argv=tcp_argv: udp_iperf(
            ctx, n, argv, tcp_argv), note, ref=argv is None)


# ---------------------------------------------------------------------------------------
# Set-up: peers, helper, certificates, data, suite probes
# ---------------------------------------------------------------------------------------

def have_openbsd_nc() -> bool:
    if not shutil.which("nc"):
        return False
    out = subprocess.run(["nc", "-h"], capture_output=True)
    return b"OpenBSD" in out.stdout + out.stderr


def install_peers(no_install: bool, need_libssl: bool) -> None:
    need = []
    for exe, pkg in (("socat", "socat"), ("ncat", "ncat"), ("openssl", "openssl"), ("cc", "gcc"),
                     ("microsocks", "microsocks")):
        if not shutil.which(exe):
            need.append(pkg)
    if need_libssl and not Path("/usr/include/openssl/ssl.h").exists():
        need.append("libssl-dev")  # for bench/tls_send.c
    if not have_openbsd_nc():
        need.append("netcat-openbsd")
    if not need:
        return
    if no_install:
        sys.exit(f"run.py: missing {', '.join(need)} (and --no-install given)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    log(f"installing {' '.join(need)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", *need], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    if not have_openbsd_nc():
        log("run.py: note: `nc` is not OpenBSD nc (update-alternatives --config nc)")


def build(no_build: bool, own_binaries: bool) -> None:
    if not no_build:
        log("cargo build --release --locked")
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "streamtool"], cwd=ROOT, check=True)
    if not own_binaries and not STREAMTOOL.exists():
        sys.exit(f"run.py: {STREAMTOOL} is missing (cargo build --release)")


def build_helper(with_tls_send: bool) -> tuple[str, str]:
    """Compiles bench/helper.c, and bench/tls_send.c when the TLS relay needs it."""
    out, tls = WORK / "helper", WORK / "tls_send"
    subprocess.run(["cc", "-O2", "-o", str(out), str(BENCH / "helper.c")], check=True)
    if not with_tls_send:
        return str(out), ""
    subprocess.run(["cc", "-O2", "-o", str(tls), str(BENCH / "tls_send.c"), "-lssl", "-lcrypto"], check=True)
    return str(out), str(tls)


def make_certs(ctx: Ctx) -> None:
    subj = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30",
            "-nodes"]
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", *subj, "-keyout", str(ctx.key),
                    "-out", str(ctx.cert)], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", *subj,
                    "-keyout", str(ctx.ec_key), "-out", str(ctx.ec_cert)], check=True, capture_output=True)
    for suite, path in ctx.conf.items():
        path.write_text("openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_module\n"
                        "[ssl_module]\nsystem_default = tls_defaults\n[tls_defaults]\n"
                        f"MinProtocol = TLSv1.3\nCiphersuites = {suite}\n")


def make_data(path: Path, size: int) -> None:
    """Pseudo-random bytes (AES-128-CTR of zeros with a fixed key), generated once per run."""
    with open(path, "wb") as f:
        gen = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", "00" * 16, "-iv", "00" * 16,
                                "-in", "/dev/zero"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        left = size
        while left:
            buf = gen.stdout.read(min(left, 8 * MIB))
            if not buf:
                break
            f.write(buf)
            left -= len(buf)
        gen.stdout.close()
        gen.kill()
        gen.wait()
    if path.stat().st_size != size:
        sys.exit("run.py: could not generate the test data")


def probe_suites(ctx: Ctx, bins: list[Binary]) -> dict:
    """What each side negotiates: each streamtool with itself (connect --show-cert), and a
    peer server under each pinned configuration (openssl s_client against socat)."""
    out = {}
    for b in bins:
        port = free_port()
        srv, w, _ = start_server(ctx, f"probe.{safe(b.tool)}", [b.path, "serve", "-q", "--tls", "--cert", str(ctx.cert),
                                 "--key", str(ctx.key), "127.0.0.1:{port}"], port, hold=True, suite=None)
        if srv:
            r = subprocess.run([b.path, "connect", "-z", "--tls", "--show-cert", "--ca", str(ctx.cert), f"127.0.0.1:{port}"],
                               capture_output=True, timeout=20)
            m = re.search(rb"Ciphersuite: (\S+)", r.stderr)
            out[b.tool] = m.group(1).decode().replace("TLS13_", "TLS_") if m else "?"
            os.close(w)
            srv.end()
    for suite in (SUITE128, SUITE256):
        port = free_port()
        srv, w, _ = start_server(ctx, "probe.socat", ["socat", "-u", f"OPENSSL-LISTEN:{{port}},bind=127.0.0.1,"
                                 f"reuseaddr,cert={ctx.cert},key={ctx.key},verify=0", "/dev/null"], port,
                                 hold=True, suite=suite)
        if srv:
            r = subprocess.run(["openssl", "s_client", "-brief", "-connect", f"127.0.0.1:{port}"],
                               input=b"", capture_output=True, timeout=20, env=ctx.env(None))
            m = re.search(rb"Ciphersuite: (\S+)", r.stdout + r.stderr)
            out[f"peers pinned to {suite}"] = m.group(1).decode() if m else "?"
            os.close(w)
            srv.end()
    return out


def versions(bins: list[Binary]) -> dict:
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=10)
            return (r.stdout + r.stderr).decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    v = {
        "streamtool": first(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
        **{f"{b.tool} binary": f"{b.path} ({b.provider or 'provider not named'})"
           for b in bins if b.path != str(STREAMTOOL) or len(bins) > 1},
        "socat": re.sub(r".*?socat version (\S+).*", r"\1", first(["socat", "-V"]), flags=re.S),
        "ncat": re.sub(r".*?Version (\S+).*", r"\1", first(["ncat", "--version"]), flags=re.S),
        "nc": re.sub(r".*?OpenBSD netcat \(([^)]*)\).*", r"OpenBSD netcat, \1", first(["nc", "-h"]), flags=re.S),
        "openssl": re.sub(r"^OpenSSL (\S+).*", r"\1", first(["openssl", "version"]), flags=re.S),
        "python": platform.python_version(),
    }
    return v


def machine() -> dict:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * PAGE / GIB, 1)}


# ---------------------------------------------------------------------------------------
# Report: markdown tables, goals, SVG
# ---------------------------------------------------------------------------------------

def summarize(cases: list[Case]) -> dict:
    out = {}
    for c in cases:
        ok = [r for r in c.runs if r.ok]
        vals = [r.value for r in ok]
        out[(c.scenario, c.tool)] = {
            "median": med(vals), "min": min(vals) if vals else float("nan"),
            "max": max(vals) if vals else float("nan"),
            "cpu_per_gib": med([r.cpu_per_gib for r in ok]),
            "rss_kib": med([r.rss_kib for r in ok]) if ok else float("nan"),
            "per_s": med([r.extra.get("per_s", float("nan")) for r in ok]),
            "ok": len(ok), "n": len(c.runs),
            "notes": sorted({r.note for r in c.runs if r.note}),
            "suite": c.suite or next((r.extra.get("suite") for r in ok if r.extra.get("suite")), ""),
            "ours": c.ours, "note": c.note, "ref": c.ref, "base": c.base, "vs": c.vs,
            "client_cpu_per_gib": med([r.extra.get("client_cpu_per_gib", float("nan")) for r in ok]),
            "dump_bytes": med([r.extra.get("dump_bytes", float("nan")) for r in ok]),
        }
    return out


HIGHER_BETTER = {"plain", "plain-pipe", "relay", "proxy", "proxy-http", "dump", "tls", "tls128", "tls-relay"}


def best_peer(summary: dict, scen: str) -> tuple[str, dict] | None:
    peers = [(t, s) for (sc, t), s in summary.items()
             if sc == scen and not s["ours"] and not s["ref"] and s["median"] == s["median"]]
    if not peers:
        return None
    key = (lambda ts: ts[1]["median"])
    return max(peers, key=key) if scen in HIGHER_BETTER else min(peers, key=key)


def f(x, nd=2):
    return "–" if x != x else f"{x:.{nd}f}"


def unit(scen: str) -> tuple[str, int]:
    if scen.startswith("udp-"):
        return "datagrams/s", 0
    if scen == "dump":
        return "GiB/s", 3
    if scen in HIGHER_BETTER:
        return "GiB/s", 2
    if scen.startswith("handshake") or scen == "conns":
        return "us server CPU", 0
    return "KiB", 1


def markdown(summary: dict, cases: list[Case], meta: dict) -> str:
    lines = []
    scen_order = [s for s in SCENARIOS if any(c.scenario == s for c in cases)]
    ref_tls = [(t, s) for (sc, t), s in summary.items() if sc == "tls" and s["ours"]]
    udp = [c for c in cases if c.scenario.startswith("udp-")]
    if udp:
        lines += udp_table(udp, meta)
    for scen in scen_order:
        u, nd = unit(scen)
        bp = best_peer(summary, scen)
        size = meta["sizes"].get(scen)
        title = SCENARIOS[scen] + (f", {size}" if size else "")
        if scen in meta.get("load", {}):
            title += f" (load average {meta['load'][scen]:.1f} at the start)"
        lines.append(f"\n##### {title}\n")
        if scen == "dump":
            lines += dump_table(summary, meta)
            continue
        if scen.startswith("udp-"):
            lines.pop()
            continue
        if scen in HIGHER_BETTER:
            lines.append("| tool | median GiB/s | min–max | vs best peer | CPU s/GiB | peak RSS MiB | suite | check | notes |")
            lines.append("|---|---|---|---|---|---|---|---|---|")
        elif scen.startswith("handshake") or scen == "conns":
            lines.append("| tool | median server CPU us | min–max | vs best peer | per second | check | notes |")
            lines.append("|---|---|---|---|---|---|---|")
        else:
            lines.append("| tool | median KiB per connection | min–max | vs best peer | check | notes |")
            lines.append("|---|---|---|---|---|---|")
        rows = [(t, s) for (sc, t), s in summary.items() if sc == scen]
        if scen == "tls128":
            rows[:0] = [(f"{t} (from the AES-256 row above)", s) for t, s in ref_tls]
        for t, s in rows:
            ratio = "–"
            if bp and s["median"] == s["median"] and bp[1]["median"] and not s["ref"]:
                ratio = f"{s['median'] / bp[1]['median']:.2f}x"
            name = f"**{t}**" if s["ours"] else (f"*{t}*" if s["ref"] else t)
            notes = "; ".join([n for n in [s["note"], *s["notes"]] if n])
            check = f"{s['ok']}/{s['n']} ok"
            rng = f"{f(s['min'], nd)}–{f(s['max'], nd)}"
            if scen in HIGHER_BETTER:
                rss = s["rss_kib"] / 1024 if s["rss_kib"] == s["rss_kib"] and not s["ref"] else float("nan")
                lines.append(f"| {name} | {f(s['median'], nd)} | {rng} | {ratio} | {f(s['cpu_per_gib'])} | "
                             f"{f(rss, 1)} | {s['suite'] or '–'} | {check} | {notes} |")
            elif scen.startswith("handshake") or scen == "conns":
                lines.append(f"| {name} | {f(s['median'], nd)} | {rng} | {ratio} | {f(s['per_s'], 0)} | {check} | {notes} |")
            else:
                lines.append(f"| {name} | {f(s['median'], nd)} | {rng} | {ratio} | {check} | {notes} |")
    return "\n".join(lines) + "\n"


def udp_table(cases: list[Case], meta: dict) -> list[str]:
    """One table for every datagram scenario run: medians of datagrams/s (round trips for a
    window), MiB/s, loss and the tool's CPU per datagram, and the ratio to the socat row of
    the same scenario."""
    out = ["\n##### Datagrams " + meta.get("udp_params", "") + "\n",
           "| scenario | tool | datagrams/s | min–max | MiB/s | loss % | vs socat | tool CPU us/datagram | "
           "peak RSS MiB | check | notes |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    socat = {c.scenario: med([r.value for r in c.runs if r.ok]) for c in cases if c.tool == "socat"}
    order = list(SCENARIOS)
    for c in sorted(cases, key=lambda c: order.index(c.scenario)):
        ok = [r for r in c.runs if r.ok]
        v = med([r.value for r in ok])
        vals = [r.value for r in ok]
        rng = f"{min(vals):.0f}–{max(vals):.0f}" if vals else "–"
        ratio = f"{v / socat[c.scenario]:.2f}x" if c.scenario in socat and v == v and socat[c.scenario] else "–"
        name = f"**{c.tool}**" if c.ours else (f"*{c.tool}*" if c.ref else c.tool)
        rss = med([r.rss_kib / 1024 for r in ok if r.rss_kib])
        bad = med([r.extra["bad"] for r in ok])
        if bad:
            sent = med([r.extra["sent"] for r in ok])
            notes_bad = [f"{bad:.0f} of {sent:.0f} datagrams of another size (median per run): "
                         "boundaries not kept"]
        else:
            notes_bad = []
        notes = "; ".join(dict.fromkeys(n for n in [c.note, *notes_bad, *(r.note for r in c.runs)] if n))
        out.append(f"| {c.scenario} | {name} | {f(v, 0)} | {rng} | {f(med([r.extra['mib_s'] for r in ok]), 1)} | "
                   f"{f(med([r.extra['loss_pct'] for r in ok]), 2)} | {ratio} | "
                   f"{f(med([r.extra['cpu_us'] for r in ok]), 1)} | {f(rss, 1)} | {len(ok)}/{len(c.runs)} ok | {notes} |")
    if any(c.scenario == "udp-iperf" for c in cases):
        out.append("\nncat is not in udp-iperf: its UDP relay (--sh-exec 'ncat -u') passes the datagrams "
                   "through a byte pipe, which merges and splits them, so iperf3's per-datagram counts "
                   "would not mean anything.")
    return out


def dump_table(summary: dict, meta: dict) -> list[str]:
    """The `dump` scenario's table: each recording against its own tool's unrecorded row
    and against socat -x, the client's CPU apart (the recording is the client's), and the
    size of the file per byte sent."""
    size = meta["dump_size"]
    out = ["| tool | median MiB/s | min–max | vs unrecorded | vs socat -x | CPU s/GiB (both) | "
           "client CPU s/GiB | peak RSS MiB | file / data | check | notes |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(t, s) for (sc, t), s in summary.items() if sc == "dump"]

    def ratio(s, other):
        o = summary.get(("dump", other)) if other else None
        if not o or s["median"] != s["median"] or not o["median"] or o["median"] != o["median"]:
            return "–"
        return f"{s['median'] / o['median']:.2f}x"
    for t, s in rows:
        name = f"**{t}**" if s["ours"] else t
        notes = "; ".join([n for n in [s["note"], *s["notes"]] if n])
        rss = s["rss_kib"] / 1024 if s["rss_kib"] == s["rss_kib"] else float("nan")
        file_ratio = f"{s['dump_bytes'] / size:.2f}" if s["dump_bytes"] == s["dump_bytes"] else "–"
        mib = [x * 1024 for x in (s["median"], s["min"], s["max"])]
        out.append(f"| {name} | {f(mib[0], 1)} | {f(mib[1], 1)}–{f(mib[2], 1)} | {ratio(s, s['base'])} | "
                   f"{ratio(s, s['vs'])} | {f(s['cpu_per_gib'])} | {f(s['client_cpu_per_gib'])} | {f(rss, 1)} | "
                   f"{file_ratio} | {s['ok']}/{s['n']} ok | {notes} |")
    return out


def goals(summary: dict, tool: str = "streamtool") -> list[tuple[str, str, str, str]]:
    """(goal, target, measured, verdict) for each goal of issue 7, for the binary named
    `tool` (its labelled name, with --streamtool LABEL=PATH)."""
    out = []

    def st(scen, tool=tool):
        return summary.get((scen, tool))

    def ratio_goal(label, scen, target, cpu=False, st_scen=None):
        s = st(st_scen or scen)
        bp = best_peer(summary, scen)
        if not s or not bp or s["median"] != s["median"]:
            out.append((label, f">= {target}x best peer", "not measured", "–"))
            return
        r = s["median"] / bp[1]["median"]
        measured = f"{r:.2f}x ({f(s['median'])} vs {bp[0]} {f(bp[1]['median'])} GiB/s)"
        met = r >= target
        tgt = f">= {target}x best peer"
        if cpu:
            c, pc = s["cpu_per_gib"], bp[1]["cpu_per_gib"]
            measured += f"; CPU {f(c)} vs {f(pc)} s/GiB"
            met = met and c <= pc
            tgt += ", CPU/GiB <= its"
        out.append((label, tgt, measured, "met" if met else "missed"))

    ratio_goal("plain TCP client -> server", "plain", 1.2)
    ratio_goal("plain TCP client -> server, stdin a pipe", "plain-pipe", 1.2)
    ratio_goal("plain relay", "relay", 1.5)
    ratio_goal(f"TLS direct, same suite ({SUITE256})", "tls", 1.2, cpu=True)
    ratio_goal(f"TLS direct, streamtool ({SUITE256}) vs peers at {SUITE128}", "tls128", 1.2, cpu=True,
               st_scen="tls")
    ratio_goal(f"TLS relay, same suite ({SUITE128})", "tls-relay", 1.2, cpu=True)
    for scen, label in (("handshake-rsa", "RSA-2048"), ("handshake-ec", "ECDSA P-256")):
        s, o = st(scen), summary.get((scen, "openssl"))
        if s and o and s["median"] == s["median"] and o["median"] == o["median"]:
            r = s["median"] / o["median"]
            out.append((f"server CPU per full handshake, {label}", "<= 0.5x s_server",
                        f"{r:.2f}x ({f(s['median'], 0)} vs {f(o['median'], 0)} us)", "met" if r <= 0.5 else "missed"))
    s, n = st("conns"), summary.get(("conns", "ncat"))
    if s and n and s["median"] == s["median"]:
        out.append(("server CPU per plain connection", "<= ncat's",
                    f"{f(s['median'], 0)} vs {f(n['median'], 0)} us", "met" if s["median"] <= n["median"] else "missed"))
    for scen, lim in (("idle", 4), ("idle-tls", 16)):
        s = st(scen)
        if s and s["median"] == s["median"]:
            out.append((f"memory per idle connection, {'TLS' if 'tls' in scen else 'plain'}", f"<= {lim} KiB",
                        f"{f(s['median'], 1)} KiB", "met" if s["median"] <= lim else "missed"))
    return out


def goals_markdown(by_tool: dict) -> str:
    """One table; with several binaries, a column naming which one each row is about."""
    several = len(by_tool) > 1
    rows = ["| goal | " + ("binary | " if several else "") + "target | measured (medians) | |",
            "|---|" + ("---|" if several else "") + "---|---|---|"]
    for tool, g in by_tool.items():
        rows += [f"| {a} | " + (f"{tool} | " if several else "") + f"{b} | {c} | {d} |" for a, b, c, d in g]
    return "\n".join(rows) + "\n"


OURS_COLORS = ["#d62728", "#8c564b", "#e377c2", "#7f7f7f"]
COLORS = {"streamtool": "#d62728", "socat": "#1f77b4", "socat -b 131072": "#6baed6", "ncat": "#2ca02c",
          "nc": "#9467bd", "openssl": "#ff7f0e"}


def svg(summary: dict, meta: dict) -> str:
    """Horizontal bars of median throughput per tool per scenario, min–max as whiskers."""
    groups = []
    for scen in THROUGHPUT:
        rows = [(t, s) for (sc, t), s in summary.items() if sc == scen and s["median"] == s["median"]]
        if rows:
            groups.append((scen, rows))
    vmax = max((s["max"] for _, rows in groups for _, s in rows), default=1.0)
    vmax = max(0.5, (int(vmax * 2) + 1) / 2)
    left, width, bar, gap, top = 300, 520, 16, 4, 50
    height = top + sum(28 + len(rows) * (bar + gap) for _, rows in groups) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">Throughput on loopback, GiB/s '
           f'(median of {meta["runs"]}; whiskers: min–max)</text>',
           f'<text x="10" y="38" fill="#555">{esc(meta["machine"]["cpu"])}, {meta["machine"]["nproc"]} cores; '
           f'{esc(meta["date"])}; {esc(" ".join(["python3 bench/run.py", *meta["argv"]]))}</text>']
    y = top
    for scen, rows in groups:
        size = meta["sizes"].get(scen, "")
        out.append(f'<text x="10" y="{y + 16}" font-weight="bold">{esc(SCENARIOS[scen])}'
                   f'{", " + esc(size) if size else ""}</text>')
        y += 24
        for t, s in rows:
            w = s["median"] / vmax * width
            col = "#bbbbbb" if s["ref"] else COLORS.get(t, COLORS.get(t.split()[0], "#888"))
            if s["ours"] and t in meta.get("ours", []):
                col = OURS_COLORS[meta["ours"].index(t) % len(OURS_COLORS)]
            out.append(f'<text x="{left - 8}" y="{y + bar - 4}" text-anchor="end">{esc(t)}</text>')
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{col}"/>')
            x0, x1 = left + s["min"] / vmax * width, left + s["max"] / vmax * width
            cy = y + bar / 2
            out.append(f'<line x1="{x0:.1f}" y1="{cy}" x2="{x1:.1f}" y2="{cy}" stroke="black"/>')
            out.append(f'<line x1="{x0:.1f}" y1="{cy - 4}" x2="{x0:.1f}" y2="{cy + 4}" stroke="black"/>')
            out.append(f'<line x1="{x1:.1f}" y1="{cy - 4}" x2="{x1:.1f}" y2="{cy + 4}" stroke="black"/>')
            out.append(f'<text x="{max(x1, left + w) + 6:.1f}" y="{y + bar - 4}">{s["median"]:.2f}</text>')
            y += bar + gap
        y += 4
    # axis
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y}" stroke="#999"/>')
    step = 0.5 if vmax <= 4 else 1.0
    v = 0.0
    while v <= vmax + 1e-9:
        x = left + v / vmax * width
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 5}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 18}" text-anchor="middle" fill="#555">{v:g}</text>')
        v += step
    out.append("</svg>")
    return "\n".join(out) + "\n"


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


DOC_BEGIN = "<!-- bench/run.py results: begin (generated; `python3 bench/run.py --doc` rewrites this block) -->"
DOC_END = "<!-- bench/run.py results: end -->"
UDP_DOC_BEGIN = ("<!-- bench/run.py datagram results: begin (generated; `python3 bench/run.py --only udp --doc` "
                 "rewrites this block) -->")
UDP_DOC_END = "<!-- bench/run.py datagram results: end -->"


def update_doc(block: str, begin: str = DOC_BEGIN, end: str = DOC_END, heading: str = "## Against the peers") -> None:
    """Replaces the generated block between `begin` and `end` in docs/performance.md; without
    one, appends it (under `heading`, added at the end if missing)."""
    path = ROOT / "docs" / "performance.md"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        a, rest = text.split(begin, 1)
        _, b = rest.split(end, 1)
        text = a + begin + "\n" + block + end + b
    else:
        if heading not in text:
            text = text.rstrip("\n") + ("\n\n" if text else "") + heading + "\n\n"
        text = text.rstrip("\n") + "\n\n" + begin + "\n" + block + end + "\n"
    path.write_text(text)


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

def parse_size(s: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMG]i?B?)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (e.g. 2GiB, 512MiB)")
    n = float(m.group(1))
    u = (m.group(2) or "G").upper()[0]
    return int(n * {"K": 1 << 10, "M": MIB, "G": GIB}[u])


def human(n: int) -> str:
    return f"{n / GIB:g} GiB" if n >= GIB else f"{n / MIB:g} MiB"


def main() -> int:
    global HELPER, TLS_SEND, UDP_LOAD, WORK, LOGS, VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 256 MiB / 128 MiB, 1 run, short loads")
    ap.add_argument("--runs", type=int, help="runs per tool and scenario (default 5; --quick: 1)")
    ap.add_argument("--size", type=parse_size, help="plain transfers (default 2GiB; the issue used 4GiB)")
    ap.add_argument("--dump-size", type=parse_size,
                    help="the `dump` scenario's transfer (default 256MiB; --quick: 64MiB): a hex dump "
                    "is about 4.4x that, written under the work directory and deleted after each run")
    ap.add_argument("--tls-size", type=parse_size, help="TLS transfers (default 1GiB; the issue used 2GiB)")
    ap.add_argument("--hs-time", type=float, help="seconds of s_time per handshake run (default 2)")
    ap.add_argument("--conns", type=int, help="connections per connection-rate run (default 5000)")
    ap.add_argument("--idle-conns", type=int, help="idle connections per memory run (default 1000)")
    ap.add_argument("--tls-sender", choices=["c", "c-unbuffered", "python"], default="c",
                    help="the TLS relay's load generator: bench/tls_send.c (OpenSSL, records written "
                    "256 KiB at a time; default), the same with one send per record, or the slower "
                    "bench/tls_send.py (one send per record)")
    ap.add_argument("--udp-count", type=int, help="datagrams per udp run (default 200000; --quick: 20000)")
    ap.add_argument("--udp-window", type=int, default=32, help="requests outstanding in the window runs (default 32)")
    ap.add_argument("--udp-time", type=float, default=10.0, help="limit of one udp run, seconds (default 10; "
                    "iperf3 runs half of it)")
    ap.add_argument("--udp-rate", type=int, default=30000, help="udp-paced: datagrams/s (default 30000)")
    ap.add_argument("--iperf-rate", default="0", help="udp-iperf: iperf3 -b (default 0: as fast as it can)")
    ap.add_argument("--timeout", type=float, default=120.0, help="limit for one run, seconds (default 120)")
    ap.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS) +
                    " (" + ",".join(sorted(OPT_IN)) + " only when named here; udp names every udp-*, "
                    "udp-relay and udp-echo both sizes)")
    ap.add_argument("--tools", help="comma-separated tools to keep (e.g. streamtool,socat)")
    ap.add_argument("--doc", action="store_true",
                    help="write the tables into docs/performance.md and the chart to docs/perf-throughput.svg")
    ap.add_argument("--no-build", action="store_true", help="use target/release/streamtool as it is")
    ap.add_argument("--streamtool", action="append", metavar="[LABEL=]PATH",
                    help="measure this streamtool binary instead of target/release/streamtool (implies "
                         "--no-build); repeat to measure several side by side in the same run, interleaved, "
                         "each named 'streamtool (LABEL)' (LABEL defaults to the crypto provider its "
                         "--version names, e.g. ring or aws-lc-rs)")
    ap.add_argument("--no-install", action="store_true", help="never call apt-get")
    ap.add_argument("--workdir", help="where the test data goes (default /dev/shm, else the temp dir)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    if args.streamtool:
        args.no_build = True
    q = args.quick
    args.runs = args.runs or (1 if q else 5)
    args.size = args.size or (256 * MIB if q else 2 * GIB)
    args.tls_size = args.tls_size or (128 * MIB if q else GIB)
    args.dump_size = args.dump_size or (64 * MIB if q else 256 * MIB)
    args.hs_time = args.hs_time or (1 if q else 2)
    args.conns = args.conns or (1000 if q else 5000)
    args.idle_conns = args.idle_conns or (200 if q else 1000)
    args.udp_count = args.udp_count or (20000 if q else 200000)
    if args.only:
        args.only = ",".join(x for a in args.only.split(",") for x in ALIASES.get(a, [a]))

    set_subreaper()
    interrupted = {"sig": None}

    def on_signal(sig, _frame):
        interrupted["sig"] = sig
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    base = Path(args.workdir) if args.workdir else None
    if base is None:
        shm = Path("/dev/shm")
        need = args.size + args.tls_size + 6 * args.dump_size + 256 * MIB
        base = shm if shm.is_dir() and shutil.disk_usage(shm).free > 2 * need else Path(os.environ.get("TMPDIR", "/tmp"))
    WORK = base / f"streamtool-bench.{os.getpid()}"
    WORK.mkdir(parents=True)
    LOGS = WORK / "logs"
    LOGS.mkdir()
    (WORK / "rusage").mkdir()
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    started = time.monotonic()
    try:
        # The C TLS client is needed only by the TLS relay scenario, and not with the Python one.
        c_sender = args.tls_sender != "python" and (not args.only or "tls-relay" in args.only.split(","))
        install_peers(args.no_install, c_sender)
        build(args.no_build, bool(args.streamtool))
        bins = binaries(args.streamtool)
        HELPER, TLS_SEND = build_helper(c_sender)
        UDP_LOAD = str(WORK / "udp_load")
        subprocess.run(["cc", "-O2", "-o", UDP_LOAD, str(BENCH / "udp_load.c")], check=True)
        ctx = Ctx(args)
        make_certs(ctx)
        cases = [c for i, b in enumerate(bins) for c in build_cases(ctx, b, peers=i == 0)]
        cases.sort(key=lambda c: not c.ours)  # stable: in each scenario, the streamtool rows first
        only = set(args.only.split(",")) if args.only else None
        if only and only - set(SCENARIOS):
            sys.exit(f"run.py: unknown scenario(s) {', '.join(sorted(only - set(SCENARIOS)))}")
        tools = set(args.tools.split(",")) if args.tools else None
        # `dump` only when named: socat -x alone takes minutes per run (a write(2) per byte)
        cases = [c for c in cases if (c.scenario in only if only else c.scenario not in OPT_IN)
                 and (not tools or c.tool in tools or (c.ours and "streamtool" in tools))]
        need_plain = any(c.scenario in ("plain", "plain-pipe", "relay", "proxy", "proxy-http") for c in cases)
        need_tls = any(c.scenario in ("tls", "tls128", "tls-relay") for c in cases)
        log(f"work directory {WORK}; generating test data")
        if need_plain:
            make_data(ctx.plain, args.size)
        if need_tls:
            make_data(ctx.tls, args.tls_size)
        if any(c.scenario == "dump" for c in cases):
            make_data(ctx.dump, args.dump_size)
        suites = probe_suites(ctx, bins) if need_tls or only is None else {}
        meta = {
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "argv": sys.argv[1:], "runs": args.runs, "machine": machine(), "versions": versions(bins),
            "ours": [b.tool for b in bins], "dump_size": args.dump_size,
            "suites": suites, "load_before": os.getloadavg(),
            "sizes": {"plain": human(args.size), "plain-pipe": human(args.size), "relay": human(args.size),
                      "proxy": human(args.size),
                      "proxy-http": human(args.size), "dump": human(args.dump_size),
                      "tls": human(args.tls_size), "tls128": human(args.tls_size),
                      "tls-relay": human(args.tls_size),
                      "handshake-rsa": f"s_time -new, {args.hs_time:g} s", "handshake-ec": f"s_time -new, {args.hs_time:g} s",
                      "conns": f"{args.conns} connections", "idle": f"{args.idle_conns} connections",
                      "idle-tls": f"{args.idle_conns} connections"},
            "udp_params": f"(up to {args.udp_count} datagrams or {args.udp_time:g} s per run; window "
                          f"{args.udp_window}; paced at {args.udp_rate}/s; iperf3 -b {args.iperf_rate} "
                          f"-t {max(1, int(args.udp_time / 2))}; medians of {args.runs})",
        }
        log(f"suites: {suites}")
        for c in cases:
            if c.ours and c.scenario == "tls":
                c.suite = suites.get(c.tool, "")
        meta["load"] = {}
        # runs are interleaved (run 1 of every tool, then run 2, ...) so that noise from the
        # rest of the machine spreads over all tools
        scen_order = [s for s in SCENARIOS if any(c.scenario == s for c in cases)]
        for scen in scen_order:
            sc_cases = [c for c in cases if c.scenario == scen]
            runs = args.runs if not scen.startswith("idle") else min(args.runs, 3)
            meta["load"][scen] = round(os.getloadavg()[0], 2)
            log(f"== {SCENARIOS[scen]} ({runs} runs; load average {meta['load'][scen]:.2f})")
            for i in range(runs):
                for c in sc_cases:
                    r = c.runner(ctx, f"{scen}.{c.tool}.{i}")
                    c.runs.append(r)
                    reap_strays()
                    u, nd = unit(scen)
                    extra = f", CPU {r.cpu_per_gib:.2f} s/GiB" if scen in HIGHER_BETTER and r.ok else ""
                    if scen.startswith("udp-") and r.ok:
                        extra = (f", {r.extra['mib_s']:.1f} MiB/s, loss {r.extra['loss_pct']:.2f}%, "
                                 f"CPU {r.extra['cpu_us']:.1f} us/datagram")
                    log(f"   run {i + 1} {c.tool:22} {'ok ' if r.ok else 'BAD'} {f(r.value, nd)} {u}{extra}"
                        f"{'  (' + r.note + ')' if r.note else ''}")
        meta["load_after"] = os.getloadavg()
        meta["minutes"] = round((time.monotonic() - started) / 60, 1)
        summary = summarize(cases)
        md = markdown(summary, cases, meta)
        g = {b.tool: goals(summary, b.tool) for b in bins}
        gm = goals_markdown(g)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        command = " ".join(["python3 bench/run.py", *meta["argv"]])
        m = meta["machine"]
        head = (f"- Run {meta['date']}, {meta['minutes']} min: `{command}`\n"
                f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB, Linux {m['kernel']}; "
                f"load average (1 min) {meta['load_before'][0]:.2f} at the start\n"
                f"- Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "\n"
                + ("- Negotiated suites: " + "; ".join(f"{k}: {v}" for k, v in suites.items()) + "\n"
                   if suites else ""))
        only_udp = all(c.scenario.startswith("udp-") for c in cases)
        issue7 = "" if only_udp else "\n#### Goals of issue 7 (this run)\n\n" + gm
        block = head + issue7 + "\n#### Results\n" + md
        (results_dir / f"{stamp}.md").write_text(block)
        (results_dir / f"{stamp}.json").write_text(json.dumps({
            "meta": meta, "goals": g,
            "cases": [{"scenario": c.scenario, "tool": c.tool, "ours": c.ours, "note": c.note, "suite": c.suite,
                       "base": c.base, "vs": c.vs, "runs": [r.__dict__ for r in c.runs]} for c in cases]}, indent=1, default=str))
        chart = svg(summary, meta)
        (results_dir / f"{stamp}.svg").write_text(chart)
        print(block)
        if args.doc and only_udp:
            update_doc(block, UDP_DOC_BEGIN, UDP_DOC_END, "## Datagrams")
            log("wrote docs/performance.md (the generated block of \"Datagrams\")")
        elif args.doc:
            update_doc(block)
            (ROOT / "docs" / "perf-throughput.svg").write_text(chart)
            log("wrote docs/performance.md (the generated block) and docs/perf-throughput.svg")
        log(f"results in bench/results/{stamp}.{{md,json,svg}}; {meta['minutes']} min")
        bad = sum(1 for c in cases for r in c.runs if not r.ok)
        return 1 if bad else 0
    except KeyboardInterrupt:
        log(f"run.py: interrupted ({signal.Signals(interrupted['sig']).name if interrupted['sig'] else 'SIGINT'}); "
            f"ending every process started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup_all()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
