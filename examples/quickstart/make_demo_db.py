"""Creates the quick-start demo database (idempotent): a `tickets` table, user_version 1."""

import pathlib
import sqlite3
import sys

path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data/app.db")
path.parent.mkdir(parents=True, exist_ok=True)
with sqlite3.connect(path) as db:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL)")
    if db.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0:
        db.executemany(
            "INSERT INTO tickets (title, status) VALUES (?, ?)",
            [("Printer offline", "queued"), ("Reset password", "completed")],
        )
    db.execute("PRAGMA user_version = 1")
print(f"demo database ready: {path}")
