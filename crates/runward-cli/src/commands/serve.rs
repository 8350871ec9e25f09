//! `runward serve`: the probe server with the SIGTERM sequence, the scheduler, the sweeper,
//! the driver of scheduled runs and the admin API.

use super::admin::{self, Drivers};
use crate::cli::ServeArgs;
use crate::output::errln;
use anyhow::Result;
use runward::config::Config;
use runward::flags::{Flags, LockdownPolicy, LockdownTrigger, attach_lockdown};
use runward::health::server::{Server, router};
use runward::runbook::Runbook;
use runward::runbook::engine::{Engine, Resume};
use runward::schedule::Scheduler;
use runward::store::{RunFilter, RunStatus, Store, Timestamp};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) async fn run(config: &Config, args: ServeArgs) -> Result<i32> {
    let registry = config.registry()?;
    for warning in registry.warnings() {
        errln!("warning: {warning}");
    }
    let addr = args.addr.unwrap_or_else(|| config.server.addr.clone());
    let trigger = match config.lockdown.as_ref().and_then(|l| l.policy()) {
        Some(policy) => Some(lockdown_trigger(config, &registry, policy).await?),
        None => None,
    };
    let store: Arc<dyn Store> = Arc::new(config.open_store().await?);
    let engine = config
        .engine_builder(store)?
        .registry(registry.clone())
        .build();
    let drivers = Drivers::new(engine.clone());
    let mut app = router(registry.clone(), config.endpoint_options());
    let token_env = args
        .admin_token_env
        .clone()
        .unwrap_or_else(|| config.server.admin_token_env.clone());
    match std::env::var(&token_env)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(token) => {
            app = app.merge(admin::router(
                drivers.clone(),
                config.base_dir.clone(),
                token.trim().to_owned(),
            ));
            errln!("runward: admin API on /admin/runs (bearer token from ${token_env})");
        }
        None => {
            errln!("runward: admin API off: set ${token_env} to a token to serve /admin/runs")
        }
    }
    let server = Server::bind_router(registry, &addr, app, config.server.limits.clone()).await?;
    errln!(
        "runward: serving health on http://{} (open files limit: {}, at most {} connections)",
        server.local_addr(),
        server
            .open_files_limit()
            .map_or("unlimited".to_owned(), |n| n.to_string()),
        server.max_connections()
    );
    let mut tasks = vec![start_sweeper(engine.clone())];
    if !config.schedules.is_empty() {
        tasks.push(start_scheduler(config).await?);
        tasks.push(start_dispatcher(config, drivers.clone()));
    }
    wait_for_signal().await?;
    let drain = Duration::from_millis(config.server.drain_ms);
    errln!(
        "runward: shutting down: readiness fails now; exiting in {} ms",
        drain.as_millis()
    );
    for task in tasks {
        task.abort();
    }
    server.shutdown(drain).await?;
    if let Some(trigger) = trigger {
        trigger.stop();
    }
    errln!("runward: stopped");
    Ok(0)
}

/// Marks dead runs orphaned and expired approvals timed out, every 5 seconds.
fn start_sweeper(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            match engine.sweep().await {
                Ok(sweep) => {
                    for run in &sweep.orphaned {
                        errln!(
                            "runward: run {} ({}) is orphaned: its driver stopped; resume it with `runward runbook resume {}`",
                            run.id,
                            run.runbook,
                            run.id
                        );
                    }
                    for approval in &sweep.approvals_timed_out {
                        errln!(
                            "runward: approval {} of run {} timed out",
                            approval.id,
                            approval.run_id
                        );
                    }
                }
                Err(err) => errln!("runward: sweep failed: {err}"),
            }
        }
    })
}

/// Drives the queued runs the scheduler created, every second: each in its own task, one task
/// per run. Another process driving the same run holds its lease; this one then leaves it.
fn start_dispatcher(config: &Config, drivers: Drivers) -> tokio::task::JoinHandle<()> {
    let files: HashMap<String, PathBuf> = config
        .schedules
        .iter()
        .map(|s| (s.name().to_owned(), PathBuf::from(s.runbook())))
        .collect();
    let engine = drivers.engine().clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let queued = match engine.list(&RunFilter::statuses([RunStatus::Queued])).await {
                Ok(runs) => runs,
                Err(err) => {
                    errln!("runward: cannot list queued runs: {err}");
                    continue;
                }
            };
            for run in queued {
                let Some(fire) = &run.fire else { continue };
                if drivers.is_driving(&run.id) {
                    continue;
                }
                let Some(file) = files.get(&fire.schedule) else {
                    continue;
                };
                match Runbook::load(file) {
                    Ok(runbook) => {
                        drivers.spawn(run.id.clone(), runbook, Resume::default());
                    }
                    Err(err) => errln!(
                        "runward: schedule `{}`: cannot load its runbook for run {}: {err}",
                        fire.schedule,
                        run.id
                    ),
                }
            }
        }
    })
}

/// Ticks the configured schedules every second. Any number of `serve` processes may share the
/// state file: the fire ledger dispatches each due time once.
async fn start_scheduler(config: &Config) -> Result<tokio::task::JoinHandle<()>> {
    let store = Arc::new(config.open_store().await?);
    let scheduler = Scheduler::new(store);
    scheduler.sync(&config.schedules).await?;
    errln!("runward: ticking {} schedule(s)", config.schedules.len());
    Ok(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            match scheduler.tick(Timestamp::now()).await {
                Ok(report) => {
                    for run in &report.claimed {
                        errln!(
                            "runward: schedule `{}` queued run {} for {}",
                            run.schedule,
                            run.run_id,
                            run.due_at
                        );
                    }
                    for error in &report.errors {
                        errln!("runward: schedule `{}`: {}", error.schedule, error.message);
                    }
                }
                Err(err) => errln!("runward: scheduler tick failed: {err}"),
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
        errln!(
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
