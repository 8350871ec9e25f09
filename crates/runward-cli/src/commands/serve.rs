//! `runward serve`: the standalone probe server with the SIGTERM sequence.

use crate::cli::ServeArgs;
use anyhow::Result;
use runward::config::Config;
use runward::flags::{Flags, LockdownPolicy, LockdownTrigger, attach_lockdown};
use runward::health::server::Server;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn run(config: &Config, args: ServeArgs) -> Result<i32> {
    let registry = config.registry()?;
    for warning in registry.warnings() {
        eprintln!("warning: {warning}");
    }
    let addr = args.addr.unwrap_or_else(|| config.server.addr.clone());
    let trigger = match config.lockdown.as_ref().and_then(|l| l.policy()) {
        Some(policy) => Some(lockdown_trigger(config, &registry, policy).await?),
        None => None,
    };
    let server = Server::bind(registry, &addr, config.endpoint_options()).await?;
    eprintln!("runward: serving health on http://{}", server.local_addr());
    wait_for_signal().await?;
    let drain = Duration::from_millis(config.server.drain_ms);
    eprintln!(
        "runward: shutting down: readiness fails now; exiting in {} ms",
        drain.as_millis()
    );
    server.shutdown(drain).await?;
    if let Some(trigger) = trigger {
        trigger.stop();
    }
    eprintln!("runward: stopped");
    Ok(0)
}

/// Starts lockdown automatically when readiness keeps failing (`[lockdown]`). The unlock code
/// is never logged: an operator gets a fresh one with `runward unlock --rotate`.
async fn lockdown_trigger(
    config: &Config,
    registry: &runward::health::Registry,
    policy: LockdownPolicy,
) -> Result<LockdownTrigger> {
    let store = config.open_store().await?;
    let flags = Flags::new(Arc::new(store));
    let trigger = attach_lockdown(registry, flags, policy)?;
    trigger.on_lockdown(|event| {
        eprintln!(
            "runward: lockdown started after {} failed readiness evaluations (failing: {}); \
             get an unlock code with `runward unlock --rotate`",
            event.failures,
            event.failing.join(", ")
        );
    });
    Ok(trigger)
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
