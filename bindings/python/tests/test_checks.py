"""Python functions and coroutines as checks: results, failures, deadlines, thresholds."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from typing import Any, Dict, List

import pytest

import runward
from conftest import os_thread_name, wait_until


def test_sync_and_coroutine_checks_pass() -> None:
    calls: List[str] = []

    def sync_check() -> None:
        calls.append("sync")

    async def async_check() -> bool:
        await asyncio.sleep(0.01)
        calls.append("async")
        return True

    h = runward.Health(service_id="demo")
    h.add_check("sync", sync_check)
    h.add_check("async", async_check)
    assert h.status() == "fail"  # readiness fails closed before the first result
    h.refresh_all()
    assert sorted(calls) == ["async", "sync"]
    assert h.status("readiness") == "pass"
    assert h.check_names == ["sync", "async"]


def test_coroutine_runs_on_runward_loop_thread() -> None:
    seen: Dict[str, str] = {}

    async def where() -> None:
        seen["thread"] = threading.current_thread().name

    h = runward.Health()
    h.add_check("where", where)
    assert h.refresh("where")["status"] == "pass"
    assert seen["thread"] == "runward-asyncio"


def test_coroutine_on_a_given_loop() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        seen: List[asyncio.AbstractEventLoop] = []

        async def where() -> None:
            seen.append(asyncio.get_running_loop())

        h = runward.Health()
        h.add_check("where", where, event_loop=loop)
        assert h.refresh("where")["status"] == "pass"
        assert seen == [loop]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2)
        loop.close()


@pytest.mark.parametrize(
    "value, status, output",
    [
        (None, "pass", None),
        (True, "pass", None),
        (False, "fail", "the check returned False"),
        ("42 rows", "pass", "42 rows"),
        (runward.Outcome("warn", "slow"), "warn", "slow"),
        ({"status": "fail", "output": "down", "outage": "provider_unavailable"}, "fail", "down"),
        (3.5, "fail", "the check returned float"),
        ({"status": "fine"}, "fail", "invalid status `fine`"),
    ],
)
def test_return_values(value: Any, status: str, output: Any) -> None:
    h = runward.Health()
    h.add_check("c", lambda: value)
    state = h.refresh("c")
    assert state["status"] == status
    if output is None:
        assert state["output"] is None
    else:
        assert output in state["output"]


def test_outcome_fields_reach_the_state_and_report() -> None:
    outcome = runward.Outcome(
        "fail",
        "connection refused by db:5432",
        observed=12.5,
        unit="ms",
        measurement="responseTime",
        outage="connection_refused",
        remediation="start the database",
        details={"attempts": 3},
    )
    assert outcome.state == "offline"  # implied by the outage class
    assert outcome.to_dict()["observed"] == {"measurement": "responseTime", "value": 12.5, "unit": "ms"}
    h = runward.Health()
    h.add_check("db", lambda: outcome, component_type="datastore")
    state = h.refresh("db")
    assert state["outage"] == "connection_refused"
    assert state["state"] == "offline"
    assert state["observed"] == {"measurement": "responseTime", "value": 12.5, "unit": "ms"}
    assert state["details"] == {"attempts": 3}
    assert state["remediation"] == "start the database"
    entry = h.report()["checks"]["db:responseTime"][0]
    assert entry["componentType"] == "datastore"
    assert entry["observedValue"] == 12.5
    assert entry["observedUnit"] == "ms"
    assert entry["outage"] == "connection_refused"


def test_outcome_rejects_invalid_values() -> None:
    with pytest.raises(runward.InvalidInputError, match="outage class"):
        runward.Outcome("fail", outage="gone")
    with pytest.raises(runward.InvalidInputError, match="observed"):
        runward.Outcome("pass", unit="ms")
    with pytest.raises(ValueError):
        runward.Outcome("great")
    assert runward.Outcome("pass") == runward.Outcome("pass")


def test_exception_fails_with_message_and_registry_keeps_working() -> None:
    attempts = {"n": 0}

    def flaky() -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("db refused the connection")

    async def broken() -> None:
        raise RuntimeError("async boom")

    h = runward.Health()
    h.add_check("flaky", flaky)
    h.add_check("broken", broken, critical=False)
    first = h.refresh("flaky")
    assert first["status"] == "fail"
    assert first["output"] == "ConnectionError: db refused the connection"
    assert h.refresh("broken")["output"] == "RuntimeError: async boom"
    assert h.refresh("flaky")["status"] == "pass"
    assert h.status() == "warn"  # the failing check is optional


def test_hung_sync_check_times_out_within_deadline() -> None:
    release = threading.Event()

    def hung() -> None:
        release.wait(10)

    h = runward.Health()
    h.add_check("hung", hung, timeout_ms=300)
    try:
        started = time.monotonic()
        state = h.refresh("hung")
        took = time.monotonic() - started
        assert state["status"] == "fail"
        assert state["outage"] == "timeout"
        assert state["timeouts"] == 1
        assert took < 1.5, took
        # The abandoned call is still running: the next run reports at once instead of piling up.
        started = time.monotonic()
        again = h.refresh("hung")
        assert again["outage"] == "timeout"
        assert "still in progress" in again["output"]
        assert time.monotonic() - started < 0.5
    finally:
        release.set()


def test_hung_coroutine_times_out_and_is_cancelled() -> None:
    cancelled = threading.Event()

    async def hung() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    h = runward.Health()
    h.add_check("hung", hung, timeout_ms=300)
    started = time.monotonic()
    state = h.refresh("hung")
    assert time.monotonic() - started < 1.5
    assert state["status"] == "fail"
    assert state["outage"] == "timeout"
    assert cancelled.wait(2), "the abandoned coroutine was not cancelled"


def test_sync_function_returning_a_coroutine_is_awaited() -> None:
    async def inner() -> str:
        await asyncio.sleep(0)
        return "awaited"

    h = runward.Health()
    h.add_check("wrapped", lambda: inner())
    assert h.refresh("wrapped")["output"] == "awaited"


def test_real_loopback_dependency(http_dependency: Any) -> None:
    host, port = http_dependency.server_address[:2]
    url = f"http://{host}:{port}/health"

    def dependency() -> str:
        with urllib.request.urlopen(url, timeout=1) as response:
            return f"HTTP {response.status}"

    h = runward.Health()
    h.add_check("upstream", dependency, timeout_ms=2000)
    state = h.refresh("upstream")
    assert state["status"] == "pass", state
    assert state["output"] == "HTTP 200"
    http_dependency.shutdown()
    http_dependency.server_close()
    down = h.refresh("upstream")
    assert down["status"] == "fail"
    assert "refused" in down["output"].lower()


def test_thresholds_and_transitions() -> None:
    results = [True, False, False, True, True]
    transitions: List[Dict[str, Any]] = []
    h = runward.Health()
    h.add_check("damped", lambda: results.pop(0), failure_threshold=2, success_threshold=2)
    h.on_transition(transitions.append)
    statuses = [h.refresh("damped")["status"] for _ in range(5)]
    assert statuses == ["pass", "pass", "fail", "fail", "pass"]
    assert wait_until(lambda: len(transitions) == 3)
    assert [(t["from"], t["to"]) for t in transitions] == [("unknown", "pass"), ("pass", "fail"), ("fail", "pass")]
    assert transitions[1]["check"] == "damped"
    assert transitions[1]["consecutive_failures"] == 2
    assert transitions[1]["output"] == "the check returned False"


def test_transition_callbacks_run_on_a_runward_thread() -> None:
    threads: List[str] = []
    results = [True, False]
    h = runward.Health()
    h.add_check("c", lambda: results.pop(0))
    h.refresh_all()  # builds the registry; callbacks may still be added after
    h.on_transition(lambda t: threads.append(os_thread_name()))
    assert h.refresh("c")["status"] == "fail"
    assert wait_until(lambda: threads == ["runward-hooks"]), threads


def test_periodic_checks_run_in_the_background() -> None:
    runs = {"n": 0}

    def counted() -> None:
        runs["n"] += 1

    h = runward.Health()
    h.add_check("tick", counted, interval_ms=50, jitter_ms=0)
    h.start()
    assert wait_until(lambda: runs["n"] >= 3)
    assert h.status() == "pass"
    h.stop()


def test_on_demand_check_runs_on_refresh() -> None:
    h = runward.Health()
    h.add_check("lazy", lambda: "ok", mode="on_demand", ttl_ms=1000)
    assert h.refresh("lazy")["output"] == "ok"


def test_add_check_validation() -> None:
    h = runward.Health()
    h.add_check("a", lambda: True)
    with pytest.raises(runward.InvalidInputError, match="two checks are named `a`"):
        h.add_check("a", lambda: True)
    with pytest.raises(runward.InvalidInputError, match="check name `bad name` contains a space"):
        h.add_check("bad name", lambda: True)
    with pytest.raises(runward.InvalidInputError, match="probe kind"):
        h.add_check("b", lambda: True, probes=["sometimes"])
    with pytest.raises(runward.InvalidInputError, match="mode"):
        h.add_check("b", lambda: True, mode="hourly")
    with pytest.raises(runward.InvalidInputError, match="zero timeout"):
        h.add_check("b", lambda: True, timeout_ms=0)
    with pytest.raises(TypeError):
        h.add_check("b", "not callable")  # type: ignore[arg-type]
    h.start()
    with pytest.raises(runward.InvalidInputError, match="once the registry is built"):
        h.add_check("late", lambda: True)
    with pytest.raises(runward.NotFoundError, match="no check named `nope`"):
        h.refresh("nope")


def test_values_and_gates() -> None:
    h = runward.Health()
    h.set_value("queue_depth", 7)
    assert h.add_value("jobs_failed", 1) == 1.0
    assert h.add_value("jobs_failed", 2) == 3.0
    h.add_check("c", lambda: True)
    h.refresh_all()
    assert h.status() == "pass"
    h.close_gate("maintenance", "migrating")
    assert h.status() == "fail"
    assert "gate `maintenance` closed: migrating" in h.report("readiness")["notes"]
    h.open_gate("maintenance")
    assert h.status() == "pass"
    checks = h.report()["checks"]
    assert checks["queue_depth:value"][0]["observedValue"] == 7.0
    assert checks["jobs_failed:value"][0]["observedValue"] == 3.0


def test_dependency_check_on_liveness_warns() -> None:
    h = runward.Health()
    h.add_check("db", lambda: True, probes=["liveness", "readiness"])
    assert any("liveness" in w for w in h.warnings)
