//! The scheduler: `@every` and cron in time zones across DST changes, misfire and overlap
//! policies, disabled schedules, and four processes ticking one SQLite file without a leader.

mod common;

use runward::ErrorKind;
use runward::schedule::{
    MAX_CATCH_UP_RUNS, ResolvedRunbook, Schedule, Scheduler, TickReport, TimeZoneName,
};
use runward::store::{
    FireStatus, ManualClock, MisfirePolicy, OverlapPolicy, RunFilter, RunStatus, RunUpdate,
    SqliteOptions, SqliteStore, Store, Synchronous, Timestamp,
};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00Z, a whole minute.
const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn at(t: &str) -> Timestamp {
    let dt: chrono::DateTime<chrono::Utc> = t.parse().unwrap();
    Timestamp::from_millis(dt.timestamp_millis())
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

fn names(reference: &str) -> runward::Result<ResolvedRunbook> {
    Ok(ResolvedRunbook {
        name: reference.to_owned(),
        definition_hash: "h".into(),
    })
}

async fn setup(start: Timestamp) -> (Arc<dyn Store>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::open_in_memory_with(SqliteOptions::default().clock(clock.clone()))
        .await
        .unwrap();
    (Arc::new(store), clock)
}

fn scheduler(store: &Arc<dyn Store>) -> Scheduler {
    Scheduler::new(Arc::clone(store)).with_resolver(names)
}

/// Ticks at `now` with the store's clock set to `now` too.
async fn tick(s: &Scheduler, clock: &ManualClock, now: Timestamp) -> TickReport {
    clock.set(now);
    let report = s.tick(now).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

fn dues(report: &TickReport) -> Vec<Timestamp> {
    report.claimed.iter().map(|d| d.due_at).collect()
}

#[tokio::test]
async fn schedule_every_60_dispatches_each_due_time_once() {
    let (store, clock) = setup(START).await;
    let a = scheduler(&store);
    let b = scheduler(&store);
    let heartbeat = Schedule::new("heartbeat", "@every:60", "heartbeat")
        .unwrap()
        .overlap(OverlapPolicy::Allow)
        .params(serde_json::json!({"queue": "default"}))
        .unwrap();
    a.sync(&[heartbeat]).await.unwrap();
    // b learns where the schedule stands before anything is due.
    assert_eq!(
        tick(&b, &clock, START + Duration::from_secs(30))
            .await
            .handled(),
        0
    );

    let first = tick(&a, &clock, START + minutes(1)).await;
    assert_eq!(dues(&first), vec![START + minutes(1)]);
    // Again at the same time: nothing new. The other process finds the ledger row.
    assert_eq!(tick(&a, &clock, START + minutes(1)).await.handled(), 0);
    let other = tick(&b, &clock, START + minutes(1)).await;
    assert!(other.claimed.is_empty());
    assert_eq!(other.lost.len(), 1);
    assert_eq!(other.lost[0].status, FireStatus::Dispatched);

    let run = store.get_run(&first.claimed[0].run_id).await.unwrap();
    assert_eq!(run.runbook, "heartbeat");
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.started_by.as_deref(), Some("schedule:heartbeat"));
    assert_eq!(run.params, serde_json::json!({"queue": "default"}));
    assert_eq!(run.fire.unwrap().due_at, START + minutes(1));

    for i in 2..=5 {
        let (x, y) = (
            tick(&a, &clock, START + minutes(i)).await,
            tick(&b, &clock, START + minutes(i)).await,
        );
        assert_eq!(x.claimed.len() + y.claimed.len(), 1, "minute {i}");
    }
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 5, "one run per due time");
}

