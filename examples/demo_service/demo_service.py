#!/usr/bin/env python3
"""A small service that the example runbooks operate on (Python 3.11 standard library only).

    python3 demo_service.py --port 0 --data DIR --port-file FILE

It listens on 127.0.0.1 only; with --port 0 it binds a free port and writes it to --port-file.
State lives in DIR: `app.db` (SQLite: `memory` notes and sync `jobs`), `control.db` (applied
idempotency keys and counters; a memory rollback never rewinds it), `snapshots/<name>.db`, and
`effects.log`, where every applied state-changing request appends one JSON line
{"effect", "idempotency_key", "at", "detail"}.

Every POST honours an `Idempotency-Key` header: a key already applied is not applied again;
the answer is 200 {"duplicate": true, "effect": ..., "result": <the first answer>}.

  GET  /healthz                    200 while the process is up
  GET  /readyz                     200 when ready; 503 while starting, draining or restarting
  GET  /internal/inflight          {"inflight": N}
  POST /internal/work?n=K&ms=T     K fake tasks finishing after T ms
  POST /admin/drain                stop accepting work (/internal/work, /memory/note and
                                   /jobs/sync answer 503); /readyz answers 503
  POST /admin/restart[?version=V]  not ready for --restart-seconds, then ready and undrained;
                                   tasks still in flight are dropped (counted in /stats)
  POST /admin/undrain              accept work again
  POST /memory/note?key=K&value=V  write a note
  GET  /memory/count               {"count": N}
  POST /memory/snapshot[?name=N]   copy app.db to snapshots/N.db (sqlite3 backup API)
  POST /memory/rollback?snapshot=N restore app.db from snapshots/N.db
  POST /jobs/sync?name=X[&ms=T&fail=1]  a job going queued -> running -> completed (or failed)
  GET  /jobs[?status=S&name=X&limit=N]  list jobs, newest first
  GET  /jobs/ready?name=X          200 when the newest job X completed, 503 while queued or
                                   running, 409 when it failed, 404 when there is none
  GET  /jobs/<id>                  one job
  GET  /stats                      restarts, effects by kind, duplicates refused, ...
SIGTERM and SIGINT stop it cleanly (exit status 0).
"""

