"""runward.Engine: durable runs driven from Python, with Python functions as custom steps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

import runward

from conftest import wait_until

SECRET = "tok-2718281828-python-secret"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def engine(db: Path) -> runward.Engine:
    return runward.Engine.open(db)


def rb(text: str) -> runward.Runbook:
    return runward.Runbook.parse(textwrap.dedent(text))


def kinds(db: Path, run_id: str) -> List[str]:
    return [e["kind"] for e in runward.Runs.open(db).show(run_id)["events"]]


def attempts(db: Path, run_id: str) -> List[Dict[str, Any]]:
    return runward.Runs.open(db).show(run_id)["attempts"]  # type: ignore[return-value]


def test_a_run_succeeds_and_its_events_arrive_in_order_while_it_runs(engine: runward.Engine, db: Path) -> None:
    seen: List[Dict[str, Any]] = []
    threads = set()

    def on_event(event: Dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        seen.append(event)

    def watch(ctx: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
        # The step's own `step_started` reaches on_event while the step is still running.
        started = wait_until(
            lambda: any(e["kind"] == "step_started" and e["data"]["step"] == ctx["step_id"] for e in seen)
        )
        return {"summary": "watched", "saw_own_start": started}

    engine.register_step("watch", watch)
    book = rb(
        """
        [runbook]
        name = "hello"
        [[steps]]
        id = "greet"
        kind = "command"
        shell = "echo hello $RUNWARD_IDEMPOTENCY_KEY"
        [[steps]]
        id = "watch"
        kind = "custom"
        name = "watch"
        [[steps]]
        id = "nap"
        kind = "sleep"
        duration = "10ms"
        """
    )
    outcome = engine.run(book, started_by="alice", on_event=on_event)
    run = outcome["run"]
    assert run["status"] == "succeeded"
    assert run["started_by"] == "alice"
    assert "approval" not in outcome
    stored = runward.Runs.open(db).show(run["id"])["events"]
    assert [e["seq"] for e in seen] == list(range(1, len(stored) + 1))
    assert [(e["seq"], e["kind"], e["hash"]) for e in seen] == [(e["seq"], e["kind"], e["hash"]) for e in stored]
    assert seen[0]["kind"] == "run_started" and seen[-1]["kind"] == "run_succeeded"
    assert all(e["run_id"] == run["id"] for e in seen)
    assert threading.current_thread().name not in threads
    watched = attempts(db, run["id"])[1]
    assert watched["output"]["summary"] == "watched"
    assert watched["output"]["data"] == {"saw_own_start": True}
    assert runward.Runs.open(db).verify(run["id"])["first_bad"] is None


def test_a_raising_event_callback_does_not_stop_the_run(engine: runward.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[int] = []
    reported: List[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    def on_event(event: Dict[str, Any]) -> None:
        calls.append(event["seq"])
        raise RuntimeError("callback bug")

    book = rb('[runbook]\nname = "x"\n[[steps]]\nid = "a"\nkind = "sleep"\nduration = "1ms"\n')
    outcome = engine.run(book, on_event=on_event)
    assert outcome["run"]["status"] == "succeeded"
    assert calls == list(range(1, len(calls) + 1)) and len(calls) >= 3
    assert len(reported) == len(calls) and all(str(e) == "callback bug" for e in reported)


def test_retries_back_off_then_succeed(engine: runward.Engine, db: Path, tmp_path: Path) -> None:
    log = tmp_path / "tries"
    book = rb(
        f"""
        [runbook]
        name = "flaky"
        [[steps]]
        id = "flaky"
        kind = "command"
        shell = "echo $RUNWARD_IDEMPOTENCY_KEY >> {log}; test $(wc -l < {log}) -ge 3"
        retries = 3
        backoff = "20ms"
        """
    )
    outcome = engine.run(book)
    assert outcome["run"]["status"] == "succeeded"
    assert [a["status"] for a in attempts(db, outcome["run"]["id"])] == ["failed", "failed", "succeeded"]
    assert kinds(db, outcome["run"]["id"]).count("step_retry_scheduled") == 2
    assert len(set(log.read_text().split())) == 3, "each attempt has its own key"


def test_compensation_undoes_completed_steps_in_reverse(engine: runward.Engine, db: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    book = rb(
        f"""
        [runbook]
        name = "undo"
        on_failure = "compensate"
        [[steps]]
        id = "announce"
        kind = "flag"
        action = "set"
        flag = "restarting"
        [[steps]]
        id = "one"
        kind = "command"
        shell = "echo do-one >> {log}"
        compensate = {{ kind = "command", shell = "echo undo-one >> {log}" }}
        [[steps]]
        id = "two"
        kind = "command"
        shell = "echo do-two >> {log}"
        compensate = {{ kind = "command", shell = "echo undo-two >> {log}" }}
        [[steps]]
        id = "boom"
        kind = "command"
        argv = ["false"]
        """
    )
    outcome = engine.run(book)
    assert outcome["run"]["status"] == "compensated"
    assert log.read_text().split() == ["do-one", "do-two", "undo-two", "undo-one"]
    assert runward.Flags.open(db).get("restarting") is None
    assert "compensation_started" in kinds(db, outcome["run"]["id"])


APPROVAL = """
[runbook]
name = "approve"
[[steps]]
id = "ok"
kind = "approval"
approvers = ["alice", "bob"]
forbid_starter = true
message = "restart?"
[[steps]]
id = "after"
kind = "command"
argv = ["true"]
"""


def test_an_approval_waits_refuses_the_wrong_people_then_resumes(engine: runward.Engine, db: Path) -> None:
    book = rb(APPROVAL)
    waiting = engine.run(book, started_by="alice")
    run_id = waiting["run"]["id"]
    assert waiting["run"]["status"] == "waiting_approval"
    approval = waiting["approval"]
    assert approval["status"] == "pending" and approval["approvers"] == ["alice", "bob"]
    assert approval["plan_digest"] == book.plan()["digest"]

    for who in ("alice", "mallory"):  # the starter, then a stranger
        with pytest.raises(runward.PolicyDeniedError) as refused:
            engine.approve(run_id, who)
        assert isinstance(refused.value, PermissionError)
    unchanged = engine.pending_approval(run_id)
    assert unchanged["approvals"] == [] and unchanged["status"] == "pending"
    assert runward.Runs.open(db).show(run_id)["run"]["status"] == "waiting_approval"

    given = engine.approve(run_id, "bob", "looks fine")
    assert given["status"] == "approved"
    assert given["approvals"][0]["who"] == "bob" and given["approvals"][0]["comment"] == "looks fine"
    done = engine.resume(run_id, book)
    assert done["run"]["status"] == "succeeded"
    assert {"approval_requested", "approval_given", "approval_used"} <= set(kinds(db, run_id))
    with pytest.raises(runward.ConflictError, match="no open approval"):
        engine.approve(run_id, "bob")


def test_a_denied_or_expired_approval_fails_the_step(engine: runward.Engine) -> None:
    book = rb(APPROVAL)
    waiting = engine.run(book, started_by="alice")
    denied = engine.deny(waiting["run"]["id"], "bob", "not now")
    assert denied["status"] == "denied" and denied["denial"]["who"] == "bob"  # type: ignore[index]
    failed = engine.resume(waiting["run"]["id"], book)
    assert failed["run"]["status"] == "failed"
    assert "denied by bob: not now" in failed["run"]["error"]

    expiring = rb(APPROVAL.replace('message = "restart?"', 'message = "restart?"\nexpires = "200ms"'))
    waiting = engine.run(expiring, started_by="alice")
    time.sleep(0.3)
    swept = engine.sweep()
    assert [a["run_id"] for a in swept["approvals_timed_out"]] == [waiting["run"]["id"]]
    with pytest.raises(runward.ConflictError):
        engine.approve(waiting["run"]["id"], "bob")
    late = engine.resume(waiting["run"]["id"], expiring)
    assert late["run"]["status"] == "failed" and "timed out" in late["run"]["error"]


def test_cancel_stops_a_waiting_run_and_a_running_one(engine: runward.Engine, db: Path, tmp_path: Path) -> None:
    waiting = engine.run(rb(APPROVAL), started_by="zed")
    cancelled = engine.cancel(waiting["run"]["id"], rb(APPROVAL), "bob", "wrong window")
    assert cancelled["run"]["status"] == "cancelled"

    log = tmp_path / "cancel"
    book = rb(
        f"""
        [runbook]
        name = "long"
        [[steps]]
        id = "wait"
        kind = "sleep"
        duration = "30s"
        [[on_cancel]]
        id = "cleanup"
        kind = "command"
        shell = "echo cleaned >> {log}"
        """
    )
    seen: List[str] = []
    result: Dict[str, Any] = {}
    driver = threading.Thread(
        target=lambda: result.update(engine.run(book, on_event=lambda e: seen.append(e["kind"])))
    )
    started = time.monotonic()
    driver.start()
    assert wait_until(lambda: "step_started" in seen)
    run_id = runward.Runs.open(db).list(status=["running"])[0]["id"]
    requested = engine.cancel(run_id, book, "bob")
    assert requested["run"]["status"] == "running", "the driving call acts on it"
    driver.join(10)
    assert not driver.is_alive() and time.monotonic() - started < 10
    assert result["run"]["status"] == "cancelled"
    assert log.read_text() == "cleaned\n"
    assert "cancel_requested" in seen and seen[-1] == "run_cancelled"


def test_python_step_functions_sync_and_async(db: Path) -> None:
    calls: List[Dict[str, Any]] = []

    def snapshot(ctx: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
        calls.append({"ctx": ctx, "params": params, "thread": threading.current_thread().name})
        return {"summary": f"snapshot of {params['target']}", "target": params["target"], "key": ctx["idempotency_key"]}

    async def notify(ctx: Dict[str, Any], params: Dict[str, Any]) -> str:
        await asyncio.sleep(0.01)
        calls.append({"ctx": ctx, "params": params, "loop": id(asyncio.get_running_loop())})
        return f"told {params['channel']}"

    engine = runward.Engine.open(db, steps={"snapshot": snapshot})
    engine.register_step("notify", notify)
    engine.register_step("nothing", lambda ctx, params: None)
    assert engine.step_names == ["nothing", "notify", "snapshot"]
    book = rb(
        """
        [runbook]
        name = "custom"
        [params.target]
        default = "db-1"
        [[steps]]
        id = "snap"
        kind = "custom"
        name = "snapshot"
        params = { target = "{{ params.target }}", keep = 3 }
        [[steps]]
        id = "tell"
        kind = "custom"
        name = "notify"
        params = { channel = "#ops" }
        timeout = "5s"
        [[steps]]
        id = "quiet"
        kind = "custom"
        name = "nothing"
        """
    )
    outcome = engine.run(book, {"target": "db-2"})
    run_id = outcome["run"]["id"]
    assert outcome["run"]["status"] == "succeeded", outcome["run"]["error"]
    snap, tell = calls
    assert snap["params"] == {"target": "db-2", "keep": 3}
    assert snap["ctx"]["run_id"] == run_id and snap["ctx"]["step_id"] == "snap" and snap["ctx"]["attempt"] == 1
    assert snap["ctx"]["timeout"] is None and 0 < tell["ctx"]["timeout"] <= 5
    assert snap["thread"] != threading.current_thread().name
    tried = attempts(db, run_id)
    assert snap["ctx"]["idempotency_key"] == tried[0]["idempotency_key"]
    assert tried[0]["output"]["summary"] == "snapshot of db-2"
    assert tried[0]["output"]["data"] == {"target": "db-2", "key": tried[0]["idempotency_key"]}
    assert tell["params"] == {"channel": "#ops"} and tried[1]["output"]["summary"] == "told #ops"
    assert tried[2]["status"] == "succeeded"


def test_a_raising_step_fails_after_its_retries_and_a_missing_one_is_named(db: Path) -> None:
    keys: List[str] = []

    def flaky(ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        keys.append(ctx["idempotency_key"])
        raise ConnectionError(f"target down (attempt {ctx['attempt']})")

    async def broken(ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        raise ValueError("bad payload")

    engine = runward.Engine.open(db, steps={"flaky": flaky, "broken": broken})
    book = rb(
        """
        [runbook]
        name = "raises"
        [[steps]]
        id = "flaky"
        kind = "custom"
        name = "flaky"
        retries = 2
        backoff = "10ms"
        """
    )
    outcome = engine.run(book)
    assert outcome["run"]["status"] == "failed"
    assert "ConnectionError: target down (attempt 3)" in outcome["run"]["error"]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert [a["error"] for a in attempts(db, outcome["run"]["id"])][0].endswith("target down (attempt 1)")

    coroutine = rb('[runbook]\nname = "c"\n[[steps]]\nid = "b"\nkind = "custom"\nname = "broken"\n')
    failed = engine.run(coroutine)
    assert failed["run"]["status"] == "failed" and "ValueError: bad payload" in failed["run"]["error"]

    bad_return = runward.Engine.open(db, steps={"odd": lambda ctx, params: 42})
    odd = bad_return.run(rb('[runbook]\nname = "o"\n[[steps]]\nid = "o"\nkind = "custom"\nname = "odd"\n'))
    assert "returned int" in odd["run"]["error"]

    missing = engine.run(rb('[runbook]\nname = "m"\n[[steps]]\nid = "m"\nkind = "custom"\nname = "nope"\n'))
    assert "no custom step `nope`" in missing["run"]["error"] and "broken, flaky" in missing["run"]["error"]


def test_a_coroutine_step_past_its_timeout_is_cancelled(db: Path) -> None:
    ended: List[str] = []

    async def slow(ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    engine = runward.Engine.open(db, steps={"slow": slow})
    started = time.monotonic()
    outcome = engine.run(
        rb('[runbook]\nname = "t"\n[[steps]]\nid = "s"\nkind = "custom"\nname = "slow"\ntimeout = "200ms"\n')
    )
    assert outcome["run"]["status"] == "failed" and "passed its timeout" in outcome["run"]["error"]
    assert time.monotonic() - started < 5
    assert wait_until(lambda: ended == ["cancelled"])


def test_resume_is_refused_for_a_changed_definition_until_overridden(engine: runward.Engine, db: Path) -> None:
    def text(cmd: str) -> str:
        return f'[runbook]\nname = "pin"\n[[steps]]\nid = "a"\nkind = "command"\nargv = ["{cmd}"]\n'

    failed = engine.run(rb(text("false")))
    run_id = failed["run"]["id"]
    assert failed["run"]["status"] == "failed"
    edited = rb(text("true"))
    with pytest.raises(runward.ConflictError, match="changed since"):
        engine.resume(run_id, edited)
    assert runward.Runs.open(db).show(run_id)["run"]["status"] == "failed", "a refused resume changes nothing"
    done = engine.resume(run_id, edited, override_definition=True, by="ops", reason="fixed the command")
    assert done["run"]["status"] == "succeeded"
    resumed = [e for e in runward.Runs.open(db).show(run_id)["events"] if e["kind"] == "run_resumed"][-1]
    assert resumed["data"]["definition_overridden"] == edited.definition_hash
    assert resumed["data"]["by"] == "ops" and resumed["data"]["reason"] == "fixed the command"


def test_retry_and_skip_are_operator_decisions(engine: runward.Engine, db: Path) -> None:
    book = rb('[runbook]\nname = "s"\n[[steps]]\nid = "a"\nkind = "command"\nargv = ["false"]\n')
    failed = engine.run(book)
    run_id = failed["run"]["id"]
    again = engine.retry(run_id, book, "bob", "once more")
    assert again["run"]["status"] == "failed" and len(attempts(db, run_id)) == 2
    with pytest.raises(runward.InvalidInputError, match="reason"):
        engine.skip(run_id, book, "bob", " ")
    skipped = engine.skip(run_id, book, "bob", "done by hand")
    assert skipped["run"]["status"] == "succeeded"
    assert attempts(db, run_id)[-1]["status"] == "skipped"
    with pytest.raises(runward.ConflictError, match="succeeded"):
        engine.retry(run_id, book, "bob")


def test_errors_map_to_the_runward_exceptions(engine: runward.Engine, db: Path) -> None:
    guarded = rb(
        '[runbook]\nname = "g"\nrequires_flags_absent = ["maintenance"]\n'
        '[[steps]]\nid = "a"\nkind = "sleep"\nduration = "1ms"\n'
    )
    runward.Flags.open(db).set("maintenance", 60_000, owner="admin", reason="migration")
    with pytest.raises(runward.ConflictError, match="migration"):
        engine.run(guarded)
    assert runward.Runs.open(db).list() == [], "nothing is created"
    with pytest.raises(runward.InvalidInputError, match="has no parameter `nope`"):
        engine.run(guarded, {"nope": 1})
    with pytest.raises(runward.NotFoundError):
        engine.resume("no-such-run", guarded)
    with pytest.raises(runward.InvalidInputError, match="lease_ttl"):
        runward.Engine.open(db, lease_ttl=0)
    with pytest.raises(runward.InvalidInputError, match="between 100ms and 1day"):
        runward.Engine.open(db, lease_ttl=7 * 86400)
    with pytest.raises(TypeError, match="custom step `x`"):
        runward.Engine.open(db, steps={"x": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="on_event"):
        engine.run(guarded, on_event="print")  # type: ignore[arg-type]


def test_gates_read_the_checks_of_a_config(db: Path, write_config: Any, http_dependency: Any) -> None:
    host, port = http_dependency.server_address
    config = write_config(f'[[checks]]\nname = "upstream"\nkind = "tcp"\nhost = "{host}"\nport = {port}\n')
    gated = rb(
        '[runbook]\nname = "gated"\n[[steps]]\nid = "up"\nkind = "gate"\ncheck = "upstream"\n'
        'interval = "50ms"\ntimeout = "5s"\n'
    )
    passed = runward.Engine.open(db, config=config).run(gated)
    assert passed["run"]["status"] == "succeeded", passed["run"]["error"]
    bare = runward.Engine.open(db).run(gated)
    assert bare["run"]["status"] == "failed" and "health registry" in bare["run"]["error"]

    health = runward.Health()
    health.add_check("flag", lambda: True)
    from_health = runward.Engine.open(db, health=health).run(
        rb('[runbook]\nname = "h"\n[[steps]]\nid = "f"\nkind = "gate"\ncheck = "flag"\ntimeout = "5s"\n')
    )
    assert from_health["run"]["status"] == "succeeded", from_health["run"]["error"]


CRASHING = """
import json, sys
import runward

