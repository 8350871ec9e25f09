"""The exceptions runward raises: one base class, one subclass per core error kind.

Every subclass also derives from the built-in exception that fits, so ``except ValueError``
or ``except FileNotFoundError`` keep working. ``kind`` is the core's stable kind name.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type

__all__ = [
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
]


class RunwardError(Exception):
    """Base class of every runward error.

    ``kind`` is the core's stable error kind; ``location`` is ``(file, line, column)`` for a
    configuration error that has one, else ``None``.
    """

    kind: str = "internal"
    location: Optional[Tuple[Optional[str], int, int]] = None


class ConfigError(RunwardError, ValueError):
    """A configuration file or value is invalid; the message starts with ``file:line:column``."""

    kind = "config"


class NotFoundError(RunwardError, FileNotFoundError):
    """A file or a named item (e.g. a check) does not exist."""

    kind = "not_found"


class InvalidInputError(RunwardError, ValueError):
    """An argument is invalid, or a call came at the wrong time (e.g. ``add_check`` after start)."""

    kind = "invalid_input"


class PolicyDeniedError(RunwardError, PermissionError):
    """A policy (outbound hosts, paths) refused the operation."""

    kind = "policy_denied"


class RunwardTimeoutError(RunwardError, TimeoutError):
    """An operation did not finish before its deadline."""

    kind = "timeout"


class IoError(RunwardError, OSError):
    """Reading or writing a file or socket failed; ``__cause__`` holds the OS error."""

    kind = "io"


class StorageError(RunwardError):
    """A SQLite or other storage call failed."""

    kind = "storage"


class ShutdownError(RunwardError):
    """The registry or server is shut down, or belongs to the process this one forked from."""

    kind = "shutdown"


class ConflictError(RunwardError):
    """The item is held by someone else, or its state forbids the change (a lease, a flag
    owned by another run, an approval already decided)."""

    kind = "conflict"


class LeaseLostError(RunwardError):
    """The caller's lease on a run is no longer current: stop working on the run."""

    kind = "lease_lost"


class BusyError(RunwardError):
    """The state database stayed locked by another process past the retry deadline."""

    kind = "busy"


class InternalError(RunwardError):
    """An unexpected internal failure; please report it."""

    kind = "internal"


_BY_KIND: Dict[str, Type[RunwardError]] = {
    cls.kind: cls
    for cls in (
        ConfigError,
        NotFoundError,
        InvalidInputError,
        PolicyDeniedError,
        RunwardTimeoutError,
        IoError,
        StorageError,
        ShutdownError,
        ConflictError,
        LeaseLostError,
        BusyError,
        InternalError,
    )
}


def _from_kind(kind: str, message: str) -> RunwardError:
    """The exception for a core error kind (unknown kinds become ``InternalError``)."""
    return _BY_KIND.get(kind, InternalError)(message)
