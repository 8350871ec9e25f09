"""Typical use of the package, type-checked with ``mypy --strict`` by test_typing.py (not run)."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import runward
from runward.asgi import HealthApp


def ping() -> bool:
    return True


async def search() -> runward.Outcome:
    await asyncio.sleep(0)
    return runward.Outcome("warn", "slow", observed=812, unit="ms", measurement="responseTime",
                           outage="timeout", details={"shards": 3})


def as_dict() -> Dict[str, Any]:
    return {"status": "pass", "output": "fine"}


def on_change(transition: runward._runward.Transition) -> None:
    print(transition["check"], transition["from"], "->", transition["to"])


def main() -> None:
    h = runward.Health("runward.toml", service_id="api", heartbeat_timeout_ms=5000)
    h.add_check("db", ping, probes=("readiness", "startup"), timeout_ms=1000)
    h.add_check("search", search, critical=False, mode="on_demand", ttl_ms=2000)
    h.add_check("dict", as_dict, affected_endpoints=["/api"])
    h.add_check("none", lambda: None)
    h.on_transition(on_change)
    h.start()
    state: runward._runward.CheckState = h.refresh("db")
    failures: int = state["consecutive_failures"]
    status: str = h.status("readiness")
    report: Dict[str, Any] = h.report(detail="status")
    text: str = h.table() + h.verbose("liveness") + h.prometheus()
    doctor: Dict[str, Any] = h.doctor(fix=True)
    total: float = h.add_value("jobs", 1)
    h.set_value("queue", 3.5)
    h.heartbeat()
    h.close_gate("maintenance", "migration")
    h.open_gate("maintenance")
    names: List[str] = h.check_names + h.warnings
    code, headers, body = h.handle("/readyz", "verbose", None, True, details="public")
    with h.serve("127.0.0.1:0", details="token", token="t") as server:
        url: str = server.url
        port: int = server.port
    server.shutdown(drain_ms=100)
    app = HealthApp(h, details="loopback")
    try:
        h.refresh("missing")
    except runward.NotFoundError as exc:
        print(exc.kind, exc.location)
    except runward.RunwardError:
        raise
    print(failures, status, report, text, doctor, total, names, code, headers, body, url, port, app)


def plan_runbook() -> None:
    rb = runward.Runbook.load("controlled-restart.toml")
    rb = runward.Runbook.parse(open("controlled-restart.toml").read(), path="controlled-restart.toml")
    built: runward.Runbook = runward.Runbook.from_dict(
        {"runbook": {"name": "nap"}, "steps": [{"id": "nap", "kind": "sleep", "duration": "1s"}]}
    )
    try:
        runward.Runbook.from_dict({"runbook": {"name": "x"}, "steps": [{"id": "a", "kind": "nope"}]})
    except runward.ConfigError as exc:
        print(exc.kind, built.definition_hash)
    ids: List[str] = rb.step_ids
    where: Optional[str] = rb.path
    plan: runward._runward.RunbookPlan = rb.plan({"service_url": "http://127.0.0.1:9000", "workers": 8})
    for step in plan["steps"]:
        undo: Optional[str] = step.get("compensation")
        print(step["index"], step["id"], step["kind"], step["effect"], step["policy"]["retries"], undo)
    as_dict: Dict[str, Any] = dict(rb.plan())
    text: str = rb.plan_text({"service_url": "http://127.0.0.1:9000"})
    try:
        rb.plan({"nope": "x"})
    except runward.InvalidInputError as exc:
        print(exc.kind)
    print(rb.name, rb.definition_hash, ids, where, plan["digest"], plan["requires"]["absent"], as_dict, text)


async def amain(h: runward.Health) -> None:
    await h.refresh_all_async()
    state = await h.refresh_async("db")
    doctor = await h.doctor_async()
    print(state["status"], doctor["status"])


def use_flags() -> None:
    flags = runward.Flags.open(".runward/state.db")
    flag: runward._runward.Flag = flags.set("restarting", 600_000, "deploy-42", reason="rolling restart")
    renewed = flags.renew("restarting", 600_000, "deploy-42")
    found: Optional[runward._runward.Flag] = flags.get("restarting")
    names: List[str] = [f["name"] for f in flags.list()]
    cleared: bool = flags.clear("restarting", owner="deploy-42")
    try:
        flags.require_absent(["lockdown", "restarting"])
    except runward.ConflictError as exc:
        print(exc)
    held: List[runward._runward.Flag] = flags.require_present(("restarting",))
    code: str = flags.lockdown("admin", "suspicious logins", ttl_ms=3_600_000, code_ttl_ms=600_000)
    code = flags.rotate_unlock_code(ttl_ms=600_000)
    status: runward._runward.LockdownStatus = flags.lockdown_status()
    generation: Optional[int] = status["code"]["generation"] if status["code"] else None
    try:
        ended: Optional[runward._runward.Flag] = flags.unlock(code)
        print(ended)
    except runward.PolicyDeniedError:
        print("wrong code")
    except runward.ConflictError:
        print("expired code")
    except runward.NotFoundError:
        print("no lockdown")
    print(flag["expires_at"], renewed, found, names, cleared, held, generation, flags.path)


async def use_flags_async() -> None:
    flags = await runward.Flags.open_async(".runward/state.db")
    flag = await flags.set_async("restarting", 600_000, "deploy-42")
    listed: List[runward._runward.Flag] = await flags.list_async()
    await flags.require_absent_async(["lockdown"])
    code: str = await flags.lockdown_async("admin")
    code = await flags.rotate_unlock_code_async()
    ended = await flags.unlock_async(code)
    print(flag["owner"], listed, ended)


def use_schedules_and_runs() -> None:
    scheduler = runward.Scheduler.from_config("runward.toml")
    synced: runward._runward.SyncReport = scheduler.sync()
    for entry in scheduler.list():
        next_due: Optional[str] = entry["next_due"]
        last: Optional[runward._runward.Fire] = entry["last_fire"]
        print(entry["name"], entry["spec"], entry["time_zone"], next_due, last["status"] if last else None)
    report: runward._runward.TickReport = scheduler.tick("2026-11-23T10:00:00Z")
    report = scheduler.tick()
    run_ids: List[str] = [c["run_id"] for c in report["claimed"]]
    reasons: List[str] = [r["reason"] for r in report["skipped"] + report["missed"]]

    runs = runward.Runs.open(".runward/state.db")
    listed: List[runward._runward.Run] = runs.list(status=["queued", "failed"], since_ms=86_400_000, runbook="x", limit=10)
    starters: List[Optional[str]] = [r["started_by"] for r in runs.list()]
    details: runward._runward.RunDetails = runs.show(run_ids[0])
    kinds: List[str] = [e["kind"] for e in details["events"]]
    markdown: str = runs.export(run_ids[0])
    document: str = runs.export(run_ids[0], format="json")
    chain: runward._runward.ChainReport = runs.verify(run_ids[0])
    intact: bool = chain["first_bad"] is None
    try:
        runs.show("missing")
    except runward.NotFoundError as exc:
        print(exc.kind)
    print(synced, reasons, listed, starters, kinds, markdown, document, intact, runs.path, scheduler.config)


async def use_schedules_and_runs_async() -> None:
    scheduler = await runward.Scheduler.from_config_async("runward.toml")
    synced = await scheduler.sync_async()
    statuses: List[runward._runward.ScheduleStatus] = await scheduler.list_async()
    report = await scheduler.tick_async("2026-11-23T10:00:00Z")
    runs = await runward.Runs.open_async(".runward/state.db")
    listed = await runs.list_async(status=["queued"])
    details = await runs.show_async(listed[0]["id"])
    text: str = await runs.export_async(details["run"]["id"], "markdown")
    chain = await runs.verify_async(details["run"]["id"])
    print(synced["added"], statuses, report["claimed"], text, chain["events"])


def snapshot(ctx: runward._runward.StepContext, params: Dict[str, Any]) -> Dict[str, Any]:
    return {"summary": f"snapshot of {params['db']}", "key": ctx["idempotency_key"], "attempt": ctx["attempt"]}


async def notify(ctx: runward._runward.StepContext, params: Dict[str, Any]) -> Optional[str]:
    await asyncio.sleep(0)
    return None if ctx["timeout"] is None else f"told {params['channel']}"


def on_event(event: runward._runward.Event) -> None:
    print(event["seq"], event["kind"], event["data"])


def use_engine() -> None:
    engine = runward.Engine.open(".runward/state.db", owner="deploy-1", lease_ttl=30.0, config="runward.toml",
                                 steps={"snapshot": snapshot})
    engine.register_step("notify", notify)
    names: List[str] = engine.step_names
    rb = runward.Runbook.load("controlled-restart.toml")
    outcome: runward._runward.RunOutcome = engine.run(rb, {"service_url": "http://127.0.0.1:9000"},
                                                       started_by="alice", on_event=on_event)
    run: runward._runward.Run = outcome["run"]
    if run["status"] == "waiting_approval":
        pending: runward._runward.Approval = engine.pending_approval(run["id"])
        try:
            engine.approve(run["id"], "mallory")
        except runward.PolicyDeniedError as exc:
            print(exc.kind, pending["approvers"])
        given = engine.approve(run["id"], "bob", "ok")
        votes: List[runward._runward.ApprovalVote] = given["approvals"]
        print(votes, outcome.get("approval"))
        outcome = engine.resume(run["id"], rb, by="bob", on_event=on_event)
    try:
        engine.resume(run["id"], rb)
    except runward.ConflictError:
        outcome = engine.resume(run["id"], rb, override_definition=True, by="ops", reason="edited")
    queued: runward._runward.Run = engine.create(rb, started_by="cron")
    outcome = engine.retry(queued["id"], rb, "ops", "checked the target")
    outcome = engine.skip(queued["id"], rb, "ops", "done by hand", on_event=on_event)
    outcome = engine.cancel(queued["id"], rb, "ops")
    denied: runward._runward.Approval = engine.deny(queued["id"], "bob", comment="not now")
    swept: runward._runward.Sweep = engine.sweep()
    orphans: List[str] = [r["id"] for r in swept["orphaned"]]
    source: Optional[str] = engine.source_of(run["id"])
    print(names, denied["status"], orphans, source, engine.path, engine.owner, outcome["run"]["status"])


async def use_engine_async() -> None:
    health = runward.Health()
    engine = await runward.Engine.open_async(".runward/state.db", health=health, steps={"notify": notify})
    rb = runward.Runbook.parse('[runbook]\nname = "x"\n[[steps]]\nid = "a"\nkind = "sleep"\nduration = "1s"\n')
    outcome = await engine.run_async(rb, on_event=lambda e: print(e["kind"]))
    run_id: str = outcome["run"]["id"]
    created = await engine.create_async(rb)
    await engine.resume_async(created["id"], rb, on_event=on_event)
    await engine.retry_async(run_id, rb, "ops")
    await engine.skip_async(run_id, rb, "ops", "reason")
    await engine.cancel_async(run_id, rb, "ops", "wrong window")
    approval = await engine.approve_async(run_id, "bob")
    approval = await engine.deny_async(run_id, "bob")
    approval = await engine.pending_approval_async(run_id)
    swept = await engine.sweep_async()
    source = await engine.source_of_async(run_id)
    print(approval["quorum"], swept["approvals_timed_out"], source)