#[tokio::test]
async fn schedule_due_times_are_exactly_the_times_the_expression_names() {
    // Synced and ticked at moments with a fraction of a second, by two processes.
    let created = START + Duration::from_millis(15_793);
    let (store, clock) = setup(created).await;
    let a = scheduler(&store);
    let b = scheduler(&store);
    let schedules = [
        Schedule::new("cron-3s", "*/3 * * * * *", "cron")
            .unwrap()
            .misfire(MisfirePolicy::FireAll)
            .overlap(OverlapPolicy::Allow),
        Schedule::new("every-7", "@every:7", "every")
            .unwrap()
            .misfire(MisfirePolicy::FireAll)
            .overlap(OverlapPolicy::Allow),
    ];
    a.sync(&schedules).await.unwrap();
    let status = a.status(created).await.unwrap();
    let next: BTreeMap<_, _> = status
        .iter()
        .map(|s| (s.record.def.name.as_str(), s.next_due))
        .collect();
    assert_eq!(next["cron-3s"], Some(START + Duration::from_secs(18)));
    assert_eq!(next["every-7"], Some(START + Duration::from_secs(21)));

    for (i, ms) in [21_456u64, 30_999, 31_001, 44_500, 60_250]
        .into_iter()
        .enumerate()
    {
        let s = if i % 2 == 0 { &a } else { &b };
        tick(s, &clock, START + Duration::from_millis(ms)).await;
        tick(
            if i % 2 == 0 { &b } else { &a },
            &clock,
            START + Duration::from_millis(ms),
        )
        .await;
    }
    let cron = store.list_fires("cron-3s", None, None).await.unwrap();
    let cron_due: Vec<u64> = cron
        .iter()
        .map(|f| (f.due_at.as_millis() - START.as_millis()) as u64)
        .collect();
    assert_eq!(
        cron_due,
        (18..=60).step_by(3).map(|s| s * 1000).collect::<Vec<_>>()
    );
    let every = store.list_fires("every-7", None, None).await.unwrap();
    assert!(!every.is_empty());
    for fire in &every {
        assert_eq!(fire.due_at.as_millis() % 7000, 0, "{:?}", fire.due_at);
    }
    // Each due time is recorded once, whichever process ticked first.
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), cron.len() + every.len());
    for run in &runs {
        let due = run.fire.as_ref().unwrap().due_at.as_millis();
        assert_eq!(due % 1000, 0, "the run record's due time {due}");
    }
    let status = b
        .status(START + Duration::from_millis(60_250))
        .await
        .unwrap();
    for s in status {
        assert_eq!(s.next_due.unwrap().as_millis() % 1000, 0, "{s:?}");
    }
}

#[tokio::test]
async fn schedule_spring_forward_runs_after_the_gap_and_fall_back_runs_once() {
    let ny: TimeZoneName = "America/New_York".parse().unwrap();
    let (store, clock) = setup(at("2026-03-07T12:00:00Z")).await;
    let s = scheduler(&store);
    let nightly = Schedule::in_zone("nightly", "30 2 * * *", ny, "backup")
        .unwrap()
        .overlap(OverlapPolicy::Allow);
    let early = Schedule::in_zone("early", "30 1 * * *", ny, "backup")
        .unwrap()
        .overlap(OverlapPolicy::Allow);
    s.sync(&[nightly, early]).await.unwrap();

    // Tick every 15 minutes across the spring-forward night (2026-03-08, 02:00 → 03:00).
    let mut claimed = Vec::new();
    let mut now = at("2026-03-07T12:00:00Z");
    while now <= at("2026-03-09T12:00:00Z") {
        let report = tick(&s, &clock, now).await;
        assert!(
            report.missed.is_empty() && report.skipped.is_empty(),
            "{report:?}"
        );
        claimed.extend(report.claimed.into_iter().map(|d| (d.schedule, d.due_at)));
        now = now + minutes(15);
    }
    let nightly: Vec<_> = claimed.iter().filter(|c| c.0 == "nightly").collect();
    assert_eq!(nightly.len(), 2, "{nightly:?}");
    // 02:30 does not exist on the 8th: the run is due at the first instant after the change.
    assert_eq!(nightly[0].1, at("2026-03-08T07:00:00Z"));
    assert_eq!(nightly[1].1, at("2026-03-09T06:30:00Z"));

    // Fall back (2026-11-01, 02:00 EDT → 01:00 EST): 01:30 happens twice, runs once.
    let mut claimed = Vec::new();
    let mut now = at("2026-10-31T12:00:00Z");
    while now <= at("2026-11-01T12:00:00Z") {
        claimed.extend(
            tick(&s, &clock, now)
                .await
                .claimed
                .into_iter()
                .filter(|d| d.schedule == "early")
                .map(|d| d.due_at),
        );
        now = now + minutes(15);
    }
    assert_eq!(claimed, vec![at("2026-11-01T05:30:00Z")]);
    // The spring-forward night's backlog was recorded as missed, not dropped silently:
    // `early` was created in March and nothing ticked it between then and October.
    let fires = store.list_fires("early", None, None).await.unwrap();
    assert!(fires.iter().all(|f| f.status == FireStatus::Dispatched
        || f.reason.as_deref().is_some_and(|r| !r.is_empty())));
}

