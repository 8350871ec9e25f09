#!/usr/bin/env python3
"""Hostile clients against a runward probe server, on loopback, bounded in time.

    python3 tests/e2e/hostile/suite.py cli|python|node

Starts the server of one frontend (`runward serve`, `Health.serve` from Python, `health.serve`
from Node) under an open-files limit of 256, then runs each attack in turn: a slowloris set
larger than that limit, idle keep-alive connections, oversized headers, bodies and query
strings, and malformed requests. Throughout every attack, `/livez` and `/readyz` are probed on
fresh connections; each probe must answer 200 within 100 ms. After each attack the server's
open files must return to their baseline while the attacker still holds its sockets, so the
server closed them itself. At the end the server must stop on SIGTERM with exit 0 and have
logged no panic. Prints one line per attack: connections held (or requests sent), probe latency,
files before/peak/after.

Environment: RUNWARD_BIN (the CLI binary), PYTHON (the interpreter with `runward` installed;
default the repository's .venv), NODE (default `node`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
FILE_LIMIT = 256
HEADER_MS = 1000
IDLE_MS = 2000
PROBE_BUDGET_MS = 100.0
FD_SLACK = 3

CONFIG = f"""
[service]
id = "hostile"

[server]
drain_ms = 0

[server.limits]
header_read_timeout_ms = {HEADER_MS}
idle_timeout_ms = {IDLE_MS}

[[checks]]
name = "scratch"
kind = "disk"
path = "."
probes = ["readiness"]
interval_ms = 500
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(frontend: str, config: Path, addr: str) -> List[str]:
    if frontend == "cli":
        built = sorted(ROOT.glob("target/*/debug/runward")) + [ROOT / "target/debug/runward"]
        binary = os.environ.get("RUNWARD_BIN") or str(built[0])
        return [binary, "--config", str(config), "serve", "--addr", addr]
    if frontend == "python":
        python = os.environ.get("PYTHON") or str(ROOT / ".venv" / "bin" / "python")
        return [python, str(HERE / "serve_python.py"), str(config), addr]
    if frontend == "node":
        return [os.environ.get("NODE", "node"), str(HERE / "serve_node.js"), str(config), addr]
    raise SystemExit(f"unknown frontend `{frontend}`: expected cli, python or node")


def status_of(response: bytes) -> Optional[int]:
    parts = response.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def exchange(port: int, request: bytes, timeout: float = 3.0) -> Optional[int]:
    """Sends `request` on a fresh connection; the status answered, or None if closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except OSError:
            pass  # The server may refuse before the whole request is sent.
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return status_of(data)


def probe(port: int, path: str) -> Optional[int]:
    request = f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode()
    return exchange(port, request, timeout=2.0)


class Server:
    def __init__(self, frontend: str, work: Path) -> None:
        config = work / "runward.toml"
        config.write_text(CONFIG)
        self.port = free_port()
        self.stderr_path = work / "server.err"
        argv = command(frontend, config, f"127.0.0.1:{self.port}")
        self.proc = subprocess.Popen(
            ["sh", "-c", f'ulimit -n {FILE_LIMIT} && exec "$@"', "sh", *argv],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "wb"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited at start:\n{self.stderr()}")
            try:
                if probe(self.port, "/readyz") == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"the server did not become ready in 30 s:\n{self.stderr()}")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


class Prober(threading.Thread):
    """Probes /livez and /readyz on fresh connections every 50 ms, recording latencies."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: List[float] = []
        self.failures: List[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for path in ("/livez", "/readyz"):
                started = time.perf_counter()
                try:
                    code = probe(self.port, path)
                except OSError as err:
                    code = None
                    self.failures.append(f"{path}: {err}")
                took = (time.perf_counter() - started) * 1000
                self.latencies.append(took)
                if code != 200:
                    self.failures.append(f"{path}: answered {code}")
                elif took > PROBE_BUDGET_MS:
                    self.failures.append(f"{path}: took {took:.1f} ms")
            self.halt.wait(0.05)


class FdSampler(threading.Thread):
    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = server.fds()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.peak = max(self.peak, self.server.fds())
            self.halt.wait(0.02)


def connect(port: int) -> Optional[socket.socket]:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1.0)
    except OSError:
        return None


def slowloris(port: int, count: int = 400, seconds: float = 4.0) -> int:
    """Keeps `count` connections trickling header bytes, reopening those the server closes.
    Then stops sending and keeps them open; returns the most held at once."""
    sockets: List[Optional[socket.socket]] = [None] * count
    held = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for i in range(count):
            s = sockets[i]
            if s is None:
                s = connect(port)
                if s is None:
                    continue
                try:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    s.close()
                    continue
                sockets[i] = s
            else:
                try:
                    s.sendall(b"X-Slow: a\r\n")
                except OSError:
                    s.close()
                    sockets[i] = None
        held = max(held, sum(1 for s in sockets if s is not None))
        time.sleep(0.25)
    _hold.extend(s for s in sockets if s is not None)
    return held


