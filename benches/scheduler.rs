//! Scheduler tick cost with 10,000 schedules in an in-memory SQLite store (target: under
//! 50 ms per tick).
//!
//! The schedules: 100 `@every:60` and 9,900 daily cron expressions spread over the minutes of
//! the day in three time zones (UTC, Europe/Berlin, America/New_York).
//!
//! - `tick/10000/nothing-due`: a tick at a time whose due times were already handled: reads
//!   the schedule list and compares each schedule's next due time;
//! - `tick/10000/minute`: each iteration moves time on by one minute, so about 107 schedules
//!   are due (the 100 `@every:60` and the daily ones of that minute): every due time is
//!   claimed and its run created, one transaction each;
//! - `tick/10000/cold`: the first tick of a new scheduler, which reads each schedule's last
//!   ledger row once.
//!
//! Run with `cargo bench -p runward --bench scheduler`.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{Criterion, criterion_group, criterion_main};
use runward::schedule::{ResolvedRunbook, Schedule, Scheduler, TimeZoneName};
use runward::store::{OverlapPolicy, SqliteStore, Store, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

const SCHEDULES: usize = 10_000;

fn schedules() -> Vec<Schedule> {
    let zones: [TimeZoneName; 3] = [
        TimeZoneName::UTC,
        "Europe/Berlin".parse().unwrap(),
        "America/New_York".parse().unwrap(),
    ];
    (0..SCHEDULES)
        .map(|i| {
            let name = format!("s{i:05}");
            let schedule = if i % 100 == 0 {
                Schedule::new(&name, "@every:60", "heartbeat").unwrap()
            } else {
                let spec = format!("{} {} * * *", i % 60, (i / 60) % 24);
                Schedule::in_zone(&name, &spec, zones[i % 3], "nightly").unwrap()
            };
            schedule.overlap(OverlapPolicy::Allow)
        })
        .collect()
}

fn names(reference: &str) -> runward::Result<ResolvedRunbook> {
    Ok(ResolvedRunbook {
        name: reference.to_owned(),
        definition_hash: "bench".into(),
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, start) = rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let scheduler = Scheduler::new(Arc::clone(&store)).with_resolver(names);
        scheduler.sync(&schedules()).await.unwrap();
        (store, Timestamp::now())
    });

    let mut group = c.benchmark_group("tick/10000");
    group.sample_size(20);

    let warm = Scheduler::new(Arc::clone(&store)).with_resolver(names);
    rt.block_on(async { warm.tick(start).await.unwrap() });
    group.bench_function("nothing-due", |b| {
        b.to_async(&rt).iter(|| async {
            let report = warm.tick(start).await.unwrap();
            assert!(report.claimed.is_empty());
        })
    });

    let minute = AtomicI64::new(0);
    group.bench_function("minute", |b| {
        b.to_async(&rt).iter(|| async {
            let m = minute.fetch_add(1, Ordering::SeqCst) + 1;
            let now = start + Duration::from_secs(60 * m as u64);
            let report = warm.tick(now).await.unwrap();
            assert!(report.errors.is_empty());
        })
    });

    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.to_async(&rt).iter(|| async {
            let fresh = Scheduler::new(Arc::clone(&store)).with_resolver(names);
            fresh.tick(start).await.unwrap();
        })
    });
    group.finish();

    // One minute's tick, reported with its count of claimed due times.
    rt.block_on(async {
        let m = minute.fetch_add(1, Ordering::SeqCst) + 1;
        let now = start + Duration::from_secs(60 * m as u64);
        let t = std::time::Instant::now();
        let report = warm.tick(now).await.unwrap();
        println!(
            "one tick over {SCHEDULES} schedules claimed {} due times in {:?}",
            report.claimed.len(),
            t.elapsed()
        );
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