#[tokio::test]
async fn schedule_misfire_skip_runs_the_latest_and_records_the_rest_missed() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb")
        .unwrap()
        .overlap(OverlapPolicy::Allow)])
        .await
        .unwrap();
    // Nothing ticks for ten minutes.
    let report = tick(&s, &clock, START + minutes(10)).await;
    assert_eq!(dues(&report), vec![START + minutes(10)]);
    assert_eq!(report.missed.len(), 9);
    assert!(report.skipped.is_empty());
    assert!(
        report.missed[0].reason.contains("catch-up window of 1m"),
        "{}",
        report.missed[0].reason
    );
    let fires = store.list_fires("hb", None, None).await.unwrap();
    assert_eq!(fires.len(), 10, "every due time is in the ledger");
    assert!(
        fires[..9]
            .iter()
            .all(|f| f.status == FireStatus::Missed && f.reason.is_some())
    );
}

#[tokio::test]
async fn schedule_misfire_fire_once_runs_one_and_records_the_rest_skipped() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb")
        .unwrap()
        .misfire(MisfirePolicy::FireOnce)
        .catch_up(minutes(5))
        .overlap(OverlapPolicy::Allow)])
        .await
        .unwrap();
    let report = tick(&s, &clock, START + minutes(10)).await;
    assert_eq!(dues(&report), vec![START + minutes(10)]);
    // 1..4 minutes are older than the 5-minute window; 5..9 are inside it.
    assert_eq!(report.missed.len(), 4);
    assert_eq!(report.skipped.len(), 5);
    assert!(report.skipped[0].reason.contains("fire_once"));
}

#[tokio::test]
async fn schedule_misfire_fire_all_runs_each_inside_the_window_bounded_per_tick() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb")
        .unwrap()
        .misfire(MisfirePolicy::FireAll)
        .catch_up(minutes(5))
        .overlap(OverlapPolicy::Allow)])
        .await
        .unwrap();
    let report = tick(&s, &clock, START + minutes(10)).await;
    assert_eq!(
        dues(&report),
        (5..=10).map(|i| START + minutes(i)).collect::<Vec<_>>()
    );
    assert_eq!(report.missed.len(), 4);

    // A long backlog starts at most MAX_CATCH_UP_RUNS runs per tick and continues later.
    s.sync(&[Schedule::new("fast", "@every:1", "fast")
        .unwrap()
        .misfire(MisfirePolicy::FireAll)
        .catch_up(Duration::from_secs(3600))
        .overlap(OverlapPolicy::Allow)])
        .await
        .unwrap();
    let now = START + minutes(10) + Duration::from_secs(250);
    let mut total = 0;
    for round in 0.. {
        let report = tick(&s, &clock, now).await;
        let fast = report
            .claimed
            .iter()
            .filter(|d| d.schedule == "fast")
            .count();
        assert!(fast <= MAX_CATCH_UP_RUNS + 1, "round {round}: {fast}");
        total += fast;
        if fast == 0 {
            break;
        }
    }
    assert_eq!(total, 250);
}

#[tokio::test]
async fn schedule_overlap_skip_waits_for_the_previous_run() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb").unwrap()])
        .await
        .unwrap();
    let first = tick(&s, &clock, START + minutes(1)).await;
    assert_eq!(first.claimed.len(), 1);
    let run_id = first.claimed[0].run_id.clone();

    let second = tick(&s, &clock, START + minutes(2)).await;
    assert!(second.claimed.is_empty());
    assert_eq!(second.skipped.len(), 1);
    assert!(
        second.skipped[0]
            .reason
            .contains(&format!("previous run {run_id} is still queued")),
        "{}",
        second.skipped[0].reason
    );

    let lease = store
        .acquire_lease(&run_id, "worker", Duration::from_secs(3600))
        .await
        .unwrap();
    store
        .update_run(&run_id, lease.epoch, RunUpdate::status(RunStatus::Running))
        .await
        .unwrap();
    let third = tick(&s, &clock, START + minutes(3)).await;
    assert!(third.skipped[0].reason.contains("is still running"));
    store
        .update_run(
            &run_id,
            lease.epoch,
            RunUpdate::status(RunStatus::Succeeded),
        )
        .await
        .unwrap();
    let fourth = tick(&s, &clock, START + minutes(4)).await;
    assert_eq!(dues(&fourth), vec![START + minutes(4)]);
}

#[tokio::test]
async fn schedule_overlap_buffer_one_keeps_one_queued() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb")
        .unwrap()
        .overlap(OverlapPolicy::BufferOne)])
        .await
        .unwrap();
    let first = tick(&s, &clock, START + minutes(1)).await;
    let run_id = first.claimed[0].run_id.clone();
    let lease = store
        .acquire_lease(&run_id, "worker", Duration::from_secs(600))
        .await
        .unwrap();
    store
        .update_run(&run_id, lease.epoch, RunUpdate::status(RunStatus::Running))
        .await
        .unwrap();
    // The first run is running: one more may wait in the queue, no more.
    let second = tick(&s, &clock, START + minutes(2)).await;
    assert_eq!(second.claimed.len(), 1);
    let third = tick(&s, &clock, START + minutes(3)).await;
    assert!(third.claimed.is_empty());
    assert!(
        third.skipped[0].reason.contains("already queued"),
        "{}",
        third.skipped[0].reason
    );
}

