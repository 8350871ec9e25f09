//! `runward serve`: the standalone probe server with the SIGTERM sequence.

use crate::cli::ServeArgs;
use anyhow::Result;
use runward::config::Config;
use runward::flags::{Flags, LockdownPolicy, LockdownTrigger, attach_lockdown};
use runward::health::server::Server;
use runward::schedule::Scheduler;
use runward::store::Timestamp;
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
    let scheduler = if config.schedules.is_empty() {
        None
    } else {
        Some(start_scheduler(config).await?)
    };
    wait_for_signal().await?;
    let drain = Duration::from_millis(config.server.drain_ms);
    eprintln!(
        "runward: shutting down: readiness fails now; exiting in {} ms",
        drain.as_millis()
    );
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    server.shutdown(drain).await?;
    if let Some(trigger) = trigger {
        trigger.stop();
    }
    eprintln!("runward: stopped");
    Ok(0)
}

/// Ticks the configured schedules every second. Any number of `serve` processes may share the
/// state file: the fire ledger dispatches each due time once.
async fn start_scheduler(config: &Config) -> Result<tokio::task::JoinHandle<()>> {
    let store = Arc::new(config.open_store().await?);
    let scheduler = Scheduler::new(store);
    scheduler.sync(&config.schedules).await?;
    eprintln!("runward: ticking {} schedule(s)", config.schedules.len());
    Ok(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            match scheduler.tick(Timestamp::now()).await {
                Ok(report) => {
                    for run in &report.claimed {
                        eprintln!(
                            "runward: schedule `{}` queued run {} for {}",
                            run.schedule, run.run_id, run.due_at
                        );
                    }
                    for error in &report.errors {
                        eprintln!("runward: schedule `{}`: {}", error.schedule, error.message);
                    }
                }
                Err(err) => eprintln!("runward: scheduler tick failed: {err}"),
            }
        }
    }))
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
