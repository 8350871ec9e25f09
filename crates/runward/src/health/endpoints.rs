//! The probe endpoints, independent of any HTTP framework.
//!
//! [`answer`] maps one request (path, query, bearer token, whether the caller is on loopback)
//! to a status code, headers and body, after bringing stale on-demand checks up to date; the
//! axum router, the Python ASGI app and the Node request handler all call it, so every
//! frontend answers alike. [`handle`] is its synchronous form for hosts that cannot wait: it
//! answers from the snapshot as it is and revalidates on-demand checks in the background.

use super::render::{self, Detail};
use super::{Endpoint, ProbeKind, Registry, Report, Status};
use crate::config::DetailPolicy;
use std::time::Duration;

/// Who may see details, the bearer token that unlocks them, and what `/metrics` shows.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// The detail policy.
    pub details: DetailPolicy,
    /// The bearer token; `None` disables token access.
    pub token: Option<String>,
    /// Whether `/metrics` carries the per-check series, labelled with check names (default
    /// true: scrapers need them). Without them it has the probe series only.
    pub check_metrics: bool,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            details: DetailPolicy::default(),
            token: None,
            check_metrics: true,
        }
    }
}

impl EndpointOptions {
    /// These options with the given overrides; each `None` keeps the current value.
    pub fn overridden(
        &self,
        details: Option<DetailPolicy>,
        token: Option<String>,
        check_metrics: Option<bool>,
    ) -> EndpointOptions {
        EndpointOptions {
            details: details.unwrap_or(self.details),
            token: token.or_else(|| self.token.clone()),
            check_metrics: check_metrics.unwrap_or(self.check_metrics),
        }
    }
}

/// One probe request, as any HTTP framework sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeRequest<'a> {
    /// The path, e.g. `/readyz` or `/readyz/db`.
    pub path: &'a str,
    /// The query string without `?`, e.g. `verbose`.
    pub query: Option<&'a str>,
    /// The `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// Whether the caller connected from a loopback address.
    pub peer_loopback: bool,
}

/// The answer to a [`ProbeRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The `Cache-Control` value.
    pub cache_control: String,
    /// The body.
    pub body: String,
}

impl ProbeResponse {
    /// The response headers every frontend sends: `content-type` and `cache-control`.
    pub fn headers(&self) -> [(&'static str, &str); 2] {
        [
            ("content-type", self.content_type),
            ("cache-control", &self.cache_control),
        ]
    }
}

/// The paths [`handle`] answers.
pub const PATHS: &[&str] = &[
    "/livez",
    "/readyz",
    "/startupz",
    "/healthz",
    "/readyz/{check}",
    "/metrics",
];

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn detail_for(options: &EndpointOptions, req: &ProbeRequest<'_>) -> Detail {
    let token_ok = || {
        let Some(expected) = options.token.as_deref() else {
            return false;
        };
        req.authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), expected.as_bytes()))
    };
    let allowed = match options.details {
        DetailPolicy::Public => true,
        DetailPolicy::Loopback => req.peer_loopback || token_ok(),
        DetailPolicy::Token => token_ok(),
        DetailPolicy::None => false,
    };
    if allowed {
        Detail::Full
    } else {
        Detail::StatusOnly
    }
}

fn wants_verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    })
}

fn response(
    status: Status,
    content_type: &'static str,
    max_age: Duration,
    body: String,
) -> ProbeResponse {
    ProbeResponse {
        status: status.http_code(),
        content_type,
        cache_control: format!("max-age={}", max_age.as_secs()),
        body,
    }
}

/// Answers one request. On-demand checks of the probe kind asked whose result is missing or
/// older than their TTL run first, sharing one run among concurrent requests, and the request
/// waits for them, at most each check's timeout
/// ([`Registry::await_on_demand`]); periodic checks are read from the snapshot without I/O.
/// So a probe reports an on-demand check's result of at most its TTL ago, whatever the
/// probe period.
pub async fn answer(
    registry: &Registry,
    options: &EndpointOptions,
    req: &ProbeRequest<'_>,
) -> ProbeResponse {
    match Route::of(req.path) {
        Route::Probe(_, kind) => registry.await_on_demand(kind).await,
        Route::Check(_) => registry.await_on_demand(Some(ProbeKind::Readiness)).await,
        Route::Metrics | Route::NotFound => {}
    }
    handle(registry, options, req)
}