#[tokio::test]
async fn schedule_disabled_records_its_due_times_skipped() {
    let (store, clock) = setup(START).await;
    let s = scheduler(&store);
    s.sync(&[Schedule::new("hb", "@every:60", "hb")
        .unwrap()
        .enabled(false)])
        .await
        .unwrap();
    let report = tick(&s, &clock, START + minutes(3)).await;
    assert!(report.claimed.is_empty());
    assert_eq!(report.skipped.len(), 3);
    assert!(report.skipped[0].reason.contains("disabled"));
    store.set_schedule_enabled("hb", true).await.unwrap();
    let report = tick(&s, &clock, START + minutes(4)).await;
    assert_eq!(dues(&report), vec![START + minutes(4)]);
}

#[tokio::test]
async fn schedule_runbook_errors_leave_the_due_time_for_the_next_tick() {
    let (store, clock) = setup(START).await;
    let s = Scheduler::new(Arc::clone(&store));
    s.sync(&[Schedule::new("hb", "@every:60", "/nonexistent/hb.toml").unwrap()])
        .await
        .unwrap();
    clock.set(START + minutes(1));
    let report = s.tick(START + minutes(1)).await.unwrap();
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].message.contains("cannot be loaded"),
        "{}",
        report.errors[0].message
    );
    assert!(store.list_fires("hb", None, None).await.unwrap().is_empty());
    // Fixed, the same due time runs.
    let fixed = scheduler(&store);
    let report = tick(&fixed, &clock, START + minutes(1)).await;
    assert_eq!(dues(&report), vec![START + minutes(1)]);
}

#[test]
fn schedule_definitions_validate_what_they_hold() {
    let err = Schedule::new("bad name", "@every:60", "rb").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = Schedule::new("x", "@every:soon", "rb").unwrap_err();
    assert!(err.to_string().contains("@every:60"), "{err}");
    let err = Schedule::new("x", "@every:60", " ").unwrap_err();
    assert!(err.to_string().contains("runbook"), "{err}");
    let err = Schedule::new("x", "@every:60", "rb")
        .unwrap()
        .params(serde_json::json!([1]))
        .unwrap_err();
    assert!(err.to_string().contains("table"), "{err}");
    let def = Schedule::new("x", "0 3 * * *", "rb")
        .unwrap()
        .catch_up(minutes(10))
        .to_def();
    let back = Schedule::from_def(&def).unwrap();
    assert_eq!(back.to_def(), def);
}

// ----- four processes, one file -----

const PROCESSES: u64 = 4;
/// Due times of the `@every:60` schedules.
const DUE_TIMES: u64 = 1000;

fn temp_db(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scheduler");
    std::fs::create_dir_all(&dir).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    dir.join(format!("{name}-{}-{nanos:x}.db", std::process::id()))
}

/// When the fault test creates its schedules, at a fraction of a second: the first due time is
/// START + 1 minute, exactly.
const CREATED: Timestamp = Timestamp::from_millis(START.as_millis() + 30_793);

/// The schedules every process ticks, created at CREATED; 1000 minutes follow.
fn fault_schedules() -> Vec<Schedule> {
    let ny: TimeZoneName = "America/New_York".parse().unwrap();
    vec![
        // Every due time runs.
        Schedule::new("heartbeat", "@every:60", "heartbeat")
            .unwrap()
            .misfire(MisfirePolicy::FireAll)
            .overlap(OverlapPolicy::Allow),
        // Runs never finish here: one run, then every due time is skipped for overlap.
        Schedule::new("exclusive", "@every:60", "exclusive").unwrap(),
        // Processes tick every 2-5 minutes: the minute before a tick is a misfire.
        Schedule::new("latest-only", "@every:60", "latest-only")
            .unwrap()
            .overlap(OverlapPolicy::Allow),
        Schedule::new("catch-up-once", "@every:120", "catch-up-once")
            .unwrap()
            .misfire(MisfirePolicy::FireOnce)
            .overlap(OverlapPolicy::BufferOne),
        Schedule::in_zone("five-minutes-ny", "*/5 * * * *", ny, "five")
            .unwrap()
            .overlap(OverlapPolicy::Allow),
    ]
}

