//! An axum service that mounts runward's probe endpoints next to its own routes.
//!
//! Run it with `cargo run -p runward --example axum_service`, then
//! `curl -s localhost:3000/readyz?verbose`. Ctrl-C starts the shutdown sequence: readiness
//! fails at once while in-flight work drains.

use axum::Router;
use axum::routing::get;
use runward::health::endpoints::EndpointOptions;
use runward::health::server::router;
use runward::health::{CheckSpec, Outcome, ProbeKind, Registry, Schedule, probe_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Work the application tracks; the probe borrows the handle instead of opening anything.
    let queue = Arc::new(AtomicU64::new(0));
    let depth = queue.clone();
    let registry = Registry::builder()
        .service_id("axum-example")
        .version("1")
        .check(
            CheckSpec::new(
                "job-queue",
                probe_fn(move |_| {
                    let n = depth.load(Ordering::Relaxed);
                    async move {
                        let outcome = if n > 1000 {
                            Outcome::warn("backlog above 1000")
                        } else {
                            Outcome::pass()
                        };
                        outcome.with_observed("count", n, None)
                    }
                }),
            )
            .kinds([ProbeKind::Readiness, ProbeKind::Startup])
            .schedule(Schedule::every(Duration::from_secs(1))),
        )
        .build()?;
    registry.start();

    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .merge(router(registry.clone(), EndpointOptions::default()));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let shutdown_registry = registry.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown_registry.begin_shutdown();
        // Let load balancers see readiness fail before in-flight work stops.
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown_registry.mark_drained();
    })
    .await?;
    Ok(())
}
