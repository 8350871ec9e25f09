"""runward.asgi.HealthApp: the probe endpoints as an ASGI app."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, MutableMapping, Tuple

import pytest

import runward
from runward.asgi import HealthApp


def make() -> runward.Health:
    h = runward.Health(service_id="asgi")
    h.add_check("db", lambda: "ok")
    h.refresh_all()
    return h


def call(app: HealthApp, path: str, *, method: str = "GET", query: bytes = b"", root_path: str = "",
         headers: List[Tuple[bytes, bytes]] = [], client: Tuple[str, int] = ("10.0.0.7", 5000)
         ) -> Tuple[int, Dict[str, str], bytes]:
    scope: Dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": root_path,
        "query_string": query, "headers": headers, "client": client, "server": ("testserver", 80),
    }
    sent: List[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, body["body"]


def test_asgi_callable_with_a_hand_made_scope() -> None:
    app = HealthApp(make())
    status, headers, body = call(app, "/readyz")
    assert status == 200
    assert headers["content-type"] == "application/health+json"
    assert headers["content-length"] == str(len(body))
    assert json.loads(body) == {"status": "pass"}  # a remote client sees the status only
    status, _, body = call(app, "/readyz", client=("127.0.0.1", 5000))
    assert json.loads(body)["checks"]["db:status"][0]["output"] == "ok"
    status, _, body = call(app, "/health/readyz", root_path="/health", query=b"verbose",
                           client=("::1", 5000))
    assert body.decode().startswith("[+]db ok")
    assert call(app, "/nothing")[0] == 404
    status, headers, body = call(app, "/readyz", method="HEAD")
    assert status == 200 and body == b""
    assert call(app, "/readyz", method="POST")[0] == 405


def test_asgi_token_policy() -> None:
    app = HealthApp(make(), details="token", token="abc")
    assert json.loads(call(app, "/healthz", client=("127.0.0.1", 1))[2]) == {"status": "pass"}
    body = call(app, "/healthz", headers=[(b"authorization", b"Bearer abc")])[2]
    assert "checks" in json.loads(body)


def test_asgi_starts_the_checks() -> None:
    h = runward.Health()
    h.add_check("db", lambda: True, interval_ms=20, jitter_ms=0)
    app = HealthApp(h)
    call(app, "/readyz")
    import time

    deadline = time.monotonic() + 5
    while h.status() != "pass" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert h.status() == "pass"


def test_mounted_in_fastapi() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    api = fastapi.FastAPI()

    @api.get("/hello")
    def hello() -> Dict[str, str]:
        return {"hello": "world"}

    h = make()
    api.mount("/health", HealthApp(h, details="public"))
    client = testclient.TestClient(api)
    assert client.get("/hello").json() == {"hello": "world"}
    response = client.get("/health/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    assert response.json()["checks"]["db:status"][0]["status"] == "pass"
    assert client.get("/health/livez").status_code == 200
    assert "runward_check_up" in client.get("/health/metrics").text
    h.begin_shutdown()
    assert client.get("/health/readyz").status_code == 503


def test_on_demand_checks_answer_at_probe_periods_beyond_their_ttl() -> None:
    import time

    h = runward.Health()
    state = {"up": True, "runs": 0}

    def lazy() -> bool:
        state["runs"] += 1
        return state["up"]

    h.add_check("lazy", lazy, mode="on_demand", ttl_ms=100, timeout_ms=1000)
    app = HealthApp(h)
    for period in (0.05, 0.3, 0.6):
        assert call(app, "/readyz")[0] == 200, f"probed every {period} s"
        time.sleep(period)
    runs = state["runs"]
    state["up"] = False
    time.sleep(0.15)
    assert call(app, "/readyz")[0] == 503, "the first probe after the TTL reports the failure"
    assert state["runs"] == runs + 1
