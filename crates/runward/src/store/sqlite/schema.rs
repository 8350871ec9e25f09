//! Versioned migrations of the SQLite store.

/// `(version, description, SQL)`, applied in order, each in the transaction that records it.
pub(super) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "runs, leases, step attempts, events, flags, unlock codes, schedules, fires, approvals",
        r#"
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    runbook          TEXT NOT NULL,
    definition_hash  TEXT NOT NULL,
    params           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'waiting_approval',
                         'waiting_operator', 'succeeded', 'failed', 'cancelled', 'compensating',
                         'compensated', 'compensation_failed', 'orphaned')),
    started_by       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    error            TEXT,
    parent_run_id    TEXT REFERENCES runs(id),
    fire_schedule    TEXT,
    fire_due_at      INTEGER,
    current_step     INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    event_seq        INTEGER NOT NULL DEFAULT 0,
    event_head       TEXT NOT NULL
);
CREATE INDEX runs_by_status ON runs(status, created_at);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE INDEX runs_by_lease ON runs(lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE UNIQUE INDEX runs_by_fire ON runs(fire_schedule, fire_due_at)
    WHERE fire_schedule IS NOT NULL;

CREATE TABLE step_attempts (
    run_id          TEXT NOT NULL REFERENCES runs(id),
    step_index      INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    step_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('intent', 'succeeded', 'failed',
                        'outcome_unknown', 'skipped', 'compensating', 'compensated',
                        'compensation_failed')),
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    output          TEXT,
    error           TEXT,
    PRIMARY KEY (run_id, step_index, attempt)
) WITHOUT ROWID;

CREATE TABLE events (
    run_id    TEXT NOT NULL REFERENCES runs(id),
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE flags (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    reason     TEXT,
    set_at     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX flags_by_owner ON flags(owner);

CREATE TABLE unlock_codes (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    generation INTEGER NOT NULL
);

CREATE TABLE schedules (
    name         TEXT PRIMARY KEY,
    spec         TEXT NOT NULL,
    time_zone    TEXT NOT NULL,
    runbook      TEXT NOT NULL,
    params       TEXT NOT NULL,
    misfire      TEXT NOT NULL,
    catch_up_ms  INTEGER,
    overlap      TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE schedule_fires (
    schedule    TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('dispatched', 'skipped', 'missed')),
    run_id      TEXT REFERENCES runs(id),
    reason      TEXT,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (schedule, due_at)
) WITHOUT ROWID;

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs(id),
    step_index      INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    plan_digest     TEXT NOT NULL,
    quorum          INTEGER NOT NULL CHECK (quorum >= 1),
    approvers       TEXT NOT NULL,
    exclude_starter INTEGER NOT NULL,
    starter         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied',
                        'timed_out', 'consumed')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    consumed_at     INTEGER
);
CREATE INDEX approvals_by_run ON approvals(run_id, created_at);
CREATE INDEX approvals_open ON approvals(expires_at) WHERE status IN ('pending', 'approved');

CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    who         TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    at          INTEGER NOT NULL,
    comment     TEXT,
    PRIMARY KEY (approval_id, who)
) WITHOUT ROWID;
"#,
    ),
    (
        2,
        "unlock codes record who issued them and why a rotation overrode the current code",
        r#"
ALTER TABLE unlock_codes ADD COLUMN issued_by TEXT;
ALTER TABLE unlock_codes ADD COLUMN override_reason TEXT;
"#,
    ),
];

/// The schema version this build writes.
pub(super) fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}
