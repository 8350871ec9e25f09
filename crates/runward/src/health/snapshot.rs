//! The immutable snapshot every probe request reads.

use super::{Outcome, Status};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The latest known state of every check, replaced whole after each check run.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// One state per check, in registration order.
    pub checks: Vec<Arc<CheckState>>,
}

/// What the registry knows about one check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckState {
    /// The status after thresholds (not yet adjusted for staleness).
    pub status: Status,
    /// The latest raw outcome.
    pub outcome: Option<Outcome>,
    /// When the latest run started (wall clock).
    pub checked_at: Option<SystemTime>,
    /// When the latest run started (monotonic), for staleness.
    #[serde(skip)]
    pub checked_instant: Option<Instant>,
    /// How long the latest run took.
    pub duration: Duration,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// Passing runs in a row.
    pub consecutive_successes: u32,
    /// The end of the latest passing run.
    pub last_success: Option<SystemTime>,
    /// Since when `status` has held.
    pub status_since: Option<SystemTime>,
    /// Runs completed.
    pub runs: u64,
    /// Runs that overran their deadline.
    pub timeouts: u64,
    /// Status changes.
    pub transitions: u64,
}

impl CheckState {
    /// The status as of `now`: `unknown` before the first result and once older than `max_age`.
    pub fn status_at(&self, now: Instant, max_age: Duration) -> Status {
        match self.checked_instant {
            None => Status::Unknown,
            Some(at) if now.saturating_duration_since(at) > max_age => Status::Unknown,
            Some(_) => self.status,
        }
    }

    /// Whether the result is older than `max_age` as of `now`.
    pub fn is_stale(&self, now: Instant, max_age: Duration) -> bool {
        matches!(self.checked_instant, Some(at) if now.saturating_duration_since(at) > max_age)
    }
}