def idle_keep_alive(port: int, count: int = 400) -> int:
    """Opens `count` keep-alive connections that each make one request, then stay idle."""
    held = 0
    for _ in range(count):
        s = connect(port)
        if s is None:
            continue
        try:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(4096):
                held += 1
        except OSError:
            pass
        _hold.append(s)
    return held


def for_seconds(seconds: float, attack: Callable[[int], int]) -> Callable[[int], int]:
    """Repeats a short attack until `seconds` have passed, so that probes run throughout."""

    def repeated(port: int) -> int:
        until = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < until:
            sent += attack(port)
        return sent

    return repeated


def oversized(port: int) -> int:
    """Headers over the limit, bodies over the limit (declared and chunked), 1 MB query strings."""
    sent = 0
    big_header = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Fill: " + b"a" * 65536 + b"\r\n\r\n"
    many_headers = b"GET /readyz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(500)
    ) + b"\r\n"
    declared = b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n" + b"b" * (1 << 20)
    chunk = b"100000\r\n" + b"c" * 0x100000 + b"\r\n"
    chunked = b"POST /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2
    query = b"GET /readyz?" + b"q" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for request, allowed in [
        (big_header, {431, None}),
        (many_headers, {431, None}),
        (declared, {413, None}),
        (chunked, {405, 413, None}),
        (query, {414, 431, None}),
    ]:
        for _ in range(2):
            code = exchange(port, request)
            check(code in allowed, f"an oversized request got {code}, expected one of {allowed}")
            sent += 1
    return sent


MALFORMED = [
    b"BREW /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"DELETE /livez HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /readyz/%00%ff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /readyz/" + b"n" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /readyz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /readyz\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(64),
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    os.urandom(512),
]


def malformed(port: int) -> int:
    """Invalid methods, paths, versions and framing; none may get a 500."""
    sent = 0
    for _ in range(2):
        for request in MALFORMED:
            code = exchange(port, request)
            check(code is None or code < 500 or code == 505, f"{request[:40]!r} got {code}")
            sent += 1
    return sent


_hold: List[socket.socket] = []
_problems: List[str] = []


def check(ok: bool, problem: str) -> None:
    if not ok and problem not in _problems:
        _problems.append(problem)


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def run_attack(
    server: Server, baseline: int, name: str, attack: Callable[[int], int], unit: str
) -> None:
    prober = Prober(server.port)
    sampler = FdSampler(server)
    before = server.fds()
    prober.start()
    sampler.start()
    held = attack(server.port)
    # The attacker keeps its sockets: the server must close them itself.
    deadline = time.monotonic() + (HEADER_MS + IDLE_MS) / 1000 + 5
    while server.fds() > baseline + FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.05)
    after = server.fds()
    prober.halt.set()
    sampler.halt.set()
    prober.join()
    sampler.join()
    for s in _hold:
        s.close()
    _hold.clear()
    lat = prober.latencies
    print(
        f"  {name:<16} {held:>5} {unit:<8}  probes {len(lat):>4}  max {max(lat):6.1f} ms  "
        f"p99 {percentile(lat, 0.99):6.1f} ms  files before {before} peak {sampler.peak} after {after}"
    )
    check(after <= baseline + FD_SLACK, f"{name}: open files {after}, baseline {baseline}")
    for failure in prober.failures[:5]:
        check(False, f"{name}: probe {failure}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    frontend = sys.argv[1]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(frontend, Path(tmp))
        try:
            for _ in range(20):
                probe(server.port, "/readyz")
            time.sleep(0.5)
            baseline = server.fds()
            print(f"hostile clients against the {frontend} server (open files limit {FILE_LIMIT}, "
                  f"baseline {baseline} files):")
            run_attack(server, baseline, "slowloris", slowloris, "held")
            run_attack(server, baseline, "idle keep-alive", idle_keep_alive, "held")
            run_attack(server, baseline, "oversized", for_seconds(2.0, oversized), "requests")
            run_attack(server, baseline, "malformed", for_seconds(2.0, malformed), "requests")
        finally:
            code = server.stop()
        stderr = server.stderr()
        check(code == 0, f"the server exited {code} on SIGTERM")
        check("panicked" not in stderr, f"the server panicked:\n{stderr}")
    elapsed = time.monotonic() - started
    if _problems:
        for problem in _problems:
            print(f"FAIL {problem}")
        return 1
    print(f"ok   every probe answered 200 within {PROBE_BUDGET_MS:.0f} ms; files back to baseline; "
          f"no panic; clean exit ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
