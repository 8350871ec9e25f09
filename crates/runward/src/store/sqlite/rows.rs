//! Column lists and row decoders.

use crate::store::*;
use rusqlite::Row;
use rusqlite::types::Type;
use serde_json::Value;
use std::str::FromStr;
use std::time::Duration;

pub(super) const RUN_COLS: &str = "id, runbook, definition_hash, params, status, started_by, \
    created_at, updated_at, error, parent_run_id, fire_schedule, fire_due_at, current_step, \
    lease_owner, lease_epoch, lease_expires_at";
pub(super) const ATTEMPT_COLS: &str = "run_id, step_index, step_id, attempt, idempotency_key, \
    status, started_at, finished_at, output, error";
pub(super) const EVENT_COLS: &str = "run_id, seq, at, kind, data, prev_hash, hash";
pub(super) const FLAG_COLS: &str = "name, owner, reason, set_at, expires_at";
pub(super) const SCHEDULE_COLS: &str = "name, spec, time_zone, runbook, params, misfire, \
    catch_up_ms, overlap, enabled, created_at, updated_at";
pub(super) const FIRE_COLS: &str = "schedule, due_at, status, run_id, reason, recorded_at";
pub(super) const APPROVAL_COLS: &str = "id, run_id, step_index, attempt, plan_digest, quorum, \
    approvers, exclude_starter, starter, status, created_at, expires_at, consumed_at";

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

fn parsed<T: FromStr<Err = crate::Error>>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    row.get::<_, String>(idx)?
        .parse()
        .map_err(|e| conversion(idx, e))
}

fn json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    serde_json::from_str(&row.get::<_, String>(idx)?).map_err(|e| conversion(idx, e))
}

fn opt_json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    row.get::<_, Option<String>>(idx)?
        .map(|s| serde_json::from_str(&s).map_err(|e| conversion(idx, e)))
        .transpose()
}

fn ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    Ok(Timestamp::from_millis(row.get(idx)?))
}

fn opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(Timestamp::from_millis))
}

pub(super) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    let fire = match (
        row.get::<_, Option<String>>(10)?,
        row.get::<_, Option<i64>>(11)?,
    ) {
        (Some(schedule), Some(due)) => Some(FireRef {
            schedule,
            due_at: Timestamp::from_millis(due),
        }),
        _ => None,
    };
    let epoch = row.get::<_, i64>(14)? as u64;
    let lease = match (row.get::<_, Option<String>>(13)?, opt_ts(row, 15)?) {
        (Some(owner), Some(expires_at)) => Some(Lease {
            owner,
            epoch,
            expires_at,
        }),
        _ => None,
    };
    Ok(Run {
        id: RunId::from(row.get::<_, String>(0)?),
        runbook: row.get(1)?,
        definition_hash: row.get(2)?,
        params: json(row, 3)?,
        status: parsed(row, 4)?,
        started_by: row.get(5)?,
        created_at: ts(row, 6)?,
        updated_at: ts(row, 7)?,
        error: row.get(8)?,
        parent: row.get::<_, Option<String>>(9)?.map(RunId::from),
        fire,
        current_step: row.get(12)?,
        lease,
        epoch,
    })
}

pub(super) fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<StepAttempt> {
    Ok(StepAttempt {
        run_id: RunId::from(row.get::<_, String>(0)?),
        step_index: row.get(1)?,
        step_id: row.get(2)?,
        attempt: row.get(3)?,
        idempotency_key: row.get(4)?,
        status: parsed(row, 5)?,
        started_at: ts(row, 6)?,
        finished_at: opt_ts(row, 7)?,
        output: opt_json(row, 8)?,
        error: row.get(9)?,
    })
}

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        run_id: RunId::from(row.get::<_, String>(0)?),
        seq: row.get::<_, i64>(1)? as u64,
        at: ts(row, 2)?,
        kind: row.get(3)?,
        data: json(row, 4)?,
        prev_hash: row.get(5)?,
        hash: row.get(6)?,
    })
}

pub(super) fn flag_from_row(row: &Row<'_>) -> rusqlite::Result<Flag> {
    Ok(Flag {
        name: row.get(0)?,
        owner: row.get(1)?,
        reason: row.get(2)?,
        set_at: ts(row, 3)?,
        expires_at: ts(row, 4)?,
    })
}

pub(super) fn schedule_from_row(row: &Row<'_>) -> rusqlite::Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        def: ScheduleDef {
            name: row.get(0)?,
            spec: row.get(1)?,
            time_zone: row.get(2)?,
            runbook: row.get(3)?,
            params: json(row, 4)?,
            misfire: parsed(row, 5)?,
            catch_up: row
                .get::<_, Option<i64>>(6)?
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            overlap: parsed(row, 7)?,
            enabled: row.get(8)?,
        },
        created_at: ts(row, 9)?,
        updated_at: ts(row, 10)?,
    })
}

pub(super) fn fire_from_row(row: &Row<'_>) -> rusqlite::Result<Fire> {
    Ok(Fire {
        schedule: row.get(0)?,
        due_at: ts(row, 1)?,
        status: parsed(row, 2)?,
        run_id: row.get::<_, Option<String>>(3)?.map(RunId::from),
        reason: row.get(4)?,
        recorded_at: ts(row, 5)?,
    })
}

pub(super) fn approval_from_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let approvers: Vec<String> =
        serde_json::from_str(&row.get::<_, String>(6)?).map_err(|e| conversion(6, e))?;
    Ok(Approval {
        id: ApprovalId::from(row.get::<_, String>(0)?),
        run_id: RunId::from(row.get::<_, String>(1)?),
        step_index: row.get(2)?,
        attempt: row.get(3)?,
        plan_digest: row.get(4)?,
        quorum: row.get(5)?,
        approvers,
        exclude_starter: row.get(7)?,
        starter: row.get(8)?,
        status: parsed(row, 9)?,
        created_at: ts(row, 10)?,
        expires_at: ts(row, 11)?,
        consumed_at: opt_ts(row, 12)?,
        approvals: Vec::new(),
        denial: None,
    })
}