/// What a request path asks for; trailing slashes are ignored.
enum Route<'a> {
    /// `/livez`, `/readyz`, `/startupz` (one kind) or `/healthz` (every check).
    Probe(Endpoint, Option<ProbeKind>),
    /// `/readyz/<check>`.
    Check(&'a str),
    Metrics,
    NotFound,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Route<'a> {
        match path.trim_end_matches('/') {
            "/livez" => Route::Probe(Endpoint::Livez, Some(ProbeKind::Liveness)),
            "/readyz" => Route::Probe(Endpoint::Readyz, Some(ProbeKind::Readiness)),
            "/startupz" => Route::Probe(Endpoint::Startupz, Some(ProbeKind::Startup)),
            "/healthz" => Route::Probe(Endpoint::Healthz, None),
            "/metrics" => Route::Metrics,
            other => match other.strip_prefix("/readyz/") {
                Some(check) if !check.is_empty() => Route::Check(check),
                _ => Route::NotFound,
            },
        }
    }
}

/// Answers one request from the snapshot as it is, without waiting: on-demand checks whose
/// TTL passed are revalidated in the background, so a probe may see them stale or unknown
/// (prefer [`answer`] where the host can wait).
pub fn handle(
    registry: &Registry,
    options: &EndpointOptions,
    req: &ProbeRequest<'_>,
) -> ProbeResponse {
    let (endpoint, kind) = match Route::of(req.path) {
        Route::Probe(endpoint, kind) => (endpoint, kind),
        Route::Metrics => {
            registry.count_request(Endpoint::Metrics, 200);
            return ProbeResponse {
                status: 200,
                content_type: render::PROMETHEUS_TEXT,
                cache_control: "no-store".into(),
                body: render::prometheus_with(registry, options.check_metrics),
            };
        }
        Route::Check(check) => return check_response(registry, options, req, check),
        Route::NotFound => {
            return ProbeResponse {
                status: 404,
                content_type: "text/plain; charset=utf-8",
                cache_control: "no-store".into(),
                body: format!("not found; runward answers {}\n", PATHS.join(", ")),
            };
        }
    };
    registry.revalidate(kind);
    let detail = detail_for(options, req);
    let verbose = wants_verbose(req.query);
    let answer = match kind {
        Some(kind) if detail == Detail::StatusOnly && !verbose => {
            // The hot path: no report is built.
            let (status, fresh_for) = registry.status_and_fresh_for(kind);
            response(
                status,
                render::HEALTH_JSON,
                fresh_for,
                format!(r#"{{"status":"{status}"}}"#),
            )
        }
        _ => {
            let target = match kind {
                Some(ProbeKind::Startup) => 0,
                Some(ProbeKind::Readiness) => 1,
                Some(ProbeKind::Liveness) => 2,
                None => 3,
            };
            let slot = target * 4 + usize::from(detail == Detail::Full) * 2 + usize::from(verbose);
            registry.cached_answer(slot, || {
                let report = match kind {
                    Some(kind) => registry.evaluate(kind),
                    None => registry.evaluate_all(),
                };
                report_response(&report, detail, verbose)
            })
        }
    };
    registry.count_request(endpoint, answer.status);
    answer
}

/// A report as `?verbose` text or health+json.
fn report_response(report: &Report, detail: Detail, verbose: bool) -> ProbeResponse {
    if verbose {
        let body = render::verbose(report, detail);
        response(
            report.status,
            "text/plain; charset=utf-8",
            report.max_age,
            body,
        )
    } else {
        let body = render::health_json(report, detail).to_string();
        response(report.status, render::HEALTH_JSON, report.max_age, body)
    }
}

fn check_response(
    registry: &Registry,
    options: &EndpointOptions,
    req: &ProbeRequest<'_>,
    check: &str,
) -> ProbeResponse {
    registry.revalidate(Some(ProbeKind::Readiness));
    let detail = detail_for(options, req);
    let answer = match registry.check_report(check) {
        Err(err) => {
            // The error lists the check names: only for callers allowed details.
            let output = match detail {
                Detail::Full => err.message(),
                Detail::StatusOnly => "no such check",
            };
            ProbeResponse {
                status: 404,
                content_type: render::HEALTH_JSON,
                cache_control: "no-store".into(),
                body: serde_json::json!({ "status": "fail", "output": output }).to_string(),
            }
        }
        Ok(report) => report_response(&report, detail, wants_verbose(req.query)),
    };
    registry.count_request(Endpoint::ReadyzCheck, answer.status);
    answer
}
