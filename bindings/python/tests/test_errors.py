"""The exception hierarchy: one base, one subclass per core error kind, built-ins where they fit."""

from __future__ import annotations

import os
import socket
import sys
from typing import Type

import pytest

import runward
from runward import errors

KINDS = {
    "config": (runward.ConfigError, ValueError),
    "not_found": (runward.NotFoundError, FileNotFoundError),
    "invalid_input": (runward.InvalidInputError, ValueError),
    "policy_denied": (runward.PolicyDeniedError, PermissionError),
    "timeout": (runward.RunwardTimeoutError, TimeoutError),
    "io": (runward.IoError, OSError),
    "storage": (runward.StorageError, Exception),
    "shutdown": (runward.ShutdownError, Exception),
    "conflict": (runward.ConflictError, Exception),
    "lease_lost": (runward.LeaseLostError, Exception),
    "busy": (runward.BusyError, Exception),
    "internal": (runward.InternalError, Exception),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_caught_by_the_base_class(kind: str) -> None:
    cls, builtin = KINDS[kind]
    exc = errors._from_kind(kind, f"a {kind} error")
    assert type(exc) is cls
    assert exc.kind == kind
    with pytest.raises(runward.RunwardError):
        raise exc
    with pytest.raises(builtin):
        raise exc
    assert str(exc) == f"a {kind} error"


def test_unknown_kind_becomes_internal() -> None:
    assert type(errors._from_kind("brand_new", "x")) is runward.InternalError


def test_every_class_is_exported() -> None:
    exported = {name for name in runward.__all__ if name.endswith("Error")}
    assert exported == set(errors.__all__)
    for name in errors.__all__:
        cls: Type[BaseException] = getattr(runward, name)
        assert issubclass(cls, runward.RunwardError)
        assert issubclass(cls, Exception)


def test_core_errors_arrive_as_their_kind() -> None:
    h = runward.Health()
    with pytest.raises(runward.InvalidInputError, match="unknown probe kind `often`") as info:
        h.status("often")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    with pytest.raises(runward.NotFoundError):
        h.refresh("missing")
    with pytest.raises(runward.InvalidInputError, match="details policy"):
        h.handle("/readyz", details="everyone")  # type: ignore[arg-type]


def test_io_error_keeps_the_os_error_as_cause() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        h = runward.Health()
        with pytest.raises(runward.IoError, match="cannot listen") as info:
            h.serve(f"127.0.0.1:{busy.getsockname()[1]}")
        assert isinstance(info.value, OSError)
        assert isinstance(info.value.__cause__, OSError)
    finally:
        busy.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:.*fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_objects_refuse_to_work_after_fork() -> None:
    h = runward.Health()
    h.add_check("c", lambda: True)
    h.refresh_all()  # starts runward's threads in this process
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            h.status()
        except runward.ShutdownError as exc:
            code = 0 if "after forking" in str(exc) else 2
        except BaseException:
            code = 3
        try:
            runward.Health().refresh_all()
        except runward.ShutdownError:
            pass
        except BaseException:
            code = 4
        else:
            code = 5
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert h.status() == "pass"  # the parent is unaffected
