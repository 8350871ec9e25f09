//! Behaviour of the registry: deadlines, single-flight, thresholds, staleness, criticality,
//! lifecycle.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn passing() -> Arc<dyn Probe> {
    probe_fn(|_| async { Outcome::pass() })
}

fn failing(msg: &'static str) -> Arc<dyn Probe> {
    probe_fn(move |_| async move { Outcome::fail(msg) })
}

fn hanging() -> Arc<dyn Probe> {
    probe_fn(|_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Outcome::pass()
    })
}

#[tokio::test]
async fn unknown_before_first_result_and_fail_closed() {
    let registry = Registry::builder()
        .check(CheckSpec::new("db", passing()).kinds([
            ProbeKind::Readiness,
            ProbeKind::Startup,
            ProbeKind::Liveness,
        ]))
        .build()
        .unwrap();
    assert_eq!(registry.check_status("db").unwrap(), Status::Unknown);
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Fail);
    assert_eq!(registry.status(ProbeKind::Startup), Status::Fail);
    // Liveness does not fail closed: no result yet must not restart the process.
    assert_eq!(registry.status(ProbeKind::Liveness), Status::Pass);
    registry.refresh_all().await;
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Pass);
}

#[tokio::test]
async fn an_overrun_is_a_timeout_failure_not_a_hang() {
    let registry = Registry::builder()
        .check(CheckSpec::new("slow", hanging()).timeout(Duration::from_millis(50)))
        .build()
        .unwrap();
    let started = Instant::now();
    let state = registry.refresh("slow").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(state.status, Status::Fail);
    let outcome = state.outcome.as_ref().unwrap();
    assert_eq!(outcome.outage, Some(OutageClass::Timeout));
    assert_eq!(state.timeouts, 1);
}

#[tokio::test]
async fn concurrent_refreshes_share_one_run() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let probe = probe_fn(move |_| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Outcome::pass()
        }
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("shared", probe))
        .build()
        .unwrap();
    let calls = (0..10).map(|_| registry.refresh("shared"));
    let states = futures::future::join_all(calls).await;
    assert!(
        states
            .iter()
            .all(|s| s.as_ref().unwrap().status == Status::Pass)
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    registry.refresh("shared").await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panicking_probe_fails_with_its_message_and_the_registry_keeps_working() {
    let registry = Registry::builder()
        .check(CheckSpec::new(
            "boom",
            probe_fn(|_| async { panic!("kaboom") }),
        ))
        .check(CheckSpec::new("ok", passing()))
        .build()
        .unwrap();
    registry.refresh_all().await;
    let state = registry.refresh("boom").await.unwrap();
    assert_eq!(state.status, Status::Fail);
    assert!(
        state
            .outcome
            .as_ref()
            .unwrap()
            .output
            .as_deref()
            .unwrap()
            .contains("kaboom")
    );
    assert_eq!(registry.check_status("ok").unwrap(), Status::Pass);
}

#[tokio::test]
async fn optional_failures_degrade_to_warn() {
    let registry = Registry::builder()
        .check(CheckSpec::new("core", passing()))
        .check(CheckSpec::new("enrichment", failing("offline")).critical(false))
        .build()
        .unwrap();
    registry.refresh_all().await;
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Warn);
    assert_eq!(registry.status(ProbeKind::Readiness).http_code(), 200);
    let critical = Registry::builder()
        .check(CheckSpec::new("core", failing("down")))
        .build()
        .unwrap();
    critical.refresh_all().await;
    assert_eq!(critical.status(ProbeKind::Readiness), Status::Fail);
}

