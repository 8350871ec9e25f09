"""runward: health probes answered from a snapshot, on runward's own threads.

```python
import runward

health = runward.Health("runward.toml", service_id="api")
health.add_check("db", lambda: db.ping())           # None/True pass, False fails
health.add_check("search", check_search)            # async def works too
server = health.serve("0.0.0.0:8081")               # /livez /readyz /healthz /metrics
```

A check is called with no arguments. Its return value becomes the check's result:

- ``None`` or ``True``: pass; ``False``: fail;
- a ``str``: pass, with the text as output;
- a :class:`Outcome`, or a ``dict`` of ``Outcome``'s arguments: that result;
- a raised exception: fail, with ``TypeName: message`` as output.

A check that overruns its ``timeout_ms`` is abandoned and reported as ``fail`` with outage
``timeout``: a coroutine is cancelled; a plain function cannot be interrupted, so until it
returns, further runs of that check report a timeout instead of piling up threads.

A :class:`Runbook` is a runbook definition (TOML); its plans say what a run would do,
without doing anything:

```python
rb = runward.Runbook.load("controlled-restart.toml")
plan = rb.plan({"service_url": "http://127.0.0.1:9000"})   # `runward runbook plan --json`
print(rb.plan_text({"service_url": "http://127.0.0.1:9000"}))
nap = runward.Runbook.from_dict({"runbook": {"name": "nap"},      # data shaped like the file
                                 "steps": [{"id": "nap", "kind": "sleep", "duration": "1s"}]})
```

:class:`Flags` are the named, TTL'd flags and the lockdown of a state database, as the
``runward flag``, ``lockdown`` and ``unlock`` commands use them:

```python
flags = runward.Flags.open(".runward/state.db")
flags.set("restarting", 600_000, owner="deploy-42", reason="rolling restart")
flags.require_absent(["lockdown", "restarting"])   # ConflictError naming the held flag
code = flags.lockdown("admin", "suspicious logins")  # the unlock code, shown only once
flags.unlock(code)
```

A :class:`Scheduler` runs the ``[[schedules]]`` of a ``runward.toml`` (``runward schedule``),
and :class:`Runs` reads the runs of a state database (``runward runbook list|show|export``):

```python
scheduler = runward.Scheduler.from_config("runward.toml")
report = scheduler.tick()                        # claims due times, queues their runs
runs = runward.Runs.open(".runward/state.db")
for run in runs.list(status=["queued"]):
    print(run["id"], run["runbook"], run["started_by"])    # schedule:<name>
for claim in report["claimed"]:
    print(runs.export(claim["run_id"]))          # the evidence document, Markdown
```

An :class:`Engine` drives runs durably (``runward runbook run|resume|approve|cancel``), with
Python functions (or ``async def`` functions) as ``kind = "custom"`` steps:

```python
def snapshot(ctx, params):                        # ctx: run_id, step_id, attempt, idempotency_key
    backups.snapshot(params["db"], key=ctx["idempotency_key"])
    return {"summary": f"snapshot of {params['db']}", "db": params["db"]}

engine = runward.Engine.open(".runward/state.db", config="runward.toml", steps={"snapshot": snapshot})
outcome = engine.run(rb, {"service_url": "http://127.0.0.1:9000"}, started_by="alice",
                     on_event=lambda e: print(e["seq"], e["kind"]))
if outcome["run"]["status"] == "waiting_approval":
    engine.approve(outcome["run"]["id"], "bob")   # PolicyDeniedError for anyone else
    outcome = engine.resume(outcome["run"]["id"], rb)
```

Errors are raised as subclasses of :class:`RunwardError` (see :mod:`runward.errors`).
"""

from __future__ import annotations

from ._runward import Engine, Flags, Health, Outcome, Runbook, Runs, Scheduler, Server, __version__
from .errors import (
    BusyError,
    ConfigError,
    ConflictError,
    InternalError,
    InvalidInputError,
    IoError,
    LeaseLostError,
    NotFoundError,
    PolicyDeniedError,
    RunwardError,
    RunwardTimeoutError,
    ShutdownError,
    StorageError,
)

__all__ = [
    "Engine",
    "Flags",
    "Health",
    "Outcome",
    "Runbook",
    "Runs",
    "Scheduler",
    "Server",
    "RunwardError",
    "ConfigError",
    "NotFoundError",
    "InvalidInputError",
    "PolicyDeniedError",
    "RunwardTimeoutError",
    "IoError",
    "StorageError",
    "ShutdownError",
    "ConflictError",
    "LeaseLostError",
    "BusyError",
    "InternalError",
    "__version__",
]
