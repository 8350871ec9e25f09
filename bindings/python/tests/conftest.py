"""Shared helpers for the runward Python tests."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Polls ``condition`` until it is true or ``timeout`` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def os_thread_name() -> str:
    """The operating system's name of the calling thread (Python names foreign threads ``Dummy-N``)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            return f.read().strip()
    except OSError:
        pytest.skip("thread names need /proc")


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_dependency() -> Iterator[http.server.ThreadingHTTPServer]:
    """A real HTTP server on loopback, standing in for a dependency."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Writes ``runward.toml`` into a temporary directory and returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / "runward.toml"
        path.write_text(text)
        return path

    return write
