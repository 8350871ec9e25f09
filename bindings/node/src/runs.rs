//! The `Runs` and `Scheduler` classes: the runs of a state database, as `runward runbook
//! list|show|export` read them, and the schedules of a `runward.toml`, as `runward schedule
//! list|tick` run them.
//!
//! Every method returns a promise: bad arguments reject too, with code `invalid_input`.

use crate::convert;
use crate::error::invalid;
use crate::health::{promise, to_json};
use napi::Env;
use napi::bindgen_prelude::AsyncBlock;
use napi_derive::napi;
use runward::config::Config;
use runward::runbook::Evidence;
use runward::schedule::{self, Schedule};
use runward::store::{RunFilter, RunId, RunStatus, SqliteStore, Store, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How many runs `list` resolves to when no limit is given, as `runward runbook list` does.
const DEFAULT_LIMIT: u32 = 50;

/// Options of `runs.list()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RunListOptions {
    /// Runs in any of these statuses (default: any).
    #[napi(ts_type = "RunStatusName[]")]
    pub status: Option<Vec<String>>,
    /// Runs changed in the last this many milliseconds.
    #[napi(ts_type = "number")]
    pub since_ms: Option<u64>,
    /// Runs of this runbook.
    pub runbook: Option<String>,
    /// At most this many runs, newest first (default 50).
    pub limit: Option<u32>,
}

impl RunListOptions {
    /// The core filter; an unknown status fails with `invalid_input` listing the valid ones.
    fn filter(self) -> runward::Result<RunFilter> {
        let statuses = self
            .status
            .unwrap_or_default()
            .iter()
            .map(|s| s.parse::<RunStatus>())
            .collect::<runward::Result<Vec<_>>>()?;
        Ok(RunFilter {
            statuses,
            runbook: self.runbook,
            updated_after: self
                .since_ms
                .map(|ms| Timestamp::now() - Duration::from_millis(ms)),
            limit: Some(self.limit.unwrap_or(DEFAULT_LIMIT)),
            ..RunFilter::default()
        })
    }
}

/// Reads an export format: `markdown` (the default) or `json`.
fn render(format: Option<&str>) -> runward::Result<fn(&Evidence) -> String> {
    match format.unwrap_or("markdown") {
        "markdown" => Ok(Evidence::to_markdown),
        "json" => Ok(Evidence::to_json),
        other => Err(invalid(format!(
            "unknown export format `{other}`; expected markdown or json"
        ))),
    }
}

/// Reads a tick's `now`: milliseconds since the Unix epoch, as `Date.now()` gives them.
fn tick_time(now: Option<f64>) -> runward::Result<Timestamp> {
    match now {
        None => Ok(Timestamp::now()),
        Some(ms) if ms.is_finite() && ms.abs() < 8.64e15 => Ok(Timestamp::from_millis(ms as i64)),
        Some(ms) => Err(invalid(format!(
            "now must be milliseconds since the Unix epoch, such as Date.now(), not {ms}"
        ))),
    }
}

/// The runs recorded in a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `await Runs.open(path)`. Every method returns a promise; rejections carry the
/// core's error kind as `code` (`invalid_input` for an unknown status or format, `not_found`
/// for an unknown run). Runs are the JSON of `runward runbook list|show --json`.
#[napi]
pub struct Runs {
    store: Arc<SqliteStore>,
    path: String,
}

#[napi]
impl Runs {
    /// Opens (creating it and its folder if needed) and migrates the state database at
    /// `path`.
    #[napi(ts_return_type = "Promise<Runs>")]
    pub fn open(env: Env, path: String) -> napi::Result<AsyncBlock<Runs>> {
        promise(
            &env,
            async move {
                let store = SqliteStore::open(&path).await?;
                Ok(Runs {
                    store: Arc::new(store),
                    path,
                })
            },
            Ok,
        )
    }

    /// The state database file.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// Runs, newest first: in any of `options.status`, changed in the last `options.sinceMs`
    /// milliseconds, of `options.runbook`, at most `options.limit` (default 50). An unknown
    /// status rejects with `invalid_input` listing the valid ones.
    #[napi(
        ts_args_type = "options?: RunListOptions",
        ts_return_type = "Promise<Run[]>"
    )]
    pub fn list(&self, env: Env, options: Option<Value>) -> napi::Result<AsyncBlock<Value>> {
        let store = self.store.clone();
        promise(
            &env,
            async move {
                let options: RunListOptions = convert::options("run list options", options)?;
                store.list_runs(&options.filter()?).await
            },
            |runs| to_json(&runs),
        )
    }

    /// The run with its step attempts and events (`run`, `attempts`, `events`). Rejects with
    /// `not_found` for an unknown run.
    #[napi(ts_return_type = "Promise<RunDetails>")]
    pub fn show(&self, env: Env, run_id: String) -> napi::Result<AsyncBlock<Value>> {
        let store = self.store.clone();
        promise(
            &env,
            async move { store.run_details(&RunId::from(run_id)).await },
            |details| to_json(&details),
        )
    }

    /// The run's evidence document, `markdown` (the default) or `json`: the run, its
    /// attempts, its events and the verdict on their hash chain, as `runward runbook export`
    /// writes it. Rejects with `not_found` for an unknown run and `invalid_input` for another
    /// format.
    #[napi(
        ts_args_type = "runId: string, format?: 'markdown' | 'json'",
        ts_return_type = "Promise<string>"
    )]
    pub fn export(
        &self,
        env: Env,
        run_id: String,
        format: Option<String>,
    ) -> napi::Result<AsyncBlock<String>> {
        let store = self.store.clone();
        promise(
            &env,
            async move {
                let render = render(format.as_deref())?;
                let evidence = Evidence::collect(store.as_ref(), &RunId::from(run_id)).await?;
                Ok(render(&evidence))
            },
            Ok,
        )
    }

    /// Verifies the run's event chain: `events` read, `last_good_seq`, and `first_bad`
    /// (`null` when intact). Rejects with `not_found` for an unknown run.
    #[napi(ts_return_type = "Promise<ChainReport>")]
    pub fn verify(&self, env: Env, run_id: String) -> napi::Result<AsyncBlock<Value>> {
        let store = self.store.clone();
        promise(
            &env,
            async move { store.verify_events(&RunId::from(run_id)).await },
            |report| to_json(&report),
        )
    }
}