/// One ticking process of `schedule_four_processes_tick_without_duplicates_or_silent_misses`.
#[test]
#[ignore = "worker process, started by schedule_four_processes_tick_without_duplicates_or_silent_misses"]
fn scheduler_multi_process_worker() {
    let common::Worker { db, index } = common::worker(Duration::from_secs(60));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = SqliteOptions::default().synchronous(Synchronous::Normal);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(&db, options).await.unwrap());
        let s = scheduler(&store);
        // Process k ticks every k + 2 minutes, and once more at the end.
        let stride = index + 2;
        let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
        let ticks = (1..=DUE_TIMES)
            .filter(|i| i % stride == 0)
            .chain([DUE_TIMES]);
        for i in ticks {
            let report = s.tick(START + minutes(i)).await.unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            *totals.entry("claimed").or_default() += report.claimed.len();
            *totals.entry("lost").or_default() += report.lost.len();
            *totals.entry("skipped").or_default() += report.skipped.len();
            *totals.entry("missed").or_default() += report.missed.len();
        }
        let line: Vec<_> = totals.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("totals {}", line.join(" "));
    });
}

#[tokio::test]
async fn schedule_four_processes_tick_without_duplicates_or_silent_misses() {
    let db = temp_db("processes");
    {
        let clock = Arc::new(ManualClock::new(CREATED));
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_with(&db, SqliteOptions::default().clock(clock))
                .await
                .unwrap(),
        );
        scheduler(&store).sync(&fault_schedules()).await.unwrap();
    }
    let outputs = common::run_workers("scheduler_multi_process_worker", &db, PROCESSES).await;

    let mut written = 0;
    let mut claimed = 0;
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "worker failed:\n{stdout}\n{stderr}");
        let line = stdout
            .lines()
            .find_map(|l| l.split("totals ").nth(1))
            .unwrap_or_else(|| panic!("the worker reports its totals:\n{stdout}"));
        for pair in line.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            let v: usize = v.parse().unwrap();
            if k != "lost" {
                written += v;
            }
            if k == "claimed" {
                claimed += v;
            }
        }
    }

    let store = SqliteStore::open(&db).await.unwrap();
    let end = START + minutes(DUE_TIMES);
    let mut ledger_rows = 0;
    let mut dispatched = 0;
    for schedule in fault_schedules() {
        let name = schedule.name();
        let expected: Vec<Timestamp> = schedule
            .spec()
            .due_between(
                chrono::DateTime::from_timestamp_millis(CREATED.as_millis()).unwrap(),
                chrono::DateTime::from_timestamp_millis(end.as_millis()).unwrap(),
                10_000,
            )
            .into_iter()
            .map(|t| Timestamp::from_millis(t.timestamp_millis()))
            .collect();
        let fires = store.list_fires(name, None, None).await.unwrap();
        let got: Vec<Timestamp> = fires.iter().map(|f| f.due_at).collect();
        assert_eq!(
            got, expected,
            "{name}: every due time is in the ledger once"
        );
        assert!(
            got.iter().all(|t| t.as_millis() % 60_000 == 0),
            "{name}: due times are whole minutes, whatever the fraction of the sync"
        );
        for fire in &fires {
            match fire.status {
                FireStatus::Dispatched => assert!(fire.run_id.is_some()),
                _ => assert!(
                    fire.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "{name}: {fire:?} has a reason"
                ),
            }
        }
        let runs = store
            .list_runs(&RunFilter {
                schedule: Some(name.to_owned()),
                ..RunFilter::default()
            })
            .await
            .unwrap();
        let run_dues: HashSet<_> = runs
            .iter()
            .map(|r| r.fire.clone().unwrap().due_at)
            .collect();
        assert_eq!(run_dues.len(), runs.len(), "{name}: no due time ran twice");
        let dispatched_here = fires
            .iter()
            .filter(|f| f.status == FireStatus::Dispatched)
            .count();
        assert_eq!(runs.len(), dispatched_here, "{name}");
        if name == "heartbeat" {
            assert_eq!(runs.len() as u64, DUE_TIMES, "fire_all runs every due time");
        }
        if name == "exclusive" {
            assert_eq!(runs.len(), 1, "overlap skip");
        }
        ledger_rows += fires.len();
        dispatched += dispatched_here;
    }
    assert_eq!(
        written, ledger_rows,
        "each ledger row was written by exactly one process"
    );
    assert_eq!(claimed, dispatched);
    let all_runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(all_runs.len(), dispatched, "0 duplicate runs");
    println!(
        "{PROCESSES} processes, {ledger_rows} due times: {dispatched} dispatched, {} skipped or missed, 0 duplicates",
        ledger_rows - dispatched
    );
}
