//! In-process readiness evaluation with 20 checks.
//!
//! Builds a registry of 20 readiness checks, runs each once, then measures what a `/readyz`
//! request costs without the HTTP layer:
//!
//! - `status`: [`Registry::status`], the allocation-free hot path (target: under 1 µs);
//! - `handle/status-only`: [`endpoints::handle`] for an anonymous caller (status, headers, body);
//! - `handle/full`: [`endpoints::handle`] for a loopback caller, who gets every check's details;
//! - `evaluate+health_json`: [`Registry::evaluate`] plus [`render::health_json`] serialised to text.
//!
//! The `timed-out` group repeats `status` and `handle/status-only` with one check whose
//! dependency hangs: its run has already overrun its deadline in the background, so the request
//! path reads a `fail` result like any other.
//!
//! Run with `cargo bench -p runward --bench readiness`.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{Criterion, criterion_group, criterion_main};
use runward::health::endpoints::{self, EndpointOptions, ProbeRequest};
use runward::health::render::{self, Detail};
use runward::health::{CheckSpec, Outcome, ProbeKind, Registry, Schedule, Status, probe_fn};
use std::hint::black_box;
use std::time::Duration;

const CHECKS: usize = 20;

/// Long enough that no result turns stale while the benchmarks run.
const INTERVAL: Duration = Duration::from_secs(3600);

fn fast_check(i: usize) -> CheckSpec {
    let probe = probe_fn(move |_ctx| async move {
        Outcome::pass().with_observed("responseTime", 1 + (i as u64 % 5), Some("ms"))
    });
    CheckSpec::new(format!("dep{i:02}"), probe)
        .kinds([ProbeKind::Readiness])
        .component_type("component")
        .schedule(Schedule::every(INTERVAL))
}

fn hanging_check() -> CheckSpec {
    let probe = probe_fn(|_ctx| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Outcome::pass()
    });
    CheckSpec::new("hanging", probe)
        .kinds([ProbeKind::Readiness])
        .timeout(Duration::from_millis(50))
        .schedule(Schedule::every(INTERVAL))
}

/// A started registry whose every check has a result.
fn registry(runtime: &tokio::runtime::Runtime, with_hanging: bool) -> Registry {
    let fast = if with_hanging { CHECKS - 1 } else { CHECKS };
    let mut builder = Registry::builder().service_id("bench").version("1.0.0");
    for i in 0..fast {
        builder = builder.check(fast_check(i));
    }
    if with_hanging {
        builder = builder.check(hanging_check());
    }
    let registry = builder.build().expect("a valid registry");
    // Started, so that `handle` also pays for its revalidation pass as in a server.
    registry.start_on(runtime.handle());
    runtime.block_on(registry.refresh_all());
    registry
}

fn bench_all_passing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = registry(&runtime, false);
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Pass);

    let options = EndpointOptions::default();
    let anonymous = ProbeRequest {
        path: "/readyz",
        ..Default::default()
    };
    let loopback = ProbeRequest {
        path: "/readyz",
        peer_loopback: true,
        ..Default::default()
    };
    assert_eq!(
        endpoints::handle(&registry, &options, &anonymous).body,
        r#"{"status":"pass"}"#
    );
    assert!(
        endpoints::handle(&registry, &options, &loopback)
            .body
            .contains("dep19")
    );

    let mut group = c.benchmark_group("readiness/20-checks");
    group.bench_function("status", |b| {
        b.iter(|| black_box(&registry).status(black_box(ProbeKind::Readiness)))
    });
    group.bench_function("handle/status-only", |b| {
        b.iter(|| endpoints::handle(black_box(&registry), &options, black_box(&anonymous)))
    });
    group.bench_function("handle/full", |b| {
        b.iter(|| endpoints::handle(black_box(&registry), &options, black_box(&loopback)))
    });
    group.bench_function("evaluate+health_json", |b| {
        b.iter(|| {
            let report = black_box(&registry).evaluate(ProbeKind::Readiness);
            render::health_json(&report, Detail::Full).to_string()
        })
    });
    group.finish();
    registry.stop();
}

fn bench_timed_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = registry(&runtime, true);
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Fail);
    let hanging = registry
        .snapshot()
        .checks
        .iter()
        .map(|c| c.timeouts)
        .sum::<u64>();
    assert_eq!(
        hanging, 1,
        "the hanging check has overrun its deadline once"
    );

    let options = EndpointOptions::default();
    let anonymous = ProbeRequest {
        path: "/readyz",
        ..Default::default()
    };

    let mut group = c.benchmark_group("readiness/20-checks-one-timed-out");
    group.bench_function("status", |b| {
        b.iter(|| black_box(&registry).status(black_box(ProbeKind::Readiness)))
    });
    group.bench_function("handle/status-only", |b| {
        b.iter(|| endpoints::handle(black_box(&registry), &options, black_box(&anonymous)))
    });
    group.finish();
    registry.stop();
}

criterion_group!(benches, bench_all_passing, bench_timed_out);
criterion_main!(benches);
