"""Flags and lockdown on a temporary state database, as `runward flag`, `lockdown` and `unlock`."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

import runward

CODE = re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$")
MINUTE = 60_000


@pytest.fixture
def flags(tmp_path: Path) -> runward.Flags:
    return runward.Flags.open(tmp_path / ".runward" / "state.db")


def test_set_get_list_clear(flags: runward.Flags, tmp_path: Path) -> None:
    assert (tmp_path / ".runward" / "state.db").exists()
    assert flags.path.endswith("state.db")
    assert flags.list() == []
    assert flags.get("restarting") is None

    flag = flags.set("restarting", 10 * MINUTE, "deploy-42", reason="rolling restart")
    assert flag["name"] == "restarting"
    assert flag["owner"] == "deploy-42"
    assert flag["reason"] == "rolling restart"
    assert flag["expires_at"] > flag["set_at"]
    assert flags.get("restarting") == flag
    flags.set("draining", MINUTE, "deploy-42")
    assert [f["name"] for f in flags.list()] == ["draining", "restarting"]
    assert flags.get("draining")["reason"] is None  # type: ignore[index]

    renewed = flags.renew("restarting", 20 * MINUTE, "deploy-42")
    assert renewed["expires_at"] > flag["expires_at"]

    assert flags.clear("restarting", owner="deploy-42") is True
    assert flags.clear("restarting") is False
    assert flags.get("restarting") is None
    assert [f["name"] for f in flags.list()] == ["draining"]


def test_state_is_shared_through_the_file(flags: runward.Flags) -> None:
    flags.set("restarting", MINUTE, "deploy-42")
    other = runward.Flags.open(flags.path)
    assert other.get("restarting")["owner"] == "deploy-42"  # type: ignore[index]


def test_a_flag_held_by_another_owner_is_refused(flags: runward.Flags) -> None:
    flags.set("restarting", MINUTE, "deploy-42", reason="rolling restart")
    with pytest.raises(runward.ConflictError, match="deploy-42") as err:
        flags.set("restarting", MINUTE, "deploy-43")
    assert err.value.kind == "conflict"
    with pytest.raises(runward.ConflictError):
        flags.clear("restarting", owner="deploy-43")
    with pytest.raises(runward.ConflictError):
        flags.renew("restarting", MINUTE, "deploy-43")
    assert flags.get("restarting")["owner"] == "deploy-42"  # type: ignore[index]


def test_bad_input_is_refused(flags: runward.Flags) -> None:
    with pytest.raises(runward.InvalidInputError, match="flag name `two words` contains a space"):
        flags.set("two words", MINUTE, "me")
    with pytest.raises(runward.InvalidInputError):
        flags.set("restarting", 0, "me")
    with pytest.raises(runward.InvalidInputError, match="empty"):
        flags.unlock("  ")
    with pytest.raises(runward.InvalidInputError):
        flags.lockdown("admin", code_ttl_ms=0)
    with pytest.raises(TypeError):
        flags.require_absent("lockdown")  # type: ignore[arg-type]


def test_require_absent_names_the_held_flag(flags: runward.Flags) -> None:
    flags.require_absent(["lockdown", "restarting"])
    flags.set("restarting", MINUTE, "deploy-42", reason="rolling restart")
    with pytest.raises(runward.ConflictError) as err:
        flags.require_absent(["lockdown", "restarting"])
    message = str(err.value)
    assert "flag `restarting` is set, held by deploy-42" in message
    assert "rolling restart" in message
    assert "lockdown" not in message.split(";")[0]

    assert [f["name"] for f in flags.require_present(["restarting"])] == ["restarting"]
    with pytest.raises(runward.ConflictError, match="`draining`"):
        flags.require_present(["restarting", "draining"])


def test_lockdown_then_unlock_with_the_code(flags: runward.Flags) -> None:
    code = flags.lockdown("admin", "suspicious logins", ttl_ms=60 * MINUTE)
    assert CODE.match(code), code
    lockdown = flags.get("lockdown")
    assert lockdown is not None
    assert (lockdown["owner"], lockdown["reason"]) == ("admin", "suspicious logins")
    with pytest.raises(runward.ConflictError, match="lockdown is on"):
        flags.require_absent(["lockdown"])
    status = flags.lockdown_status()
    assert status["flag"] == lockdown
    assert status["code"] is not None and status["code"]["generation"] == 1
    assert code not in repr(status)

    cleared = flags.unlock(f"  {code}\n")
    assert cleared == lockdown
    assert flags.get("lockdown") is None
    flags.require_absent(["lockdown"])
    assert flags.lockdown_status() == {"flag": None, "code": None}
    with pytest.raises(runward.NotFoundError, match="nothing to unlock"):
        flags.unlock(code)


def test_lockdown_held_by_another_owner_is_refused(flags: runward.Flags) -> None:
    flags.lockdown("admin")
    with pytest.raises(runward.ConflictError, match="lockdown is already on"):
        flags.lockdown("someone-else")
    assert flags.get("lockdown")["owner"] == "admin"  # type: ignore[index]


def test_a_wrong_code_is_refused_and_lockdown_stays(flags: runward.Flags) -> None:
    code = flags.lockdown("admin")
    wrong = "AAAA-BBBB-CCCC-DDDD" if code != "AAAA-BBBB-CCCC-DDDD" else "EEEE-FFFF-GGGG-HHHH"
    with pytest.raises(runward.PolicyDeniedError, match="wrong") as err:
        flags.unlock(wrong)
    assert isinstance(err.value, PermissionError)
    assert err.value.kind == "policy_denied"
    assert flags.get("lockdown") is not None
    flags.unlock(code)
    assert flags.get("lockdown") is None


def test_rotate_gives_a_new_code_and_the_old_one_stops_working(flags: runward.Flags) -> None:
    with pytest.raises(runward.NotFoundError, match="nothing to rotate"):
        flags.rotate_unlock_code(override_reason="drill", who="bob")
    with pytest.raises(runward.InvalidInputError, match="current code"):
        flags.rotate_unlock_code()
    old = flags.lockdown("admin")
    with pytest.raises(runward.ConflictError, match="already on: held by admin since"):
        flags.lockdown("admin")
    with pytest.raises(runward.PolicyDeniedError, match="wrong"):
        flags.rotate_unlock_code("AAAA-BBBB-CCCC-DDDD" if old != "AAAA-BBBB-CCCC-DDDD" else "EEEE-FFFF-GGGG-HHHH")
    new = flags.rotate_unlock_code(old)
    assert CODE.match(new) and new != old
    assert flags.lockdown_status()["code"]["generation"] == 2  # type: ignore[index]
    with pytest.raises(runward.PolicyDeniedError):
        flags.unlock(old)
    assert flags.get("lockdown") is not None
    flags.unlock(new)
    assert flags.get("lockdown") is None


def test_an_expired_code_gives_the_expired_error(flags: runward.Flags) -> None:
    code = flags.lockdown("admin", ttl_ms=60 * MINUTE, code_ttl_ms=50)
    time.sleep(0.2)
    with pytest.raises(runward.ConflictError, match="expired") as err:
        flags.unlock(code)
    assert err.value.kind == "conflict"
    assert flags.get("lockdown") is not None
    fresh = flags.rotate_unlock_code(code, ttl_ms=MINUTE)
    flags.unlock(fresh)
    assert flags.get("lockdown") is None


def test_an_override_without_the_code_is_recorded_with_who_and_why(flags: runward.Flags) -> None:
    flags.lockdown("admin")
    with pytest.raises(runward.InvalidInputError, match="who"):
        flags.rotate_unlock_code(override_reason="the code was lost")
    new = flags.rotate_unlock_code(override_reason="the code was lost", who="bob")
    record = flags.lockdown_status()["code"]
    assert record is not None
    assert record["issued_by"] == "bob"
    assert record["override_reason"] == "the code was lost"
    flags.unlock(new)


def test_every_flag_error_is_a_runward_error(flags: runward.Flags) -> None:
    flags.set("restarting", MINUTE, "a")
    calls = [
        lambda: flags.set("restarting", MINUTE, "b"),
        lambda: flags.unlock("AAAA-BBBB-CCCC-DDDD"),
        lambda: flags.rotate_unlock_code(),
        lambda: flags.set("", MINUTE, "a"),
    ]
    for call in calls:
        with pytest.raises(runward.RunwardError):
            call()


def test_async_twins(tmp_path: Path) -> None:
    async def main() -> None:
        flags = await runward.Flags.open_async(tmp_path / "state.db")
        flag = await flags.set_async("restarting", MINUTE, "deploy-42", "rolling restart")
        assert (await flags.get_async("restarting")) == flag
        assert (await flags.list_async()) == [flag]
        assert (await flags.renew_async("restarting", MINUTE, "deploy-42"))["owner"] == "deploy-42"
        assert [f["name"] for f in await flags.require_present_async(["restarting"])] == ["restarting"]
        with pytest.raises(runward.ConflictError, match="restarting"):
            await flags.require_absent_async(["restarting"])
        assert await flags.clear_async("restarting", "deploy-42") is True
        await flags.require_absent_async(["restarting"])

        code = await flags.lockdown_async("admin", "drill", ttl_ms=MINUTE, code_ttl_ms=MINUTE)
        with pytest.raises(runward.PolicyDeniedError):
            await flags.unlock_async("AAAA-BBBB-CCCC-DDDD" if code != "AAAA-BBBB-CCCC-DDDD" else "EEEE-FFFF-GGGG-HHHH")
        new = await flags.rotate_unlock_code_async(code)
        status = await flags.lockdown_status_async()
        assert status["code"] is not None and status["code"]["generation"] == 2
        cleared = await flags.unlock_async(new)
        assert cleared is not None and cleared["owner"] == "admin"
        with pytest.raises(runward.NotFoundError):
            await flags.unlock_async(new)

    asyncio.run(main())
