"""Async twins: awaitables on the caller's asyncio loop, work on runward's threads."""

from __future__ import annotations

import asyncio
import time

import pytest

import runward


def test_async_twins() -> None:
    async def ping() -> str:
        await asyncio.sleep(0.01)
        return "pong"

    h = runward.Health()
    h.add_check("ping", ping)
    h.add_check("sync", lambda: True)

    async def main() -> None:
        await h.refresh_all_async()
        assert h.status() == "pass"
        state = await h.refresh_async("ping")
        assert state["output"] == "pong"
        report = await h.doctor_async()
        assert report["status"] == "pass"
        with pytest.raises(runward.NotFoundError):
            await h.refresh_async("missing")

    asyncio.run(main())


def test_the_caller_loop_stays_free_while_checks_run() -> None:
    def slow() -> None:
        time.sleep(0.3)

    h = runward.Health()
    h.add_check("slow", slow)

    async def main() -> int:
        ticks = 0
        task = asyncio.ensure_future(h.refresh_all_async())
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        await task
        return ticks

    assert asyncio.run(main()) >= 10


def test_server_shutdown_async() -> None:
    h = runward.Health()
    h.add_check("c", lambda: True)
    server = h.serve("127.0.0.1:0")

    async def main() -> None:
        h.mark_drained()
        await server.shutdown_async(drain_ms=2000)

    asyncio.run(main())
    assert not server.running
    assert h.status() == "fail"  # readiness fails from the start of shutdown
