"""examples/python/fastapi_app.py end to end: a real uvicorn process on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from conftest import wait_until

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, body: Optional[Dict[str, Any]] = None) -> Tuple[int, Dict[str, str], str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, dict(res.headers), res.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def answers(url: str) -> bool:
    try:
        return request(url)[0] in (200, 503)
    except OSError:
        return False


class App:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path, config: Path) -> None:
        self.proc, self.url, self.log, self.config = proc, url, log, config

    def get(self, path: str) -> Tuple[int, Dict[str, str], str]:
        return request(self.url + path)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    # A copy of the config, so the data directory is created under tmp_path, not in the repo.
    config = tmp_path / "runward.toml"
    shutil.copy(EXAMPLE / "runward.toml", config)
    port = free_port()
    env = dict(os.environ, PORT=str(port), RUNWARD_CONFIG=str(config), SHUTDOWN_GRACE_MS="1500",
               PYTHONDONTWRITEBYTECODE="1")
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE / "fastapi_app.py")], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    app = App(proc, f"http://127.0.0.1:{port}", log, config)
    try:
        started = wait_until(lambda: proc.poll() is not None or answers(app.url + "/livez"), timeout=60, interval=0.1)
        assert started and proc.poll() is None, f"the app did not start:\n{app.output()}"
        yield app
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_fastapi_example_serves_the_api_and_the_probes(app: App) -> None:
    # Readiness: the database passes; the optional MemoryKernel is down, so `warn` (200).
    def ready_warn() -> bool:
        status, _, body = app.get("/readyz")
        return status == 200 and json.loads(body)["status"] == "warn"

    assert wait_until(ready_warn, timeout=20, interval=0.1), app.get("/readyz")
    status, headers, body = app.get("/readyz")
    assert headers["content-type"] == "application/health+json"
    report = json.loads(body)
    by_check = {entry["componentId"]: entry for entries in report["checks"].values() for entry in entries}
    assert set(by_check) == {"data-dir", "db", "memory-kernel", "job-queue"}
    assert by_check["db"]["status"] == "pass"
    assert by_check["job-queue"]["status"] == "pass"
    assert by_check["memory-kernel"]["status"] == "fail"
    assert by_check["memory-kernel"]["critical"] is False
    assert by_check["memory-kernel"]["outage"] == "connection_refused"

    status, _, body = app.get("/readyz/db")
    assert status == 200 and json.loads(body)["status"] == "pass"
    assert app.get("/startupz")[0] == 200
    assert app.get("/livez")[0] == 200
    assert app.get("/healthz")[0] == 200

    # The API, on the same port.
    status, _, body = app.get("/api/tickets")
    assert status == 200
    assert [t["title"] for t in json.loads(body)] == ["Printer offline", "Reset password"]
    status, _, body = request(app.url + "/api/tickets", {"title": "VPN drops"})
    assert status == 201 and json.loads(body)["id"] == 3
    status, _, body = app.get("/api/tickets/3")
    assert status == 200 and json.loads(body)["title"] == "VPN drops"
    assert app.get("/api/tickets/99")[0] == 404
    status, _, body = app.get("/api/tickets/3/draft")
    assert status == 200 and json.loads(body)["enrichment"] == "fallback"
    assert (app.config.parent / "data" / "tickets.db").is_file()

    # Metrics from the snapshot, with the counter the notification worker pushes.
    assert wait_until(lambda: 'runward_app_value{name="notifications_sent"} 1' in app.get("/metrics")[2], timeout=10)
    metrics = app.get("/metrics")[2]
    assert 'runward_check_status{check="db",status="pass"} 1' in metrics
    assert 'runward_check_status{check="memory-kernel",status="fail"} 1' in metrics

    # SIGTERM: readiness fails at once, liveness holds during the grace period, then a clean exit.
    app.proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: app.get("/readyz")[0] == 503, timeout=5, interval=0.05), app.output()
    assert app.get("/livez")[0] == 200
    assert app.proc.wait(30) == 0, app.output()
    out = app.output()
    assert "Application shutdown complete" in out
    assert "Traceback" not in out