#[tokio::test]
async fn thresholds_damp_flapping() {
    let results = Arc::new(std::sync::Mutex::new(vec![
        true, true, false, false, false, true, true,
    ]));
    let feed = results.clone();
    let probe = probe_fn(move |_| {
        let next = feed.lock().unwrap().remove(0);
        async move {
            if next {
                Outcome::pass()
            } else {
                Outcome::fail("down")
            }
        }
    });
    let transitions = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = transitions.clone();
    let registry = Registry::builder()
        .check(
            CheckSpec::new("flappy", probe)
                .failure_threshold(3)
                .success_threshold(2),
        )
        .build()
        .unwrap();
    registry.on_transition(move |t| {
        seen.lock()
            .unwrap()
            .push((t.from, t.to, t.consecutive_failures))
    });
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(registry.refresh("flappy").await.unwrap().status);
    }
    use Status::*;
    assert_eq!(statuses, vec![Pass, Pass, Pass, Pass, Fail, Fail, Pass]);
    let transitions = transitions.lock().unwrap().clone();
    assert_eq!(
        transitions,
        vec![(Unknown, Pass, 0), (Pass, Fail, 3), (Fail, Pass, 0)]
    );
}

#[tokio::test]
async fn a_stale_result_is_never_reported_as_pass() {
    let registry = Registry::builder()
        .check(CheckSpec::new("db", passing()).max_age(Duration::from_millis(50)))
        .build()
        .unwrap();
    registry.refresh_all().await;
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Pass);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(registry.check_status("db").unwrap(), Status::Unknown);
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Fail);
    let report = registry.evaluate(ProbeKind::Readiness);
    assert!(report.checks[0].stale);
}

#[tokio::test]
async fn startup_latches_after_first_pass() {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = up.clone();
    let probe = probe_fn(move |_| {
        let ok = flag.load(Ordering::SeqCst);
        async move {
            if ok {
                Outcome::pass()
            } else {
                Outcome::fail("gone")
            }
        }
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("boot", probe).kinds([ProbeKind::Startup]))
        .build()
        .unwrap();
    registry.refresh_all().await;
    assert_eq!(registry.status(ProbeKind::Startup), Status::Pass);
    up.store(false, Ordering::SeqCst);
    registry.refresh_all().await;
    assert_eq!(registry.status(ProbeKind::Startup), Status::Pass);
}

#[tokio::test]
async fn shutdown_fails_readiness_at_once_and_liveness_holds() {
    let registry = Registry::builder()
        .check(CheckSpec::new("db", passing()).kinds([ProbeKind::Readiness, ProbeKind::Liveness]))
        .build()
        .unwrap();
    registry.refresh_all().await;
    registry.begin_shutdown();
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Fail);
    assert_eq!(registry.status(ProbeKind::Liveness), Status::Pass);
    assert!(
        registry
            .evaluate(ProbeKind::Readiness)
            .notes
            .iter()
            .any(|n| n.contains("shutting down"))
    );
}

#[tokio::test]
async fn gates_close_and_open_readiness() {
    let registry = Registry::builder()
        .check(CheckSpec::new("db", passing()))
        .build()
        .unwrap();
    registry.refresh_all().await;
    registry.close_gate("maintenance", "restarting workers");
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Fail);
    registry.open_gate("maintenance");
    assert_eq!(registry.status(ProbeKind::Readiness), Status::Pass);
}

#[tokio::test]
async fn a_missing_heartbeat_fails_liveness() {
    let registry = Registry::builder()
        .heartbeat_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    registry.heartbeat();
    assert_eq!(registry.status(ProbeKind::Liveness), Status::Pass);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(registry.status(ProbeKind::Liveness), Status::Fail);
    registry.heartbeat();
    assert_eq!(registry.status(ProbeKind::Liveness), Status::Pass);
}

#[tokio::test]
async fn a_dependency_check_on_liveness_is_warned_about() {
    let registry = Registry::builder()
        .check(CheckSpec::new("api", passing()).kinds([ProbeKind::Liveness]))
        .build()
        .unwrap();
    assert_eq!(registry.warnings().len(), 1);
    assert!(registry.warnings()[0].contains("`api`"));
    assert!(registry.evaluate(ProbeKind::Liveness).notes[0].contains("move it to readiness"));
}

