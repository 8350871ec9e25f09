"""Scheduler and Runs over a temporary runward.toml and state database, as `runward schedule
list|tick` and `runward runbook list|show|export` use them."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import runward

SEED = Path(__file__).resolve().parents[3] / "examples" / "runbooks" / "controlled-restart.toml"

CONFIG = """\
[state]
dir = "state"

[[schedules]]
name = "nightly-restart"
spec = "@every:60"
runbook = "controlled-restart.toml"
params = { service_url = "http://127.0.0.1:9000" }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copy(SEED, tmp_path / "controlled-restart.toml")
    path = tmp_path / "runward.toml"
    path.write_text(CONFIG)
    return path


def later(seconds: int = 120) -> str:
    """An RFC 3339 time `seconds` from now: one or two due times of `@every:60` pass by then."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_tick_claims_a_due_time_once_and_runs_show_it(config: Path) -> None:
    scheduler = runward.Scheduler.from_config(config)
    assert scheduler.config == str(config)
    assert scheduler.sync() == {"added": ["nightly-restart"], "updated": [], "unchanged": []}

    now = later()
    first = scheduler.tick(now)
    assert first["synced"]["unchanged"] == ["nightly-restart"]
    assert first["schedules"] == 1
    assert len(first["claimed"]) == 1, first
    assert first["errors"] == []
    claim = first["claimed"][0]
    assert claim["schedule"] == "nightly-restart"
    # An earlier due time in the same tick is recorded, not run (misfire policy skip).
    assert len(first["missed"]) <= 1 and all(m["reason"] for m in first["missed"]), first

    again = scheduler.tick(now)
    for key in ("claimed", "lost", "skipped", "missed", "errors"):
        assert again[key] == [], (key, again)  # type: ignore[literal-required]

    # Another process (a fresh scheduler) finds the due time in the ledger, never claims it.
    other = runward.Scheduler.from_config(config).tick(now)
    assert other["claimed"] == []

    [entry] = scheduler.list()
    assert entry["name"] == "nightly-restart"
    assert (entry["spec"], entry["time_zone"], entry["enabled"]) == ("@every:60", "UTC", True)
    assert entry["params"] == {"service_url": "http://127.0.0.1:9000"}
    assert entry["next_due"] is not None
    assert entry["last_fire"] is not None and entry["last_fire"]["status"] == "dispatched"
    assert entry["last_fire"]["run_id"] == claim["run_id"]

    runs = runward.Runs.open(config.parent / "state" / "state.db")
    [run] = runs.list(status=["queued"], since_ms=3_600_000, runbook="controlled-restart")
    assert run["id"] == claim["run_id"]
    assert run["status"] == "queued"
    assert run["started_by"] == "schedule:nightly-restart"
    assert run["fire"] == {"schedule": "nightly-restart", "due_at": claim["due_at"]}
    assert runs.list(status=["failed", "succeeded"]) == []
    assert runs.list(runbook="other") == []
    assert [r["id"] for r in runs.list(limit=1)] == [run["id"]]

    details = runs.show(run["id"])
    assert details["run"] == run
    assert details["attempts"] == []

    markdown = runs.export(run["id"])
    assert markdown.startswith(f"# Run {run['id']}"), markdown
    assert "| started by | schedule:nightly-restart |" in markdown
    assert runs.export(run["id"], format="markdown").startswith("# Run ")
    document = json.loads(runs.export(run["id"], format="json"))
    assert document["run"]["id"] == run["id"]
    assert document["chain"]["first_bad"] is None

    report = runs.verify(run["id"])
    assert report["run_id"] == run["id"]
    assert report["first_bad"] is None
    assert report["events"] == len(details["events"])


def test_unknown_status_run_and_format_are_refused(config: Path) -> None:
    runward.Scheduler.from_config(config).tick(later())
    runs = runward.Runs.open(config.parent / "state" / "state.db")
    with pytest.raises(runward.InvalidInputError, match="unknown run status `finished`") as err:
        runs.list(status=["finished"])  # type: ignore[list-item]
    assert err.value.kind == "invalid_input"
    assert "compensation_failed" in str(err.value)
    with pytest.raises(TypeError):
        runs.list(status="queued")  # type: ignore[arg-type]

    missing = "00000000-0000-0000-0000-000000000000"
    for call in (runs.show, runs.export, runs.verify):
        with pytest.raises(runward.NotFoundError, match=missing) as found:
            call(missing)
        assert found.value.kind == "not_found"
        assert isinstance(found.value, runward.RunwardError)

    [run] = runs.list()
    with pytest.raises(runward.InvalidInputError, match="markdown or json"):
        runs.export(run["id"], format="pdf")  # type: ignore[arg-type]


def test_bad_time_and_bad_config_are_refused(config: Path) -> None:
    scheduler = runward.Scheduler.from_config(config)
    with pytest.raises(runward.InvalidInputError, match="RFC 3339"):
        scheduler.tick("yesterday")

    config.write_text(CONFIG + 'misfire = "sometimes"\n')
    with pytest.raises(runward.ConfigError, match="skip, fire_once, fire_all") as err:
        runward.Scheduler.from_config(config)
    assert err.value.location is not None and err.value.location[1] == 9

    with pytest.raises(runward.NotFoundError):
        runward.Scheduler.from_config(config.parent / "missing.toml")


def test_async_twins(config: Path) -> None:
    async def main() -> None:
        scheduler = await runward.Scheduler.from_config_async(config)
        assert (await scheduler.sync_async())["added"] == ["nightly-restart"]
        now = later()
        report = await scheduler.tick_async(now)
        assert len(report["claimed"]) == 1
        assert (await scheduler.tick_async(now))["claimed"] == []
        assert [s["name"] for s in await scheduler.list_async()] == ["nightly-restart"]

        runs = await runward.Runs.open_async(config.parent / "state" / "state.db")
        [run] = await runs.list_async(status=["queued"])
        assert run["id"] == report["claimed"][0]["run_id"]
        assert (await runs.show_async(run["id"]))["run"]["id"] == run["id"]
        assert (await runs.export_async(run["id"])).startswith(f"# Run {run['id']}")
        assert "chain" in json.loads(await runs.export_async(run["id"], "json"))
        assert (await runs.verify_async(run["id"]))["first_bad"] is None
        with pytest.raises(runward.NotFoundError):
            await runs.show_async("no-such-run")
        with pytest.raises(runward.InvalidInputError):
            await runs.list_async(status=["nope"])  # type: ignore[list-item]

    asyncio.run(main())
