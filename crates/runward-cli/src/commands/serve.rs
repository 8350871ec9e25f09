//! `runward serve`: the standalone probe server with the SIGTERM sequence.

use crate::cli::ServeArgs;
use anyhow::Result;
use runward::config::Config;
use runward::health::server::Server;
use std::time::Duration;

pub(crate) async fn run(config: &Config, args: ServeArgs) -> Result<i32> {
    let registry = config.registry()?;
    for warning in registry.warnings() {
        eprintln!("warning: {warning}");
    }
    let addr = args.addr.unwrap_or_else(|| config.server.addr.clone());
    let server = Server::bind(registry, &addr, config.endpoint_options()).await?;
    eprintln!("runward: serving health on http://{}", server.local_addr());
    wait_for_signal().await?;
    let drain = Duration::from_millis(config.server.drain_ms);
    eprintln!(
        "runward: shutting down: readiness fails now; exiting in {} ms",
        drain.as_millis()
    );
    server.shutdown(drain).await?;
    eprintln!("runward: stopped");
    Ok(0)
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