#[tokio::test]
async fn periodic_checks_run_in_the_background_and_recover() {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let probe = probe_fn(move |_| {
        let ok = flag.load(Ordering::SeqCst);
        async move {
            if ok {
                Outcome::pass()
            } else {
                Outcome::fail("not yet")
            }
        }
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("dep", probe).schedule(Schedule::every(Duration::from_millis(20))))
        .build()
        .unwrap();
    registry.start();
    wait_for(|| registry.check_status("dep").unwrap() == Status::Fail).await;
    up.store(true, Ordering::SeqCst);
    wait_for(|| registry.status(ProbeKind::Readiness) == Status::Pass).await;
    registry.stop();
}

#[tokio::test]
async fn on_demand_checks_revalidate_in_the_background() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let probe = probe_fn(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Outcome::pass() }
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("lazy", probe).schedule(Schedule::OnDemand {
            ttl: Duration::from_secs(60),
        }))
        .build()
        .unwrap();
    registry.start();
    registry.revalidate(Some(ProbeKind::Readiness));
    wait_for(|| registry.status(ProbeKind::Readiness) == Status::Pass).await;
    registry.revalidate(Some(ProbeKind::Readiness));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a fresh result is reused within its TTL"
    );
}

#[tokio::test]
async fn a_hung_blocking_probe_is_abandoned_without_piling_up() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let probe = blocking_probe_fn(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(400));
        Outcome::pass()
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("sync", probe).timeout(Duration::from_millis(50)))
        .build()
        .unwrap();
    let first = registry.refresh("sync").await.unwrap();
    assert_eq!(
        first.outcome.as_ref().unwrap().outage,
        Some(OutageClass::Timeout)
    );
    let second = registry.refresh("sync").await.unwrap();
    assert!(
        second
            .outcome
            .as_ref()
            .unwrap()
            .output
            .as_deref()
            .unwrap()
            .contains("still in progress")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn duplicate_and_invalid_names_are_refused() {
    let err = Registry::builder()
        .check(CheckSpec::new("a", passing()))
        .check(CheckSpec::new("a", passing()))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
    assert!(
        Registry::builder()
            .check(CheckSpec::new("a b", passing()))
            .build()
            .is_err()
    );
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn readyz() -> endpoints::ProbeRequest<'static> {
    endpoints::ProbeRequest {
        path: "/readyz",
        ..Default::default()
    }
}

/// An on-demand readiness check whose dependency is up while `up` holds, counting its runs.
fn on_demand(up: Arc<AtomicBool>, runs: Arc<AtomicUsize>, ttl_ms: u64) -> CheckSpec {
    let probe = probe_fn(move |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        let up = up.load(Ordering::SeqCst);
        async move {
            if up {
                Outcome::pass()
            } else {
                Outcome::fail("connection refused")
            }
        }
    });
    CheckSpec::new("lazy", probe)
        .kinds([ProbeKind::Readiness])
        .timeout(Duration::from_millis(200))
        .schedule(Schedule::OnDemand {
            ttl: Duration::from_millis(ttl_ms),
        })
}

#[tokio::test]
async fn on_demand_checks_pass_at_any_probe_period_and_report_a_failure_at_the_next_probe() {
    // TTL 100 ms and a default max age of 400 ms; probes come faster than the TTL, between
    // the TTL and the max age, and far beyond both (as 1 s, 5 s, 10 s and 60 s do for a TTL
    // of 500 ms).
    let options = endpoints::EndpointOptions::default();
    for period_ms in [50u64, 250, 600, 1_200] {
        let up = Arc::new(AtomicBool::new(true));
        let runs = Arc::new(AtomicUsize::new(0));
        let registry = Registry::builder()
            .check(on_demand(up.clone(), runs.clone(), 100))
            .build()
            .unwrap();
        registry.start();
        for probe in 0..3 {
            let answer = endpoints::answer(&registry, &options, &readyz()).await;
            assert_eq!(answer.status, 200, "period {period_ms} ms, probe {probe}");
            tokio::time::sleep(Duration::from_millis(period_ms)).await;
        }
        up.store(false, Ordering::SeqCst);
        if period_ms < 100 {
            // Within the TTL the last result stands; the first probe after it reports.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answer = endpoints::answer(&registry, &options, &readyz()).await;
        assert_eq!(
            answer.status, 503,
            "period {period_ms} ms: failure reported"
        );
    }
}

#[tokio::test]
async fn concurrent_requests_share_one_on_demand_run_and_wait_no_longer_than_its_timeout() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let probe = probe_fn(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Outcome::pass()
        }
    });
    let registry = Registry::builder()
        .check(
            CheckSpec::new("hung", probe)
                .timeout(Duration::from_millis(300))
                .schedule(Schedule::OnDemand {
                    ttl: Duration::from_secs(60),
                }),
        )
        .build()
        .unwrap();
    registry.start();
    let options = endpoints::EndpointOptions::default();
    let request = readyz();
    let started = Instant::now();
    let answers = futures::future::join_all(
        (0..20).map(|_| endpoints::answer(&registry, &options, &request)),
    )
    .await;
    let waited = started.elapsed();
    assert!(answers.iter().all(|a| a.status == 503));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for 20 requests");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_500),
        "waited {waited:?} for a check with a 300 ms timeout"
    );
}