/// The `[[schedules]]` of a `runward.toml` over its state database.
///
/// Made with `await Scheduler.fromConfig(path)`. `list()` and `tick()` first write the
/// configuration's schedules to the store, as `runward schedule list|tick` do; every due time
/// is claimed once across all processes sharing the database.
#[napi]
pub struct Scheduler {
    schedules: Arc<Vec<Schedule>>,
    inner: Arc<schedule::Scheduler>,
    config: String,
}

#[napi]
impl Scheduler {
    /// Loads the `runward.toml` at `path` (its `[[schedules]]` validated: spec, zone, runbook
    /// file, parameters) and opens its state database. Rejects with code `config` naming the
    /// file, line and key.
    #[napi(ts_return_type = "Promise<Scheduler>")]
    pub fn from_config(env: Env, path: String) -> napi::Result<AsyncBlock<Scheduler>> {
        promise(
            &env,
            async move {
                let config = Config::load(&path)?;
                let store: Arc<dyn Store> = Arc::new(config.open_store().await?);
                Ok(Scheduler {
                    schedules: Arc::new(config.schedules),
                    inner: Arc::new(schedule::Scheduler::new(store)),
                    config: path,
                })
            },
            Ok,
        )
    }

    /// The configuration file.
    #[napi(getter)]
    pub fn config(&self) -> String {
        self.config.clone()
    }

    /// Writes the configuration's schedules to the store and resolves to which were `added`,
    /// `updated` or `unchanged`. Stored schedules the configuration lacks stay.
    #[napi(ts_return_type = "Promise<SyncReport>")]
    pub fn sync(&self, env: Env) -> napi::Result<AsyncBlock<Value>> {
        let (schedules, scheduler) = (self.schedules.clone(), self.inner.clone());
        promise(
            &env,
            async move { scheduler.sync(&schedules).await },
            |report| to_json(&report),
        )
    }

    /// Every stored schedule (after a sync) with its `next_due` time and `last_fire`, the JSON
    /// of `runward schedule list --json`.
    #[napi(ts_return_type = "Promise<ScheduleStatus[]>")]
    pub fn list(&self, env: Env) -> napi::Result<AsyncBlock<Value>> {
        let (schedules, scheduler) = (self.schedules.clone(), self.inner.clone());
        promise(
            &env,
            async move {
                scheduler.sync(&schedules).await?;
                scheduler.status(Timestamp::now()).await
            },
            |statuses| to_json(&statuses),
        )
    }

    /// Syncs, then writes every due time up to `now` (milliseconds since the Unix epoch, as
    /// `Date.now()` gives them; default: the current time) to the fire ledger, and resolves to
    /// the report of `runward schedule tick --json`: `claimed` (with their new runs), `lost`,
    /// `skipped`, `missed` (with reasons), `errors` and `synced`.
    #[napi(ts_return_type = "Promise<TickReport>")]
    pub fn tick(&self, env: Env, now: Option<f64>) -> napi::Result<AsyncBlock<Value>> {
        let (schedules, scheduler) = (self.schedules.clone(), self.inner.clone());
        promise(
            &env,
            async move {
                let now = tick_time(now)?;
                let synced = scheduler.sync(&schedules).await?;
                let report = scheduler.tick(now).await?;
                Ok((report, synced))
            },
            |(report, synced)| {
                let mut value = to_json(&report)?;
                value["synced"] = to_json(&synced)?;
                Ok(value)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_options_become_the_core_filter() {
        let filter = RunListOptions::default().filter().unwrap();
        assert!(filter.statuses.is_empty());
        assert_eq!(filter.limit, Some(DEFAULT_LIMIT));
        let options: RunListOptions = convert::options(
            "run list options",
            Some(json!({ "status": ["queued", "failed"], "sinceMs": 60000, "limit": 3 })),
        )
        .unwrap();
        let filter = options.filter().unwrap();
        assert_eq!(filter.statuses, vec![RunStatus::Queued, RunStatus::Failed]);
        assert_eq!(filter.limit, Some(3));
        assert!(filter.updated_after.is_some());

        let options = RunListOptions {
            status: Some(vec!["finished".into()]),
            ..RunListOptions::default()
        };
        let err = options.filter().unwrap_err();
        assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
        let err =
            convert::options::<RunListOptions>("run list options", Some(json!({ "state": [] })))
                .unwrap_err();
        assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
    }

    #[test]
    fn formats_and_times_are_checked() {
        assert!(render(None).is_ok() && render(Some("json")).is_ok());
        assert_eq!(
            render(Some("pdf")).err().map(|e| e.kind()),
            Some(runward::ErrorKind::InvalidInput)
        );
        assert_eq!(
            tick_time(Some(1_700_000_000_000.0)).unwrap(),
            Timestamp::from_millis(1_700_000_000_000)
        );
        assert!(tick_time(Some(f64::NAN)).is_err());
    }
}
