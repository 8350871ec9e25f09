"""Type stubs of the native module ``runward._runward``. Keep in sync with ``src/*.rs``."""

import asyncio
import builtins
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypedDict, final

__version__: str

StatusName = Literal["pass", "warn", "fail", "unknown"]
ProbeKindName = Literal["startup", "readiness", "liveness", "ready", "live"]
DetailPolicyName = Literal["loopback", "token", "public", "none"]
OutageName = Literal[
    "dns_resolution",
    "timeout",
    "network_unreachable",
    "connection_refused",
    "tls",
    "auth",
    "provider_unavailable",
    "version_mismatch",
    "malformed_payload",
    "schema_unavailable",
    "misconfigured",
]
DependencyStateName = Literal[
    "ready", "disabled", "offline", "schema_unavailable", "version_mismatch", "malformed_payload", "degraded"
]

CheckResult = None | bool | str | Outcome | Mapping[str, Any]
"""What a check may return: see the ``runward`` package documentation."""
CheckFunction = Callable[[], CheckResult] | Callable[[], Coroutine[Any, Any, CheckResult]]

class Observed(TypedDict):
    measurement: str
    value: Any
    unit: str | None

class CheckState(TypedDict):
    """One check's state, as returned by ``Health.refresh``."""

    name: str
    status: StatusName
    output: str | None
    outage: OutageName | None
    state: DependencyStateName | None
    observed: Observed | None
    remediation: str | None
    details: dict[str, Any]
    duration_ms: float
    checked_at: float | None
    last_success: float | None
    consecutive_failures: int
    consecutive_successes: int
    runs: int
    timeouts: int
    transitions: int

Transition = TypedDict(
    "Transition",
    {
        "check": str,
        "from": StatusName,
        "to": StatusName,
        "consecutive_failures": int,
        "previous_duration_ms": float,
        "at": float,
        "output": str | None,
        "outage": OutageName | None,
        "state": DependencyStateName | None,
        "observed": Observed | None,
        "remediation": str | None,
        "details": dict[str, Any],
    },
)
"""A status change, as passed to ``Health.on_transition`` callbacks."""

StepKindName = Literal["command", "http", "gate", "approval", "flag", "drain", "sleep", "runbook", "custom"]

class GotoOnFailure(TypedDict):
    goto: str

class ProbeFirst(TypedDict):
    probe_first: str

class _StepPolicy(TypedDict):
    retries: int
    backoff: str
    backoff_max: str
    on_failure: Literal["abort", "continue", "compensate"] | GotoOnFailure
    outcome_unknown: Literal["rerun", "ask"] | ProbeFirst

class StepPolicy(_StepPolicy, total=False):
    """Retries, deadline and failure handling of a planned step; durations as text (``1m 30s``)."""

    timeout: str

class _PlannedStep(TypedDict):
    index: int
    id: str
    kind: StepKindName
    effect: str
    policy: StepPolicy

class PlannedStep(_PlannedStep, total=False):
    """One step of a plan: ``effect`` says what it will do, with parameters resolved;
    ``compensation`` what its undo would do (absent when it has none)."""

    title: str
    compensation: str

class FlagRequirements(TypedDict):
    absent: list[str]
    present: list[str]

class RunbookPlan(TypedDict):
    """The plan of one run, as ``Runbook.plan`` returns it (``runward runbook plan --json``)."""

    runbook: str
    definition_hash: str
    params: dict[str, Any]
    """Resolved parameters; a secret appears as a reference ``[secret $NAME]``, never its value."""
    requires: FlagRequirements
    steps: list[PlannedStep]
    on_cancel: list[PlannedStep]
    digest: str

