//! The lease keeper: while a process drives a run, it renews the run's lease and the flags
//! the run owns, and watches for operator cancel requests.

use super::super::exec::Cancel;
use crate::ErrorKind;
use crate::store::{RunId, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The event kind an operator's cancel request is recorded as.
pub(crate) const CANCEL_REQUESTED: &str = "cancel_requested";

/// Signals from the keeper to the driver.
#[derive(Clone, Default)]
pub(crate) struct Signals {
    /// The lease was lost: stop at once and write nothing more.
    pub lost: Cancel,
    /// An operator asked to cancel the run: run its cancel path.
    pub cancel_requested: Cancel,
}

/// Renews the lease every `renew_every` and polls for cancel requests every `poll_every`
/// until dropped or stopped.
pub(crate) struct LeaseKeeper {
    pub signals: Signals,
    stop: Cancel,
    task: Option<JoinHandle<()>>,
}

pub(crate) struct KeeperConfig {
    /// The last event the driver has already read; cancel requests after it are watched.
    pub after_seq: u64,
    pub owner: String,
    pub epoch: u64,
    pub ttl: Duration,
    pub renew_every: Duration,
    pub poll_every: Duration,
    /// The TTL of each flag the run may hold, by rendered name; the driver fills it in.
    pub flag_ttls: Arc<std::sync::Mutex<BTreeMap<String, Duration>>>,
}

impl LeaseKeeper {
    pub(crate) fn start(store: Arc<dyn Store>, run: RunId, config: KeeperConfig) -> Self {
        let signals = Signals::default();
        let stop = Cancel::new();
        let task = tokio::spawn(keep(store, run, config, signals.clone(), stop.clone()));
        LeaseKeeper {
            signals,
            stop,
            task: Some(task),
        }
    }

    /// Stops renewing and waits for the keeper to finish its current store call.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn keep(
    store: Arc<dyn Store>,
    run: RunId,
    config: KeeperConfig,
    signals: Signals,
    stop: Cancel,
) {
    let mut seen_seq = config.after_seq;
    let mut since_renew = Duration::ZERO;
    let tick = config.poll_every.min(config.renew_every);
    loop {
        // Cancel requests made after the driver's read, also while it took the lease.
        match store.list_events(&run, seen_seq).await {
            Ok(events) => {
                for event in events {
                    seen_seq = event.seq;
                    if event.kind == CANCEL_REQUESTED {
                        signals.cancel_requested.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!(run = %run, error = %e, "cannot read run events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
        since_renew += tick;
        if since_renew < config.renew_every {
            continue;
        }
        since_renew = Duration::ZERO;
        match store
            .renew_lease(&run, &config.owner, config.epoch, config.ttl)
            .await
        {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::LeaseLost | ErrorKind::Conflict) => {
                tracing::warn!(run = %run, epoch = config.epoch, "lease lost: {}", e.message());
                signals.lost.cancel();
                return;
            }
            // A transient storage error: keep trying until the lease really expires.
            Err(e) => tracing::warn!(run = %run, error = %e, "cannot renew the lease"),
        }
        if let Ok(flags) = store.list_flags().await {
            for flag in flags.iter().filter(|f| f.owner == run.as_str()) {
                let ttl = config
                    .flag_ttls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&flag.name)
                    .copied()
                    .unwrap_or(super::DEFAULT_FLAG_TTL);
                if let Err(e) = store.renew_flag(&flag.name, run.as_str(), ttl).await {
                    tracing::warn!(run = %run, flag = %flag.name, error = %e, "cannot renew flag");
                }
            }
        }
    }
}
