"""The health server on runward's own threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

import runward
from conftest import wait_until


def get(url: str, token: Optional[str] = None) -> Tuple[int, Dict[str, str], str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_serves_probe_endpoints() -> None:
    h = runward.Health(service_id="api")
    h.add_check("db", lambda: "connected")
    h.add_check("search", lambda: False, critical=False)
    with h.serve("127.0.0.1:0", details="public") as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        h.refresh_all()
        status, headers, body = get(server.url + "/readyz")
        assert status == 200
        assert headers["content-type"] == "application/health+json"
        assert headers["cache-control"].startswith("max-age=")
        doc = json.loads(body)
        assert doc["status"] == "warn"
        assert doc["serviceId"] == "api"
        assert doc["checks"]["search:status"][0]["critical"] is False
        assert get(server.url + "/readyz/db")[0] == 200
        assert get(server.url + "/readyz/nope")[0] == 404
        assert get(server.url + "/livez")[0] == 200
        verbose = get(server.url + "/readyz?verbose")[2]
        assert "[+]db ok" in verbose
        assert "runward_probe_requests_total" in get(server.url + "/metrics")[2]
    assert not server.running


def test_details_behind_a_token() -> None:
    h = runward.Health()
    h.add_check("db", lambda: "secret detail")
    server = h.serve("127.0.0.1:0", details="token", token="s3cret")
    try:
        h.refresh_all()
        anonymous = json.loads(get(server.url + "/healthz")[2])
        assert anonymous == {"status": "pass"}
        full = json.loads(get(server.url + "/healthz", token="s3cret")[2])
        assert full["checks"]["db:status"][0]["output"] == "secret detail"
    finally:
        server.close()


QUERY = r"""
import json, sys, time, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(count):
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200, response.status
        response.read()
    times.append(time.monotonic() - start)
    time.sleep(0.1)
print(json.dumps(times))
"""


def test_answers_while_the_main_thread_holds_the_gil() -> None:
    h = runward.Health()
    h.add_check("db", lambda: True, interval_ms=60_000)
    server = h.serve("127.0.0.1:0")
    try:
        h.refresh_all()
        querier = subprocess.Popen(
            [sys.executable, "-c", QUERY, server.url + "/readyz", "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # A pure-Python busy loop: the main thread keeps the GIL except at switch intervals.
        deadline = time.monotonic() + 2.5
        spins = 0
        while time.monotonic() < deadline and querier.poll() is None:
            spins += 1
        out, err = querier.communicate(timeout=30)
        assert querier.returncode == 0, err
        times = json.loads(out)
        assert len(times) == 8
        assert max(times) < 0.5, times
        assert spins > 0
    finally:
        server.close()


def test_shutdown_sequence_fails_readiness_and_keeps_liveness() -> None:
    h = runward.Health()
    h.add_check("db", lambda: True)
    server = h.serve("127.0.0.1:0")
    h.refresh_all()
    assert get(server.url + "/readyz")[0] == 200
    done = threading.Event()

    def shut() -> None:
        server.shutdown(drain_ms=5000)
        done.set()

    thread = threading.Thread(target=shut)
    thread.start()
    assert wait_until(lambda: h.shutting_down)
    assert get(server.url + "/readyz")[0] == 503
    assert get(server.url + "/livez")[0] == 200
    assert h.status("readiness") == "fail"
    assert not done.is_set()
    h.mark_drained()  # in-flight work is done: the server may stop now
    assert done.wait(5)
    thread.join()
    assert not server.running
    server.shutdown()  # a second call does nothing


def test_server_stays_up_without_a_reference() -> None:
    h = runward.Health()
    h.add_check("db", lambda: True)
    port = h.serve("127.0.0.1:0").port
    h.refresh_all()
    assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200


def test_serve_raises_the_soft_open_files_limit_to_the_hard_one() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        with runward.Health().serve("127.0.0.1:0"):
            assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(256, hard)), hard))


def test_serve_cuts_off_slow_and_idle_clients_and_keeps_answering_probes() -> None:
    import socket

    h = runward.Health()
    h.add_check("db", lambda: True)
    h.refresh_all()
    with h.serve(
        "127.0.0.1:0", header_read_timeout_ms=300, idle_timeout_ms=500, max_connections=8
    ) as server:
        assert server.max_connections == 8
        slow = socket.create_connection(("127.0.0.1", server.port))
        silent = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /readyz HTTP/1.1\r\n")
        started = time.monotonic()
        for conn in (slow, silent):
            conn.settimeout(3)
            assert conn.recv(1024) == b"", "the server closes the connection"
            conn.close()
        assert time.monotonic() - started < 2.5
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
        # Beyond the limit of 8, the oldest idle connections made room: probes still answer.
        assert get(f"{server.url}/readyz")[0] == 200
        held[0].settimeout(3)
        assert held[0].recv(1024) == b"", "the oldest connection was closed to make room"
        for conn in held:
            conn.close()


def test_serve_refuses_limits_out_of_range() -> None:
    h = runward.Health()
    try:
        h.serve("127.0.0.1:0", header_read_timeout_ms=0)
    except runward.InvalidInputError as err:
        assert "header_read_timeout_ms" in str(err)
    else:
        raise AssertionError("a header timeout of 0 was accepted")


def test_on_demand_checks_pass_through_the_server_at_periods_beyond_their_ttl() -> None:
    h = runward.Health()
    h.add_check("lazy", lambda: True, mode="on_demand", ttl_ms=100, timeout_ms=1000)
    with h.serve("127.0.0.1:0") as server:
        for period in (0.05, 0.3, 0.6):
            assert get(f"{server.url}/readyz")[0] == 200, f"probed every {period} s"
            time.sleep(period)