#[tokio::test]
async fn periodic_checks_are_never_run_on_the_request_path() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let probe = probe_fn(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Outcome::pass() }
    });
    let registry = Registry::builder()
        .check(CheckSpec::new("bg", probe).schedule(Schedule::every(Duration::from_secs(3600))))
        .build()
        .unwrap();
    let options = endpoints::EndpointOptions::default();
    // Not started: no result yet, and the request does not run the check itself.
    let answer = endpoints::answer(&registry, &options, &readyz()).await;
    assert_eq!(answer.status, 503);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_reused_detail_answer_follows_results_gates_values_and_staleness_at_once() {
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let probe = probe_fn(move |_| {
        let up = flag.load(Ordering::SeqCst);
        async move {
            if up {
                Outcome::pass()
            } else {
                Outcome::fail("down")
            }
        }
    });
    let registry = Registry::builder()
        .check(
            CheckSpec::new("db", probe)
                .schedule(Schedule::every(Duration::from_secs(3600)))
                .max_age(Duration::from_millis(300)),
        )
        .build()
        .unwrap();
    registry.refresh_all().await;
    let options = endpoints::EndpointOptions {
        details: crate::config::DetailPolicy::Public,
        ..Default::default()
    };
    let answer = || endpoints::handle(&registry, &options, &readyz());
    let first = answer();
    assert_eq!(first.status, 200);
    assert_eq!(answer(), first, "nothing changed: the same answer");

    up.store(false, Ordering::SeqCst);
    registry.refresh_all().await;
    assert_eq!(answer().status, 503, "a new result shows at once");
    up.store(true, Ordering::SeqCst);
    registry.refresh_all().await;
    assert_eq!(answer().status, 200);

    registry.close_gate("maintenance", "planned");
    let gated = answer();
    assert_eq!(gated.status, 503, "a closed gate shows at once");
    assert!(gated.body.contains("maintenance"), "{}", gated.body);
    registry.open_gate("maintenance");
    assert_eq!(answer().status, 200);

    registry.set_value("queue_depth", 7.0);
    assert!(
        answer().body.contains("queue_depth"),
        "a pushed value shows at once"
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        answer().status,
        503,
        "a result older than its max age turns unknown"
    );
}

#[tokio::test]
async fn an_answer_is_rendered_once_until_something_it_shows_changes() {
    let registry = Registry::builder()
        .check(CheckSpec::new("db", passing()).schedule(Schedule::every(Duration::from_secs(3600))))
        .build()
        .unwrap();
    registry.refresh_all().await;
    let renders = AtomicUsize::new(0);
    let answer = || {
        registry.cached_answer(0, || {
            renders.fetch_add(1, Ordering::SeqCst);
            endpoints::ProbeResponse {
                status: 200,
                content_type: "text/plain",
                cache_control: "no-store".into(),
                body: String::new(),
            }
        })
    };
    answer();
    answer();
    assert_eq!(
        renders.load(Ordering::SeqCst),
        1,
        "reused while nothing changed"
    );
    registry.close_gate("maintenance", "planned");
    answer();
    assert_eq!(renders.load(Ordering::SeqCst), 2, "a gate renders it again");
    registry.set_value("queue_depth", 1.0);
    answer();
    assert_eq!(
        renders.load(Ordering::SeqCst),
        3,
        "a pushed value renders it again"
    );
    registry.refresh_all().await;
    answer();
    assert_eq!(
        renders.load(Ordering::SeqCst),
        4,
        "a new result renders it again"
    );
}