@final
class Outcome:
    """The result of one check: a status plus optional detail. Invalid values raise
    ``InvalidInputError``; ``output`` is cut to 512 bytes."""

    def __init__(
        self,
        status: StatusName,
        output: str | None = None,
        observed: Any = None,
        unit: str | None = None,
        measurement: str | None = None,
        outage: OutageName | None = None,
        state: DependencyStateName | None = None,
        remediation: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...
    @property
    def status(self) -> StatusName: ...
    @property
    def output(self) -> str | None: ...
    @property
    def observed(self) -> Any: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def measurement(self) -> str | None: ...
    @property
    def outage(self) -> OutageName | None: ...
    @property
    def state(self) -> DependencyStateName | None: ...
    @property
    def remediation(self) -> str | None: ...
    @property
    def details(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]:
        """The outcome as the core serialises it (absent fields left out)."""

@final
class Server:
    """A running health server; a context manager that stops it on exit."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def shutdown(self, drain_ms: int | None = None) -> None:
        """Readiness fails at once, liveness holds; stops after ``mark_drained`` or ``drain_ms``."""
    def shutdown_async(self, drain_ms: int | None = None) -> Awaitable[None]: ...
    def close(self) -> None:
        """Stops at once, without the shutdown sequence."""
    def __enter__(self) -> Server: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class Health:
    """A health registry: checks from ``runward.toml`` and from Python, answered from a snapshot.

    The registry is built on the first call that needs it (anything but ``add_check``,
    ``on_transition``, ``set_value`` and ``add_value``); checks cannot be added after that.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        *,
        service_id: str | None = None,
        version: str | None = None,
        release_id: str | None = None,
        description: str | None = None,
        heartbeat_timeout_ms: int | None = None,
    ) -> None: ...
    def add_check(
        self,
        name: str,
        func: CheckFunction,
        *,
        probes: Sequence[ProbeKindName] = ("readiness",),
        critical: bool = True,
        timeout_ms: int = 2500,
        interval_ms: int = 10000,
        mode: Literal["periodic", "on_demand"] = "periodic",
        ttl_ms: int = 5000,
        initial_delay_ms: int = 0,
        jitter_ms: int | None = None,
        max_age_ms: int | None = None,
        failure_threshold: int = 1,
        success_threshold: int = 1,
        component_type: str | None = None,
        affected_endpoints: Sequence[str] | None = None,
        remediation: str | None = None,
        event_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def refresh_all(self) -> None: ...
    def refresh_all_async(self) -> Awaitable[None]: ...
    def refresh(self, name: str) -> CheckState: ...
    def refresh_async(self, name: str) -> Awaitable[CheckState]: ...
    def status(self, kind: ProbeKindName = "readiness") -> StatusName: ...
    def report(self, kind: ProbeKindName | None = None, detail: Literal["full", "status"] = "full") -> dict[str, Any]: ...
    def table(self, kind: ProbeKindName | None = None) -> str: ...
    def verbose(self, kind: ProbeKindName | None = None) -> str: ...
    def prometheus(self) -> str: ...
    def doctor(self, fix: bool = False) -> dict[str, Any]: ...
    def doctor_async(self, fix: bool = False) -> Awaitable[dict[str, Any]]: ...
    def heartbeat(self) -> None: ...
    def set_value(self, name: str, value: float) -> None: ...
    def add_value(self, name: str, delta: float) -> float: ...
    def close_gate(self, name: str, reason: str) -> None: ...
    def open_gate(self, name: str) -> None: ...
    def begin_shutdown(self) -> None: ...
    def mark_drained(self) -> None: ...
    @property
    def shutting_down(self) -> bool: ...
    def on_transition(self, callback: Callable[[Transition], object]) -> None: ...
    @property
    def warnings(self) -> list[str]: ...
    @property
    def check_names(self) -> list[str]: ...
    def serve(
        self,
        addr: str | None = None,
        *,
        details: DetailPolicyName | None = None,
        token: str | None = None,
        check_metrics: bool | None = None,
        header_read_timeout_ms: int | None = None,
        idle_timeout_ms: int | None = None,
        max_connections: int | None = None,
        max_header_bytes: int | None = None,
        max_body_bytes: int | None = None,
    ) -> Server: ...
    def handle(
        self,
        path: str,
        query: str | None = None,
        authorization: str | None = None,
        peer_loopback: bool = False,
        *,
        details: DetailPolicyName | None = None,
        token: str | None = None,
        check_metrics: bool | None = None,
    ) -> tuple[int, list[tuple[str, str]], str]: ...
    def answer(
        self,
        path: str,
        query: str | None = None,
        authorization: str | None = None,
        peer_loopback: bool = False,
        *,
        details: DetailPolicyName | None = None,
        token: str | None = None,
        check_metrics: bool | None = None,
    ) -> Awaitable[tuple[int, list[tuple[str, str]], str]]:
        """``handle`` for async hosts: stale on-demand checks run first (at most their timeout)."""

@final
class Runbook:
    """A parsed, validated runbook. A malformed one raises ``ConfigError`` whose message starts
    with ``file:line:column`` (from ``from_dict``, one that names the key). Planning executes
    nothing."""

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Runbook:
        """Reads and validates a runbook file."""
    @staticmethod
    def parse(text: str, path: str | os.PathLike[str] | None = None) -> Runbook:
        """Parses and validates runbook text; ``path`` names it in error messages."""
    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Runbook:
        """Builds and validates a runbook from data shaped like a runbook file (``runbook``,
        ``params``, ``steps``, ``on_cancel``), as ``tomllib.load`` returns it. Values are
        JSON-compatible; invalid data, or a ``None`` value (leave the key out instead), raises
        ``ConfigError`` naming the key; a non-mapping or a non-``str`` key raises ``TypeError``."""
    @property
    def name(self) -> str: ...
    @property
    def definition_hash(self) -> str:
        """SHA-256 of the definition; comments and formatting do not change it."""
    @property
    def step_ids(self) -> list[str]: ...
    @property
    def path(self) -> str | None:
        """The file the runbook came from, if any."""
    def plan(self, params: Mapping[str, object] | None = None) -> RunbookPlan:
        """The plan of a run. String values are converted to the declared types, as
        ``--param NAME=VALUE`` is; raises ``InvalidInputError`` for an undeclared, missing or
        mistyped parameter."""
    def plan_text(self, params: Mapping[str, object] | None = None) -> str:
        """The plan as the text ``runward runbook plan`` prints."""

class Flag(TypedDict):
    """A flag, as ``Flags`` returns it (``runward flag list --json``); times are RFC 3339 in UTC."""

    name: str
    owner: str
    reason: str | None
    set_at: str
    expires_at: str

class UnlockCodeRecord(TypedDict):
    """An unlock code's record: what it unlocks, its times and generation, never the code."""

    name: str
    created_at: str
    expires_at: str
    generation: int
    issued_by: str | None
    override_reason: str | None

class LockdownStatus(TypedDict):
    """Whether lockdown is on, and its unlock code's record (kept even when expired)."""

    flag: Flag | None
    code: UnlockCodeRecord | None

@final
class Flags:
    """Flags and lockdown kept in a SQLite state database (``.runward/state.db`` for the CLI).

    Errors: a flag held by another owner raises ``ConflictError``; ``unlock`` raises
    ``PolicyDeniedError`` for a wrong code, ``ConflictError`` for an expired one and
    ``NotFoundError`` when no code is set.
    """

    @staticmethod
    def open(path: str | os.PathLike[str]) -> Flags:
        """Opens (creating if needed, with its folder) the state database at ``path``."""
    @staticmethod
    def open_async(path: str | os.PathLike[str]) -> Awaitable[Flags]: ...
    @property
    def path(self) -> str: ...
    def set(self, name: str, ttl_ms: int, owner: str, reason: str | None = None) -> Flag:
        """Sets (or, for the same owner, renews) flag ``name`` for ``ttl_ms`` milliseconds."""
    def set_async(self, name: str, ttl_ms: int, owner: str, reason: str | None = None) -> Awaitable[Flag]: ...
    def renew(self, name: str, ttl_ms: int, owner: str) -> Flag:
        """Extends ``owner``'s unexpired flag to now + ``ttl_ms``."""
    def renew_async(self, name: str, ttl_ms: int, owner: str) -> Awaitable[Flag]: ...
    def clear(self, name: str, owner: str | None = None) -> bool:
        """Clears flag ``name``; returns whether an unexpired flag was cleared."""
    def clear_async(self, name: str, owner: str | None = None) -> Awaitable[bool]: ...
    def get(self, name: str) -> Flag | None: ...
    def get_async(self, name: str) -> Awaitable[Flag | None]: ...
    def list(self) -> builtins.list[Flag]: ...
    def list_async(self) -> Awaitable[builtins.list[Flag]]: ...
    def require_absent(self, names: Sequence[str]) -> None:
        """Raises ``ConflictError`` naming every one of ``names`` that is set."""
    def require_absent_async(self, names: Sequence[str]) -> Awaitable[None]: ...
    def require_present(self, names: Sequence[str]) -> builtins.list[Flag]:
        """Raises ``ConflictError`` naming every one of ``names`` that is not set."""
    def require_present_async(self, names: Sequence[str]) -> Awaitable[builtins.list[Flag]]: ...
    def lockdown(
        self, owner: str, reason: str | None = None, *, ttl_ms: int = 3600000, code_ttl_ms: int | None = None
    ) -> str:
        """Turns lockdown on and returns its unlock code, shown only here."""
    def lockdown_async(
        self, owner: str, reason: str | None = None, *, ttl_ms: int = 3600000, code_ttl_ms: int | None = None
    ) -> Awaitable[str]: ...
    def unlock(self, code: str) -> Flag | None:
        """Ends lockdown with its unlock code; returns the lockdown flag it cleared."""
    def unlock_async(self, code: str) -> Awaitable[Flag | None]: ...
    def rotate_unlock_code(
        self,
        code: str | None = None,
        *,
        override_reason: str | None = None,
        who: str | None = None,
        ttl_ms: int | None = None,
    ) -> str:
        """Replaces the unlock code in exchange for the current one, or on an override recorded
        with who and why; returns the new code. The old one stops working."""
    def rotate_unlock_code_async(
        self,
        code: str | None = None,
        *,
        override_reason: str | None = None,
        who: str | None = None,
        ttl_ms: int | None = None,
    ) -> Awaitable[str]: ...
    def lockdown_status(self) -> LockdownStatus: ...
    def lockdown_status_async(self) -> Awaitable[LockdownStatus]: ...

RunStatusName = Literal[
    "queued",
    "running",
    "waiting_approval",
    "waiting_operator",
    "succeeded",
    "failed",
    "cancelled",
    "compensating",
    "compensated",
    "compensation_failed",
    "orphaned",
]
AttemptStatusName = Literal[
    "intent", "succeeded", "failed", "outcome_unknown", "skipped", "compensating", "compensated", "compensation_failed"
]
FireStatusName = Literal["dispatched", "skipped", "missed"]

class Lease(TypedDict):
    owner: str
    epoch: int
    expires_at: str

class FireRef(TypedDict):
    """The schedule due time that created a run."""

    schedule: str
    due_at: str

class Run(TypedDict):
    """A run, as ``Runs.list`` returns it (``runward runbook list --json``); times are RFC 3339."""

    id: str
    runbook: str
    definition_hash: str
    params: dict[str, Any]
    status: RunStatusName
    started_by: str | None
    created_at: str
    updated_at: str
    error: str | None
    parent: str | None
    fire: FireRef | None
    current_step: int
    lease: Lease | None
    epoch: int

class StepAttempt(TypedDict):
    run_id: str
    step_index: int
    step_id: str
    attempt: int
    idempotency_key: str
    status: AttemptStatusName
    started_at: str
    finished_at: str | None
    output: Any
    error: str | None

class Event(TypedDict):
    """One entry of a run's hash-chained event log."""

    run_id: str
    seq: int
    at: str
    kind: str
    data: Any
    prev_hash: str
    hash: str

class RunDetails(TypedDict):
    """A run with its attempts and events, as ``Runs.show`` returns it (``runward runbook show --json``)."""

    run: Run
    attempts: list[StepAttempt]
    events: list[Event]

class ChainBreak(TypedDict):
    seq: int
    fault: Literal["gap", "broken_link", "hash_mismatch", "truncated", "head_mismatch", "malformed"]
    detail: str

class ChainReport(TypedDict):
    """The verdict on a run's event chain; ``first_bad`` is ``None`` when it verifies."""

    run_id: str
    events: int
    last_good_seq: int | None
    first_bad: ChainBreak | None

@final
class Runs:
    """The runs recorded in a SQLite state database (``.runward/state.db`` for the CLI).

    Errors: an unknown status or export format raises ``InvalidInputError``; an unknown run
    ``NotFoundError``.
    """

    @staticmethod
    def open(path: str | os.PathLike[str]) -> Runs:
        """Opens (creating if needed, with its folder) the state database at ``path``."""
    @staticmethod
    def open_async(path: str | os.PathLike[str]) -> Awaitable[Runs]: ...
    @property
    def path(self) -> str: ...
    def list(
        self,
        status: Sequence[RunStatusName] | None = None,
        since_ms: int | None = None,
        runbook: str | None = None,
        limit: int = 50,
    ) -> builtins.list[Run]:
        """Runs, newest first: in any of ``status``, changed in the last ``since_ms`` ms, of ``runbook``."""
    def list_async(
        self,
        status: Sequence[RunStatusName] | None = None,
        since_ms: int | None = None,
        runbook: str | None = None,
        limit: int = 50,
    ) -> Awaitable[builtins.list[Run]]: ...
    def show(self, run_id: str) -> RunDetails:
        """The run with its step attempts and events."""
    def show_async(self, run_id: str) -> Awaitable[RunDetails]: ...
    def export(self, run_id: str, format: Literal["markdown", "json"] = "markdown") -> str:
        """The run's evidence document (``runward runbook export``)."""
    def export_async(self, run_id: str, format: Literal["markdown", "json"] = "markdown") -> Awaitable[str]: ...
    def verify(self, run_id: str) -> ChainReport:
        """Verifies the run's event chain."""
    def verify_async(self, run_id: str) -> Awaitable[ChainReport]: ...

class SyncReport(TypedDict):
    """Which of the configuration's schedules ``sync`` wrote."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]

class Fire(TypedDict):
    """One row of the fire ledger: what became of one due time."""

    schedule: str
    due_at: str
    status: FireStatusName
    run_id: str | None
    reason: str | None
    recorded_at: str

class CatchUp(TypedDict):
    secs: int
    nanos: int

class ScheduleStatus(TypedDict):
    """A stored schedule, as ``Scheduler.list`` returns it (``runward schedule list --json``)."""

    name: str
    spec: str
    time_zone: str
    runbook: str
    params: dict[str, Any]
    misfire: Literal["skip", "fire_once", "fire_all"]
    catch_up: CatchUp | None
    overlap: Literal["skip", "buffer_one", "allow"]
    enabled: bool
    created_at: str
    updated_at: str
    next_due: str | None
    last_fire: Fire | None

class Dispatched(TypedDict):
    schedule: str
    due_at: str
    run_id: str

class Lost(TypedDict):
    schedule: str
    due_at: str
    status: FireStatusName

class Recorded(TypedDict):
    schedule: str
    due_at: str
    reason: str

class TickError(TypedDict):
    schedule: str
    message: str

class TickReport(TypedDict):
    """What one tick did, as ``runward schedule tick --json`` prints it."""

    now: str
    schedules: int
    claimed: list[Dispatched]
    lost: list[Lost]
    skipped: list[Recorded]
    missed: list[Recorded]
    errors: list[TickError]
    synced: SyncReport

@final
class Scheduler:
    """The ``[[schedules]]`` of a ``runward.toml`` over its state database.

    ``list`` and ``tick`` write the configuration's schedules to the store first, as
    ``runward schedule list|tick`` do. A bad configuration raises ``ConfigError``.
    """

    @staticmethod
    def from_config(path: str | os.PathLike[str]) -> Scheduler:
        """Loads ``runward.toml`` at ``path`` and opens its state database."""
    @staticmethod
    def from_config_async(path: str | os.PathLike[str]) -> Awaitable[Scheduler]: ...
    @property
    def config(self) -> str: ...
    def sync(self) -> SyncReport:
        """Writes the configuration's schedules to the store."""
    def sync_async(self) -> Awaitable[SyncReport]: ...
    def list(self) -> builtins.list[ScheduleStatus]:
        """Every stored schedule with its next due time and last ledger row."""
    def list_async(self) -> Awaitable[builtins.list[ScheduleStatus]]: ...
    def tick(self, now: str | None = None) -> TickReport:
        """Claims every due time up to ``now`` (RFC 3339 text; default: the current time)."""
    def tick_async(self, now: str | None = None) -> Awaitable[TickReport]: ...

ApprovalStatusName = Literal["pending", "approved", "denied", "timed_out", "consumed"]

class ApprovalVote(TypedDict):
    who: str
    at: str
    comment: str | None

class Approval(TypedDict):
    """An approval request bound to one step attempt and the plan digest; single use."""

    id: str
    run_id: str
    step_index: int
    attempt: int
    plan_digest: str
    quorum: int
    approvers: list[str]
    exclude_starter: bool
    starter: str | None
    approvals: list[ApprovalVote]
    denial: ApprovalVote | None
    status: ApprovalStatusName
    created_at: str
    expires_at: str
    consumed_at: str | None

class _RunOutcomeBase(TypedDict):
    run: Run

class RunOutcome(_RunOutcomeBase, total=False):
    """Where a call left a run: ``run``, and ``approval`` when the run waits for one."""

    approval: Approval

class Sweep(TypedDict):
    """What ``Engine.sweep`` found."""

    orphaned: list[Run]
    approvals_timed_out: list[Approval]

class StepContext(TypedDict):
    """What a custom step function receives about its attempt."""

    run_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    """The same for every execution of the attempt (a rerun after a crash included)."""
    timeout: float | None
    """Seconds left before the step's timeout, or ``None`` for none."""

StepResult = None | str | Mapping[str, Any]
"""What a step function may return: ``None``, a summary, or a dict whose ``summary`` key is the
summary and whose other keys are the data."""
StepFunction = (
    Callable[[StepContext, dict[str, Any]], StepResult]
    | Callable[[StepContext, dict[str, Any]], Coroutine[Any, Any, StepResult]]
)
EventCallback = Callable[[Event], object]

@final
class Engine:
    """The durable run engine over a SQLite state database.

    Errors: bad parameters raise ``InvalidInputError``; an unmet flag requirement, a run held
    by another process, a changed definition or a run in the wrong state ``ConflictError``; a
    refused approver ``PolicyDeniedError``; an unknown run ``NotFoundError``.
    """

    @staticmethod
    def open(
        state_db: str | os.PathLike[str],
        *,
        owner: str | None = None,
        lease_ttl: float | None = None,
        config: str | os.PathLike[str] | None = None,
        health: Health | None = None,
        steps: Mapping[str, StepFunction] | None = None,
    ) -> Engine:
        """Opens (creating if needed) the state database and builds an engine over it."""
    @staticmethod
    def open_async(
        state_db: str | os.PathLike[str],
        *,
        owner: str | None = None,
        lease_ttl: float | None = None,
        config: str | os.PathLike[str] | None = None,
        health: Health | None = None,
        steps: Mapping[str, StepFunction] | None = None,
    ) -> Awaitable[Engine]: ...
    @property
    def path(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def step_names(self) -> builtins.list[str]: ...
    def register_step(self, name: str, func: StepFunction) -> None:
        """Registers ``func(ctx, params)`` as the custom step ``name``."""
    def run(
        self,
        runbook: Runbook,
        params: Mapping[str, Any] | None = None,
        *,
        started_by: str | None = None,
        on_event: EventCallback | None = None,
    ) -> RunOutcome:
        """Creates a run and drives it until it finishes or waits; ``on_event`` sees every event."""
    def run_async(
        self,
        runbook: Runbook,
        params: Mapping[str, Any] | None = None,
        *,
        started_by: str | None = None,
        on_event: EventCallback | None = None,
    ) -> Awaitable[RunOutcome]: ...
    def create(self, runbook: Runbook, params: Mapping[str, Any] | None = None, *, started_by: str | None = None) -> Run:
        """Creates a ``queued`` run without driving it."""
    def create_async(
        self, runbook: Runbook, params: Mapping[str, Any] | None = None, *, started_by: str | None = None
    ) -> Awaitable[Run]: ...
    def resume(
        self,
        run_id: str,
        runbook: Runbook,
        *,
        override_definition: bool = False,
        by: str | None = None,
        reason: str | None = None,
        on_event: EventCallback | None = None,
    ) -> RunOutcome:
        """Drives a run from where it stopped."""
    def resume_async(
        self,
        run_id: str,
        runbook: Runbook,
        *,
        override_definition: bool = False,
        by: str | None = None,
        reason: str | None = None,
        on_event: EventCallback | None = None,
    ) -> Awaitable[RunOutcome]: ...
    def retry(
        self, run_id: str, runbook: Runbook, who: str, reason: str | None = None, *, on_event: EventCallback | None = None
    ) -> RunOutcome:
        """Runs the step the run stopped at again."""
    def retry_async(
        self, run_id: str, runbook: Runbook, who: str, reason: str | None = None, *, on_event: EventCallback | None = None
    ) -> Awaitable[RunOutcome]: ...
    def skip(
        self, run_id: str, runbook: Runbook, who: str, reason: str, *, on_event: EventCallback | None = None
    ) -> RunOutcome:
        """Records the step the run stopped at as skipped, and goes on."""
    def skip_async(
        self, run_id: str, runbook: Runbook, who: str, reason: str, *, on_event: EventCallback | None = None
    ) -> Awaitable[RunOutcome]: ...
    def cancel(
        self, run_id: str, runbook: Runbook, who: str, reason: str | None = None, *, on_event: EventCallback | None = None
    ) -> RunOutcome:
        """Cancels a run: runs its cancel path here, or asks the process driving it to."""
    def cancel_async(
        self, run_id: str, runbook: Runbook, who: str, reason: str | None = None, *, on_event: EventCallback | None = None
    ) -> Awaitable[RunOutcome]: ...
    def approve(self, run_id: str, who: str, comment: str | None = None) -> Approval:
        """Adds ``who``'s approval to the request the run waits for."""
    def approve_async(self, run_id: str, who: str, comment: str | None = None) -> Awaitable[Approval]: ...
    def deny(self, run_id: str, who: str, comment: str | None = None) -> Approval:
        """Denies the request the run waits for."""
    def deny_async(self, run_id: str, who: str, comment: str | None = None) -> Awaitable[Approval]: ...
    def pending_approval(self, run_id: str) -> Approval:
        """The approval request the run waits for."""
    def pending_approval_async(self, run_id: str) -> Awaitable[Approval]: ...
    def sweep(self) -> Sweep:
        """Orphans runs whose process died and times out expired approvals."""
    def sweep_async(self) -> Awaitable[Sweep]: ...
    def source_of(self, run_id: str) -> str | None:
        """The runbook file the run was started from."""
    def source_of_async(self, run_id: str) -> Awaitable[str | None]: ...
