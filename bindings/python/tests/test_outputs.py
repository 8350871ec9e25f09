"""Renderings of the snapshot: health+json, table, verbose text, Prometheus, doctor, handle."""

from __future__ import annotations

import json
import time

import runward


def make() -> runward.Health:
    h = runward.Health(service_id="svc", version="1.0.0", release_id="r42", description="demo service")
    h.add_check("db", lambda: runward.Outcome("pass", observed=3, unit="ms", measurement="responseTime"),
                component_type="datastore", affected_endpoints=["/api/search"])
    h.add_check("cache", lambda: runward.Outcome("fail", "redis down", outage="connection_refused"),
                critical=False, remediation="restart redis")
    h.refresh_all()
    return h


def test_health_json_fields() -> None:
    h = make()
    doc = h.report("readiness")
    assert doc["status"] == "warn"
    assert doc["serviceId"] == "svc"
    assert doc["version"] == "1.0.0"
    assert doc["releaseId"] == "r42"
    assert doc["description"] == "demo service"
    assert doc["output"] == "failing: cache"
    db = doc["checks"]["db:responseTime"][0]
    assert db["componentId"] == "db"
    assert db["componentType"] == "datastore"
    assert db["observedValue"] == 3
    assert db["observedUnit"] == "ms"
    assert db["affectedEndpoints"] == ["/api/search"]
    assert "time" in db
    cache = doc["checks"]["cache:status"][0]
    assert cache["status"] == "fail"
    assert cache["outage"] == "connection_refused"
    assert cache["dependencyState"] == "offline"
    assert cache["critical"] is False
    assert h.report("readiness", detail="status") == {"status": "warn"}
    assert h.report()["status"] == "warn"


def test_table_and_verbose_text() -> None:
    h = make()
    table = h.table("readiness")
    assert table.startswith("readiness: warn  (svc)")
    assert "[connection_refused] redis down" in table
    verbose = h.verbose("readiness")
    assert "[+]db ok" in verbose
    assert "[-]cache failed: redis down" in verbose
    assert verbose.strip().endswith("readyz check passed")


def test_prometheus_text() -> None:
    h = make()
    h.set_value("queue_depth", 4)
    text = h.prometheus()
    assert "# TYPE runward_check_up gauge" in text
    assert 'runward_check_up{check="db"} 1' in text
    assert 'runward_check_up{check="cache"} 0' in text
    assert 'runward_check_status{check="cache",status="fail"} 1' in text
    assert 'runward_probe_up{probe="readiness"} 1' in text
    assert 'runward_app_value{name="queue_depth"} 4' in text
    for line in text.splitlines():
        assert line.startswith("#") or line.startswith("runward_"), line


def test_doctor_dict() -> None:
    h = make()
    report = h.doctor()
    assert report["status"] == "warn"
    assert report["exit_code"] == 3
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["db"]["status"] == "pass"
    assert by_name["cache"]["status"] == "fail"
    assert by_name["cache"]["outage"] == "connection_refused"
    assert by_name["cache"]["remediation"] == "restart redis"
    assert by_name["cache"]["probes"] == ["readiness"]
    assert report["warnings"] == []


def test_handle_answers_like_the_server() -> None:
    h = make()
    status, headers, body = h.handle("/readyz")
    assert status == 200
    assert dict(headers)["content-type"] == "application/health+json"
    assert json.loads(body) == {"status": "warn"}  # remote callers see the status only
    status, _, body = h.handle("/readyz", peer_loopback=True)
    assert "checks" in json.loads(body)
    status, _, body = h.handle("/healthz", authorization="Bearer t0k", details="token", token="t0k")
    assert "checks" in json.loads(body)
    assert h.handle("/readyz/cache")[0] == 503
    assert h.handle("/nowhere")[0] == 404
    assert h.handle("/readyz", "verbose", peer_loopback=True)[2].startswith("[+]db ok")
    # Anonymous callers never learn a check's name.
    anonymous = h.handle("/readyz", "verbose")[2]
    assert "db" not in anonymous and "cache" not in anonymous
    assert anonymous.startswith("2 check(s): 1 ok, 0 warn, 1 failing or unknown")
    status, _, body = h.handle("/readyz/nope")
    assert status == 404 and "db" not in body and "cache" not in body
    assert "db" in h.handle("/readyz/nope", peer_loopback=True)[2]
    assert 'check="db"' in h.handle("/metrics")[2]
    without = h.handle("/metrics", check_metrics=False)[2]
    assert 'check="' not in without and 'runward_probe_up{probe="readiness"}' in without
    assert h.handle("/metrics")[0] == 200


def test_heartbeat_timeout_fails_liveness() -> None:
    h = runward.Health(heartbeat_timeout_ms=200)
    h.add_check("local", lambda: True, probes=["liveness"])
    h.refresh_all()
    h.heartbeat()
    assert h.status("liveness") == "pass"
    time.sleep(0.35)
    assert h.status("liveness") == "fail"
    live = h.report("liveness")
    assert "no host heartbeat" in live["checks"]["heartbeat:status"][0]["output"]
    assert h.handle("/livez")[0] == 503
    h.heartbeat()
    assert h.status("liveness") == "pass"


def test_startup_latches() -> None:
    results = [True, False]
    h = runward.Health()
    h.add_check("boot", lambda: results.pop(0), probes=["startup"])
    assert h.status("startup") == "fail"
    h.refresh_all()
    assert h.status("startup") == "pass"
    h.refresh_all()
    assert h.status("startup") == "pass"  # latched after the first pass
