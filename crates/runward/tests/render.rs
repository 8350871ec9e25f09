//! Snapshots of every rendered format: health+json, the table, verbose text, doctor JSON and
//! Prometheus text, all from one registry state.

use runward::health::doctor::{doctor, doctor_text};
use runward::health::endpoints::{EndpointOptions, ProbeRequest, handle};
use runward::health::render::{self, Detail};
use runward::health::{
    CheckSpec, DependencyState, OutageClass, Outcome, ProbeKind, Registry, fixer_fn, probe_fn,
};

fn registry() -> Registry {
    Registry::builder()
        .service_id("tickets")
        .version("1")
        .release_id("2026.11.0")
        .description("ticketing API")
        .check(
            CheckSpec::new(
                "db",
                probe_fn(|_| async {
                    Outcome::pass().with_observed("responseTime", 1.5, Some("ms"))
                }),
            )
            .kinds([ProbeKind::Readiness, ProbeKind::Startup])
            .component_type("datastore")
            .affected_endpoints(["/api/tickets"]),
        )
        .check(
            CheckSpec::new(
                "memory-kernel",
                probe_fn(|_| async {
                    Outcome::outage(
                        OutageClass::VersionMismatch,
                        "contract_version 2.0.0 does not match ^1",
                    )
                    .with_state(DependencyState::VersionMismatch)
                }),
            )
            .critical(false)
            .remediation("pin MemoryKernel to a 1.x release"),
        )
        .check(
            CheckSpec::new(
                "uploads",
                probe_fn(|_| async { Outcome::fail("directory uploads/ is missing") }),
            )
            .kinds([ProbeKind::Liveness])
            .component_type("system")
            .fixer(fixer_fn("create directory uploads/", || {
                Ok("created uploads/".into())
            })),
        )
        .build()
        .unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    s.add_filter(r"\d+(\.\d+)? ms", "[N] ms");
    s.add_filter(
        r"(runward_check_duration_seconds\{[^}]*\}) .*",
        "$1 [SECONDS]",
    );
    s.add_filter(
        r"(runward_check_last_success_timestamp_seconds\{[^}]*\}) [1-9].*",
        "$1 [UNIX]",
    );
    s
}

#[tokio::test]
async fn health_json_full_and_status_only() {
    let registry = registry();
    registry.refresh_all().await;
    registry.set_value("jobs_queued", 3.0);
    let report = registry.evaluate(ProbeKind::Readiness);
    settings().bind(|| {
        insta::assert_json_snapshot!(
            "health_json_full",
            render::health_json(&report, Detail::Full)
        );
        insta::assert_json_snapshot!(
            "health_json_status_only",
            render::health_json(&report, Detail::StatusOnly)
        );
    });
}

#[tokio::test]
async fn table_and_verbose() {
    let registry = registry();
    registry.refresh_all().await;
    let all = registry.evaluate_all();
    let ready = registry.evaluate(ProbeKind::Readiness);
    settings().bind(|| {
        insta::assert_snapshot!("table", render::table(&all));
        insta::assert_snapshot!("verbose_full", render::verbose(&ready, Detail::Full));
        insta::assert_snapshot!(
            "verbose_anonymous",
            render::verbose(&ready, Detail::StatusOnly)
        );
    });
}

#[tokio::test]
async fn doctor_json_and_text() {
    let registry = registry();
    let report = doctor(&registry, false).await;
    assert_eq!(report.exit_code, 1);
    settings().bind(|| {
        insta::assert_json_snapshot!("doctor_json", report);
        insta::assert_snapshot!("doctor_text", doctor_text(&report));
    });
}

#[tokio::test]
async fn prometheus_text() {
    let registry = registry();
    registry.refresh_all().await;
    let options = EndpointOptions::default();
    handle(
        &registry,
        &options,
        &ProbeRequest {
            path: "/readyz",
            ..Default::default()
        },
    );
    let text = render::prometheus(&registry);
    settings().bind(|| insta::assert_snapshot!("prometheus", text));

    // The per-check series name every check; a switch leaves them out.
    let metrics = |options: &EndpointOptions| {
        handle(
            &registry,
            options,
            &ProbeRequest {
                path: "/metrics",
                ..Default::default()
            },
        )
        .body
    };
    assert!(metrics(&options).contains("runward_check_up{check=\"db\"}"));
    let without = metrics(&options.overridden(None, None, Some(false)));
    assert!(!without.contains("check=\""), "{without}");
    assert!(
        without.contains("runward_probe_up{probe=\"readiness\"}"),
        "{without}"
    );
}

#[tokio::test]
async fn endpoints_answer_from_the_snapshot() {
    let registry = registry();
    let options = EndpointOptions::default();
    let get = |path: &'static str, loopback: bool| {
        handle(
            &registry,
            &options,
            &ProbeRequest {
                path,
                peer_loopback: loopback,
                ..Default::default()
            },
        )
    };
    // Before any run: readiness and startup fail closed, liveness does not.
    assert_eq!(get("/readyz", false).status, 503);
    assert_eq!(get("/startupz", false).status, 503);
    assert_eq!(get("/livez", false).body, r#"{"status":"pass"}"#);
    registry.refresh_all().await;
    let ready = get("/readyz", false);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, r#"{"status":"warn"}"#)
    );
    assert_eq!(ready.content_type, "application/health+json");
    assert!(ready.cache_control.starts_with("max-age="));
    let detailed = get("/readyz", true);
    assert!(
        detailed.body.contains("memory-kernel:status"),
        "{}",
        detailed.body
    );
    assert_eq!(get("/livez", false).status, 503);
    assert_eq!(get("/readyz/db", false).status, 200);
    assert_eq!(get("/readyz/memory-kernel", false).status, 503);
    assert_eq!(get("/readyz/nope", false).status, 404);
    assert_eq!(get("/nope", false).status, 404);
    let token = EndpointOptions::default().overridden(
        Some(runward::config::DetailPolicy::Token),
        Some("t0k".into()),
        None,
    );
    let with = handle(
        &registry,
        &token,
        &ProbeRequest {
            path: "/healthz",
            authorization: Some("Bearer t0k"),
            ..Default::default()
        },
    );
    assert!(with.body.contains("checks"));
    let without = handle(
        &registry,
        &token,
        &ProbeRequest {
            path: "/healthz",
            peer_loopback: true,
            ..Default::default()
        },
    );
    assert_eq!(without.body, r#"{"status":"fail"}"#);
}