engine = runward.Engine.open(sys.argv[1], lease_ttl=0.3, owner="doomed")
book = runward.Runbook.load(sys.argv[2])
engine.run(book, on_event=lambda e: print(json.dumps(e), flush=True))
"""


def test_a_killed_driver_leaves_an_orphan_that_sweep_finds_and_resume_finishes(db: Path, tmp_path: Path) -> None:
    log = tmp_path / "effects"
    path = tmp_path / "crash.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [runbook]
            name = "crash"
            [[steps]]
            id = "before"
            kind = "command"
            shell = "echo before >> {log}"
            [[steps]]
            id = "pause"
            kind = "sleep"
            duration = "2s"
            outcome_unknown = "rerun"
            [[steps]]
            id = "after"
            kind = "command"
            shell = "echo after >> {log}"
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING, str(db), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    run_id = None
    for line in child.stdout:
        event = json.loads(line)
        run_id = event["run_id"]
        if event["kind"] == "step_started" and event["data"]["step"] == "pause":
            break
    else:
        pytest.fail("the child ended before the sleep step")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert run_id is not None

    engine = runward.Engine.open(db)
    assert runward.Runs.open(db).show(run_id)["run"]["status"] == "running", "nothing closed the run"
    time.sleep(0.5)  # past the dead driver's lease
    swept = engine.sweep()
    assert [r["id"] for r in swept["orphaned"]] == [run_id]
    assert swept["orphaned"][0]["status"] == "orphaned"
    assert engine.source_of(run_id) == str(path)

    book = runward.Runbook.load(engine.source_of(run_id) or "")
    seen: List[str] = []
    done = engine.resume(run_id, book, by="ops", on_event=lambda e: seen.append(e["kind"]))
    assert done["run"]["status"] == "succeeded"
    assert seen[:2] == ["step_outcome_unknown", "run_resumed"] and seen[-1] == "run_succeeded"
    assert log.read_text().split() == ["before", "after"], "the completed step did not run again"
    tried = attempts(db, run_id)
    pause = [a for a in tried if a["step_id"] == "pause"]
    assert pause[0]["status"] in ("outcome_unknown", "succeeded")
    assert pause[-1]["status"] == "succeeded"
    assert "run_orphaned" in kinds(db, run_id)
    assert runward.Runs.open(db).verify(run_id)["first_bad"] is None


def test_secrets_never_reach_the_evidence(engine: runward.Engine, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWARD_PY_ENGINE_TOKEN", SECRET)

    def leaky(ctx: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
        token = os.environ["RUNWARD_PY_ENGINE_TOKEN"]
        return {"summary": f"used {token}", "token": token, "nested": [{"t": token}]}

    def raising(ctx: Dict[str, Any], params: Dict[str, Any]) -> None:
        raise RuntimeError(f"login failed for {os.environ['RUNWARD_PY_ENGINE_TOKEN']}")

    engine.register_step("leaky", leaky)
    engine.register_step("raising", raising)
    book = rb(
        """
        [runbook]
        name = "secret"
        [params.token]
        type = "secret"
        env = "RUNWARD_PY_ENGINE_TOKEN"
        [[steps]]
        id = "echo"
        kind = "command"
        shell = "echo token=$RUNWARD_PY_ENGINE_TOKEN; echo $RUNWARD_PY_ENGINE_TOKEN | base64"
        [[steps]]
        id = "leaky"
        kind = "custom"
        name = "leaky"
        [[steps]]
        id = "raising"
        kind = "custom"
        name = "raising"
        """
    )
    seen: List[Dict[str, Any]] = []
    outcome = engine.run(book, on_event=seen.append)
    assert outcome["run"]["status"] == "failed"
    runs = runward.Runs.open(db)
    texts = [
        json.dumps(outcome),
        json.dumps(seen),
        json.dumps(runs.show(outcome["run"]["id"])),
        runs.export(outcome["run"]["id"]),
        runs.export(outcome["run"]["id"], "json"),
    ]
    for text in texts:
        assert SECRET not in text
    assert "[REDACTED]" in texts[2] and "RUNWARD_PY_ENGINE_TOKEN" in texts[2]
    assert "login failed for [REDACTED]" in outcome["run"]["error"]


def test_the_async_twins_work_on_asyncio(db: Path) -> None:
    async def main() -> None:
        async def step(ctx: Dict[str, Any], params: Dict[str, Any]) -> Dict[str, Any]:
            await asyncio.sleep(0)
            return {"summary": "async"}

        engine = await runward.Engine.open_async(db, steps={"step": step})
        book = rb(
            """
            [runbook]
            name = "approve-async"
            [[steps]]
            id = "ok"
            kind = "approval"
            approvers = ["bob"]
            [[steps]]
            id = "after"
            kind = "custom"
            name = "step"
            """
        )
        events: List[str] = []
        waiting = await engine.run_async(book, started_by="alice", on_event=lambda e: events.append(e["kind"]))
        run_id = waiting["run"]["id"]
        assert waiting["run"]["status"] == "waiting_approval"
        assert (await engine.pending_approval_async(run_id))["status"] == "pending"
        with pytest.raises(runward.PolicyDeniedError):
            await engine.approve_async(run_id, "mallory")
        await engine.approve_async(run_id, "bob")
        done = await engine.resume_async(run_id, book)
        assert done["run"]["status"] == "succeeded"
        assert events[-1] == "run_waiting"
        assert (await engine.sweep_async()) == {"orphaned": [], "approvals_timed_out": []}
        assert await engine.source_of_async(run_id) is None
        queued = await engine.create_async(book, started_by="carol")
        assert queued["status"] == "queued"
        cancelled = await engine.cancel_async(queued["id"], book, "carol")
        assert cancelled["run"]["status"] == "cancelled"

    asyncio.run(main())


def test_the_configured_lease_ttl_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "runward.toml"
    config.write_text('[engine]\nlease_ttl = "0s"\n')
    with pytest.raises(runward.ConfigError, match=r"runward.toml:2:.*`lease_ttl`.*between 100ms and 1day"):
        runward.Engine.open(tmp_path / "state.db", config=config)
