"""The asyncio event loop thread that runs coroutine checks, and the glue the native module
calls to run checks and custom steps."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import threading
from typing import Any, Awaitable, Callable, Optional

_lock = threading.Lock()
_loop: Optional[asyncio.AbstractEventLoop] = None
_pid: Optional[int] = None


def event_loop() -> asyncio.AbstractEventLoop:
    """runward's own event loop, running on a daemon thread named ``runward-asyncio``.

    Created on first use, and again in a process forked after it was created.
    """
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="runward-asyncio", daemon=True)
            thread.start()
            _loop, _pid = loop, os.getpid()
        return _loop


async def _call(func: Callable[[], Awaitable[Any]]) -> Any:
    return await func()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def submit(
    func: Callable[[], Awaitable[Any]],
    done: Callable[["concurrent.futures.Future[Any]"], None],
    loop: Optional[asyncio.AbstractEventLoop] = None,
) -> "concurrent.futures.Future[Any]":
    """Runs ``await func()`` on ``loop`` (default: runward's loop); ``done(future)`` is called
    when it finishes, is cancelled or raises. Cancelling the returned future cancels the task."""
    future = asyncio.run_coroutine_threadsafe(_call(func), loop or event_loop())
    future.add_done_callback(done)
    return future


def wait(awaitable: Awaitable[Any], timeout: float, loop: Optional[asyncio.AbstractEventLoop] = None) -> Any:
    """Awaits ``awaitable`` on ``loop`` for at most ``timeout`` seconds, cancelling it after."""
    future = asyncio.run_coroutine_threadsafe(_await(awaitable), loop or event_loop())
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise


class StepCall:
    """One call of a custom step function, made on a runward blocking thread.

    ``run`` calls ``func(ctx, params)``; an awaitable result runs with ``asyncio.run`` on the
    calling thread. ``cancel`` (from any thread) cancels that coroutine, or keeps ``func`` from
    being called at all when it comes first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task: Optional["asyncio.Future[Any]"] = None
        self._cancelled = False

    def run(self, func: Callable[[Any, Any], Any], ctx: Any, params: Any) -> Any:
        if self._cancelled:
            raise asyncio.CancelledError()
        result = func(ctx, params)
        if not inspect.isawaitable(result):
            return result
        return asyncio.run(self._drive(result))

    async def _drive(self, awaitable: Awaitable[Any]) -> Any:
        task = asyncio.ensure_future(awaitable)
        with self._lock:
            self._loop, self._task = asyncio.get_running_loop(), task
            if self._cancelled:
                task.cancel()
        return await task

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop already closed: nothing left to cancel
                pass
