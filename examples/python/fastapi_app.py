"""A small FastAPI tickets API with runward's probes on the same port.

    python fastapi_app.py                    # 127.0.0.1:$PORT (default 8000)
    curl -s localhost:8000/api/tickets
    curl -s 'localhost:8000/readyz?verbose'

Checks: the data directory, the SQLite database and the optional MemoryKernel service come
from runward.toml next to this file (or $RUNWARD_CONFIG); the job queue is a coroutine check
added below. SIGTERM starts the shutdown sequence: readiness fails at once, the API keeps
serving for $SHUTDOWN_GRACE_MS (default 2000) so load balancers stop sending traffic, then
queued jobs drain and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from types import FrameType
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import runward
from runward.asgi import HealthApp

HERE = Path(__file__).resolve().parent
CONFIG = Path(os.environ.get("RUNWARD_CONFIG", str(HERE / "runward.toml"))).resolve()
SCHEMA_VERSION = 1
QUEUE_WARN_DEPTH = 100


def db_path(config: Path) -> Path:
    # The same file the `db` check of runward.toml watches.
    return config.parent / "data" / "tickets.db"


def migrate(path: Path) -> None:
    """Creates the data directory and the schema (idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS tickets ("
                " id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open')"
            )
            db.executemany(
                "INSERT INTO tickets (title, status) VALUES (?, ?)",
                [("Printer offline", "open"), ("Reset password", "closed")],
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def check_status(health: runward.Health, name: str) -> str:
    """One check's status in the latest snapshot."""
    for entries in health.report().get("checks", {}).values():
        for entry in entries:
            if entry.get("componentId") == name:
                return str(entry["status"])
    return "unknown"


class NewTicket(BaseModel):
    title: str


def create_app(config: Path = CONFIG) -> FastAPI:
    """The app and its Health. Call it in each worker process (runward's threads do not survive fork)."""
    database = db_path(config)
    health = runward.Health(str(config))

    async def send_notifications(jobs: "asyncio.Queue[int]") -> None:
        # Stands in for real work (e-mail, webhooks); counts what it sent.
        while True:
            await jobs.get()
            try:
                await asyncio.sleep(0.01)
                health.add_value("notifications_sent", 1)
            finally:
                jobs.task_done()

    async def heartbeat() -> None:
        # Liveness fails when this stops for [health] heartbeat_timeout_ms: a stuck loop restarts.
        while True:
            health.heartbeat()
            await asyncio.sleep(1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(database)
        jobs: "asyncio.Queue[int]" = asyncio.Queue()
        worker = asyncio.create_task(send_notifications(jobs))
        app.state.jobs = jobs

        async def job_queue() -> runward.Outcome:
            if worker.done():
                return runward.Outcome("fail", "the notification worker stopped", remediation="restart the app")
            depth = jobs.qsize()
            if depth > QUEUE_WARN_DEPTH:
                return runward.Outcome("warn", f"{depth} notifications queued", observed=depth,
                                       measurement="queueDepth")
            return runward.Outcome("pass", observed=depth, measurement="queueDepth")

        # Runs on this loop: the queue belongs to it, and a blocked loop then fails the check.
        health.add_check("job-queue", job_queue, interval_ms=2000, timeout_ms=1000,
                         event_loop=asyncio.get_running_loop())
        health.start()
        beat = asyncio.create_task(heartbeat())
        try:
            yield
        finally:
            # Readiness fails (already, after SIGTERM through main()); liveness holds while jobs drain.
            health.begin_shutdown()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(jobs.join(), timeout=5)
            health.mark_drained()
            for task in (beat, worker):
                task.cancel()
            await asyncio.gather(beat, worker, return_exceptions=True)
            health.stop()

    app = FastAPI(title="tickets", lifespan=lifespan)
    app.state.health = health

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(database, timeout=5)
        db.row_factory = sqlite3.Row
        return db

    @app.get("/api/tickets")
    def list_tickets(status: Optional[str] = None) -> List[Dict[str, Any]]:
        with contextlib.closing(connect()) as db:
            if status is None:
                rows = db.execute("SELECT id, title, status FROM tickets ORDER BY id").fetchall()
            else:
                rows = db.execute("SELECT id, title, status FROM tickets WHERE status = ? ORDER BY id",
                                  (status,)).fetchall()
        return [dict(row) for row in rows]

    @app.get("/api/tickets/{ticket_id}")
    def get_ticket(ticket_id: int) -> Dict[str, Any]:
        with contextlib.closing(connect()) as db:
            row = db.execute("SELECT id, title, status FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        if row is None:
            raise HTTPException(status_code=404, detail="no such ticket")
        return dict(row)

    @app.post("/api/tickets", status_code=201)
    async def create_ticket(ticket: NewTicket, request: Request) -> Dict[str, Any]:
        def insert() -> int:
            with contextlib.closing(connect()) as db, db:
                cursor = db.execute("INSERT INTO tickets (title) VALUES (?)", (ticket.title,))
                return int(cursor.lastrowid or 0)

        ticket_id = await asyncio.to_thread(insert)
        request.app.state.jobs.put_nowait(ticket_id)
        return {"id": ticket_id, "title": ticket.title, "status": "open"}

    @app.get("/api/tickets/{ticket_id}/draft")
    def draft_reply(ticket_id: int) -> Dict[str, Any]:
        ticket = get_ticket(ticket_id)
        # Enrichment is optional: its last result comes from the snapshot (no I/O); drafting
        # falls back to a plain template whenever it is not passing.
        enriched = check_status(health, "memory-kernel") == "pass"
        return {
            "ticket": ticket_id,
            "draft": f"Hello, we are looking into \"{ticket['title']}\".",
            "enrichment": "memory-kernel" if enriched else "fallback",
        }

    # Last, so the API routes win: /livez /readyz /readyz/<check> /startupz /healthz /metrics.
    app.mount("/", HealthApp(health))
    return app


app = create_app()


def main() -> None:
    import uvicorn

    health: runward.Health = app.state.health
    grace = int(os.environ.get("SHUTDOWN_GRACE_MS", "2000")) / 1000

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Optional[FrameType]) -> None:
            if health.shutting_down:  # a second signal: stop now
                super().handle_exit(sig, frame)
                return
            # Readiness fails at once; keep serving until load balancers have noticed.
            health.begin_shutdown()
            logging.getLogger("uvicorn.error").info("readiness failing; stopping in %.1f s", grace)
            timer = threading.Timer(grace, lambda: setattr(self, "should_exit", True))
            timer.daemon = True
            timer.start()

    config = uvicorn.Config(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        lifespan="on",
    )
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run()


if __name__ == "__main__":
    main()