import argparse
import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@contextmanager
def connect(path):
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)  # autocommit
    try:
        yield conn
    finally:
        conn.close()


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Service:
    def __init__(self, data, startup_delay, restart_seconds, version):
        self.db_path = os.path.join(data, "app.db")
        self.control_path = os.path.join(data, "control.db")
        self.snapshots = os.path.join(data, "snapshots")
        self.effects_path = os.path.join(data, "effects.log")
        os.makedirs(self.snapshots, exist_ok=True)
        self.lock = threading.RLock()  # serializes every state change
        self.ready_at = time.monotonic() + startup_delay
        self.restart_seconds = restart_seconds
        self.restarting_until = 0.0
        self.draining = False
        self.version = version
        self.tasks = []  # monotonic deadlines of fake in-flight tasks
        with self.db() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS memory (key TEXT PRIMARY KEY, value TEXT, updated_at TEXT);
                CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, name TEXT, status TEXT, error TEXT,
                                                 created_at TEXT, updated_at TEXT);
                -- jobs a previous process left unfinished will never finish
                UPDATE jobs SET status = 'failed', error = 'interrupted' WHERE status IN ('queued', 'running');""")
        with self.control() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, effect TEXT, response TEXT, at TEXT);
                CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);""")

    def db(self):
        return connect(self.db_path)

    def control(self):
        return connect(self.control_path)

    def bump(self, name, by=1):
        with self.control() as db:
            db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                       (name, by, by))

    def counter(self, name):
        with self.control() as db:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def inflight(self):
        now = time.monotonic()
        self.tasks = [t for t in self.tasks if t > now]
        return len(self.tasks)

    def readiness(self):
        now = time.monotonic()
        if now < self.ready_at:
            return "starting"
        if now < self.restarting_until:
            return "restarting"
        return "draining" if self.draining else None

    def apply(self, effect, key, action):
        """Runs `action` once per idempotency key, recording the key and the effect."""
        with self.lock:
            if key:
                with self.control() as db:
                    row = db.execute("SELECT effect, response FROM idempotency WHERE key = ?", (key,)).fetchone()
                if row:
                    self.bump("duplicates_refused")
                    return 200, {"duplicate": True, "effect": row[0], "result": json.loads(row[1])}
            status, result = action()
            if key:
                with self.control() as db:
                    db.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?)", (key, effect, json.dumps(result), now_iso()))
            line = {"effect": effect, "idempotency_key": key, "at": now_iso(), "detail": result}
            with open(self.effects_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")
            return status, result

    # --- effects (called under the lock) ---

    def accepting(self):
        if self.readiness() in ("draining", "restarting"):
            raise HttpError(503, f"not accepting work: {self.readiness()}")

    def work(self, n, ms):
        self.accepting()
        self.tasks.extend([time.monotonic() + ms / 1000.0] * n)
        return 202, {"added": n, "inflight": self.inflight()}

    def drain(self, draining):
        self.draining = draining
        return 200, {"draining": draining, "inflight": self.inflight()}

    def restart(self, version):
        dropped = self.inflight()
        self.tasks = []
        self.draining = False
        self.restarting_until = time.monotonic() + self.restart_seconds
        self.version = version or self.version
        self.bump("restarts")
        self.bump("tasks_dropped_by_restart", dropped)
        return 200, {"restarted": True, "restarts": self.counter("restarts"),
                     "dropped_inflight": dropped, "version": self.version}

    def snapshot(self, name):
        name = name or "snap-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.snapshot_path(name)
        if os.path.exists(path):
            raise HttpError(409, f"snapshot {name} exists")
        with self.db() as src, connect(path) as dst:
            src.backup(dst)
        return 201, {"snapshot": name}

    def rollback(self, name):
        path = self.snapshot_path(name)
        if not os.path.exists(path):
            raise HttpError(404, f"no snapshot {name}")
        with connect(path) as src, self.db() as dst:
            src.backup(dst)
        return 200, {"restored": name, "count": self.memory_count()}

    def snapshot_path(self, name):
        if not name or not NAME.match(name):
            raise HttpError(400, "a snapshot name is letters, digits, '.', '_', ':' or '-'")
        return os.path.join(self.snapshots, name + ".db")

    def note(self, key, value):
        if not key:
            raise HttpError(400, "key is required")
        self.accepting()
        with self.db() as db:
            db.execute("INSERT INTO memory VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE"
                       " SET value = excluded.value, updated_at = excluded.updated_at", (key, value, now_iso()))
        return 200, {"key": key, "count": self.memory_count()}

    def memory_count(self):
        with self.db() as db:
            return db.execute("SELECT COUNT(*) FROM memory").fetchone()[0]

    def start_job(self, name, ms, fail):
        self.accepting()
        with self.db() as db:
            job_id = db.execute("INSERT INTO jobs (name, status, created_at, updated_at) VALUES (?, 'queued', ?, ?)",
                                (name, now_iso(), now_iso())).lastrowid
        threading.Thread(target=self.run_job, args=(job_id, ms, fail), daemon=True).start()
        return 202, {"job_id": job_id, "name": name, "status": "queued"}

    def run_job(self, job_id, ms, fail):
        for status, pause in (("running", ms / 3000.0), ("failed" if fail else "completed", ms / 1500.0)):
            time.sleep(pause)
            with self.lock, self.db() as db:
                db.execute("UPDATE jobs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                           (status, "simulated failure" if status == "failed" else None, now_iso(), job_id))

    def jobs(self, status=None, name=None, limit=50, job_id=None):
        query, args = "SELECT id, name, status, error, created_at, updated_at FROM jobs WHERE 1 = 1", []
        for column, value in (("status", status), ("name", name), ("id", job_id)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        with self.db() as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        keys = ("id", "name", "status", "error", "created_at", "updated_at")
        return [dict(zip(keys, row)) for row in rows]

    def stats(self):
        effects = Counter()
        if os.path.exists(self.effects_path):
            with open(self.effects_path, encoding="utf-8") as log:
                effects.update(json.loads(line)["effect"] for line in log if line.strip())
        return {"restarts": self.counter("restarts"), "effects": effects,
                "duplicates_refused": self.counter("duplicates_refused"),
                "tasks_dropped_by_restart": self.counter("tasks_dropped_by_restart"),
                "inflight": self.inflight(), "draining": self.draining, "version": self.version}


class Handler(BaseHTTPRequestHandler):
    service: Service = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            super().log_message(fmt, *args)

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_request(self, method):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # bodies are accepted and ignored; parameters are in the query
        try:
            self.answer(*self.route(method, url.path.rstrip("/") or "/", query))
        except HttpError as e:
            self.answer(e.status, {"error": str(e)})
        except (ValueError, KeyError) as e:
            self.answer(400, {"error": f"bad request: {e}"})
        except Exception as e:  # noqa: BLE001 - a demo answers every error as JSON
            self.answer(500, {"error": repr(e)})

    def route(self, method, path, q):
        s = self.service
        if method == "GET":
            if path == "/healthz":
                return 200, {"status": "ok", "version": s.version, "pid": os.getpid()}
            if path == "/readyz":
                reason = s.readiness()
                return (503, {"ready": False, "reason": reason}) if reason else (200, {"ready": True})
            if path == "/internal/inflight":
                with s.lock:
                    return 200, {"inflight": s.inflight()}
            if path == "/memory/count":
                return 200, {"count": s.memory_count()}
            if path == "/jobs":
                return 200, {"jobs": s.jobs(q.get("status"), q.get("name"), int(q.get("limit", 50)))}
            if path == "/jobs/ready":
                jobs = s.jobs(name=q["name"], limit=1)
                if not jobs:
                    return 404, {"error": f"no job named {q['name']}"}
                code = {"completed": 200, "failed": 409}.get(jobs[0]["status"], 503)
                return code, {"ready": code == 200, "job": jobs[0]}
            if path.startswith("/jobs/") and path[6:].isdigit():
                jobs = s.jobs(job_id=int(path[6:]))
                return (200, jobs[0]) if jobs else (404, {"error": "no such job"})
            if path == "/stats":
                with s.lock:
                    return 200, s.stats()
        elif method == "POST":
            actions = {
                "/internal/work": lambda: s.work(max(0, min(int(q.get("n", 1)), 10000)), int(q.get("ms", 1000))),
                "/admin/drain": lambda: s.drain(True),
                "/admin/undrain": lambda: s.drain(False),
                "/admin/restart": lambda: s.restart(q.get("version")),
                "/memory/note": lambda: s.note(q.get("key"), q.get("value", "")),
                "/memory/snapshot": lambda: s.snapshot(q.get("name")),
                "/memory/rollback": lambda: s.rollback(q.get("snapshot")),
                "/jobs/sync": lambda: s.start_job(q.get("name", "sync"), int(q.get("ms", 300)), q.get("fail") == "1"),
            }
            if path in actions:
                effect = path.strip("/").replace("/", ".")
                return s.apply(effect, self.headers.get("Idempotency-Key"), actions[path])
        return 404, {"error": f"no route {method} {path}"}

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 binds a free port")
    parser.add_argument("--data", required=True, help="state directory")
    parser.add_argument("--port-file", help="written with the port once listening")
    parser.add_argument("--startup-delay", type=float, default=0.5, help="seconds before /readyz answers 200")
    parser.add_argument("--restart-seconds", type=float, default=0.5, help="how long a restart is not ready")
    parser.add_argument("--app-version", default="1.0.0", help="the version /healthz reports")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args()

    os.makedirs(args.data, exist_ok=True)
    Handler.service = Service(args.data, args.startup_delay, args.restart_seconds, args.app_version)
    Handler.verbose = args.verbose
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    def stop(signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"demo service listening on http://127.0.0.1:{port} (data in {args.data})", file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
