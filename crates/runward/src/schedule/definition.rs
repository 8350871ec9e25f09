//! [`Schedule`]: a validated schedule definition, built in code or read from `runward.toml`.

use super::spec::{ScheduleSpec, TimeZoneName};
use crate::runbook::{Runbook, plan};
use crate::store::{MisfirePolicy, OverlapPolicy, ScheduleDef, ScheduleRecord};
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The catch-up window of [`MisfirePolicy::Skip`] when none is given: a due time found later
/// than this by the first tick after it is a misfire.
pub const DEFAULT_SKIP_WINDOW: Duration = Duration::from_secs(60);

/// The catch-up window of [`MisfirePolicy::FireOnce`] and [`MisfirePolicy::FireAll`] when
/// none is given.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(3600);

/// Keys a `[[schedules]]` entry accepts.
pub const SCHEDULE_KEYS: &[&str] = &[
    "name", "spec", "zone", "runbook", "params", "misfire", "catch_up", "overlap", "enabled",
];

/// A schedule: when a runbook runs, with which parameters, and what happens to due times that
/// were missed or that come while the previous run is still active.
///
/// ```
/// use runward::schedule::Schedule;
/// use runward::store::{MisfirePolicy, OverlapPolicy};
///
/// let heartbeat = Schedule::new("heartbeat", "@every:60", "heartbeat")?
///     .misfire(MisfirePolicy::FireOnce)
///     .overlap(OverlapPolicy::BufferOne);
/// assert_eq!(heartbeat.to_def().spec, "@every:60");
/// # Ok::<(), runward::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    spec: ScheduleSpec,
    runbook: String,
    params: Value,
    misfire: MisfirePolicy,
    catch_up: Option<Duration>,
    overlap: OverlapPolicy,
    enabled: bool,
}

impl Schedule {
    /// A schedule named `name` running `runbook` on `spec` in UTC, skipping misfires and
    /// overlaps. `runbook` is whatever the scheduler's resolver understands: a runbook file
    /// path for the default one. Fails on an invalid name, spec or empty runbook.
    pub fn new(name: &str, spec: &str, runbook: &str) -> Result<Schedule> {
        Self::in_zone(name, spec, TimeZoneName::UTC, runbook)
    }

    /// Like [`Schedule::new`], with the spec read in `zone`.
    pub fn in_zone(name: &str, spec: &str, zone: TimeZoneName, runbook: &str) -> Result<Schedule> {
        validate_name(name)?;
        if runbook.trim().is_empty() {
            return Err(Error::invalid(format!(
                "schedule `{name}` names no runbook: give the runbook file it starts"
            )));
        }
        Ok(Schedule {
            name: name.to_owned(),
            spec: ScheduleSpec::parse(spec, zone)?,
            runbook: runbook.to_owned(),
            params: Value::Object(Default::default()),
            misfire: MisfirePolicy::Skip,
            catch_up: None,
            overlap: OverlapPolicy::Skip,
            enabled: true,
        })
    }

    /// Sets the parameters of the runs it starts. Fails unless `params` is a JSON object.
    pub fn params(mut self, params: Value) -> Result<Schedule> {
        if !params.is_object() {
            return Err(Error::invalid(format!(
                "schedule `{}`: parameters must be a table of NAME = VALUE",
                self.name
            )));
        }
        self.params = params;
        Ok(self)
    }

    /// Sets the misfire policy.
    pub fn misfire(mut self, policy: MisfirePolicy) -> Schedule {
        self.misfire = policy;
        self
    }

    /// Sets the catch-up window: due times older than this at a tick are recorded `missed`.
    pub fn catch_up(mut self, window: Duration) -> Schedule {
        self.catch_up = Some(window);
        self
    }

    /// Sets the overlap policy.
    pub fn overlap(mut self, policy: OverlapPolicy) -> Schedule {
        self.overlap = policy;
        self
    }

    /// Enables or disables it.
    pub fn enabled(mut self, enabled: bool) -> Schedule {
        self.enabled = enabled;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its parsed spec.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    /// The runbook it starts.
    pub fn runbook(&self) -> &str {
        &self.runbook
    }

    /// The definition the store keeps.
    pub fn to_def(&self) -> ScheduleDef {
        ScheduleDef {
            name: self.name.clone(),
            spec: self.spec.text().to_owned(),
            time_zone: self.spec.zone().name().to_owned(),
            runbook: self.runbook.clone(),
            params: self.params.clone(),
            misfire: self.misfire,
            catch_up: self.catch_up,
            overlap: self.overlap,
            enabled: self.enabled,
        }
    }

    /// Rebuilds a schedule from a stored definition, validating its spec and zone.
    pub fn from_def(def: &ScheduleDef) -> Result<Schedule> {
        let zone: TimeZoneName = def.time_zone.parse()?;
        let schedule = Schedule::in_zone(&def.name, &def.spec, zone, &def.runbook)?
            .params(def.params.clone())?
            .misfire(def.misfire)
            .overlap(def.overlap)
            .enabled(def.enabled);
        Ok(match def.catch_up {
            Some(window) => schedule.catch_up(window),
            None => schedule,
        })
    }

    /// Checks that the runbook file (relative to `base_dir`) loads and accepts the parameters.
    pub fn check_runbook(&self, base_dir: &Path) -> Result<Runbook> {
        let path = base_dir.join(&self.runbook);
        let runbook = Runbook::load(&path)?;
        let given: BTreeMap<String, Value> = self
            .params
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        plan(&runbook, &given)?;
        Ok(runbook)
    }

    /// Reads one `[[schedules]]` table. Errors start with the offending key in backticks, so
    /// the caller can point at its line. The runbook path is resolved against `base_dir`,
    /// loaded, and the parameters checked against it.
    pub fn from_toml(table: &toml::Table, base_dir: &Path) -> Result<Schedule> {
        if let Some(key) = table.keys().find(|k| !SCHEDULE_KEYS.contains(&k.as_str())) {
            return Err(Error::config(format!(
                "`{key}` is not a schedule key; expected one of {}",
                SCHEDULE_KEYS.join(", ")
            )));
        }
        let text = |key: &str| -> Result<Option<&str>> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(Error::config(format!("`{key}` must be a string"))),
            }
        };
        let required = |key: &str, example: &str| -> Result<&str> {
            text(key)?.ok_or_else(|| {
                Error::config(format!("`{key}` is missing: add e.g. {key} = {example}"))
            })
        };
        let name = required("name", "\"heartbeat\"")?;
        validate_name(name).map_err(|e| Error::config(format!("`name`: {}", e.message())))?;
        let spec = required("spec", "\"@every:60\" or \"30 2 * * *\"")?;
        let zone: TimeZoneName = text("zone")?
            .unwrap_or("UTC")
            .parse()
            .map_err(|e: Error| Error::config(format!("`zone`: {}", e.message())))?;
        let spec = ScheduleSpec::parse(spec, zone)
            .map_err(|e| Error::config(format!("`spec`: {}", e.message())))?;
        let runbook = required("runbook", "\"runbooks/heartbeat.toml\"")?;
        let misfire = match text("misfire")? {
            None => MisfirePolicy::Skip,
            Some(s) => s.parse().map_err(|_| {
                Error::config(format!(
                    "`misfire` is `{s}`: expected one of {}",
                    names(MisfirePolicy::ALL.iter().map(|p| p.as_str()))
                ))
            })?,
        };
        let overlap = match text("overlap")? {
            None => OverlapPolicy::Skip,
            Some(s) => s.parse().map_err(|_| {
                Error::config(format!(
                    "`overlap` is `{s}`: expected one of {}",
                    names(OverlapPolicy::ALL.iter().map(|p| p.as_str()))
                ))
            })?,
        };
        let catch_up = text("catch_up")?
            .map(|s| {
                humantime::parse_duration(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        Error::config(format!(
                            "`catch_up` is `{s}`, not a positive duration: write e.g. \"10m\" or \"1h\""
                        ))
                    })
            })
            .transpose()?;
        let enabled = match table.get("enabled") {
            None => true,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => return Err(Error::config("`enabled` must be true or false")),
        };
        let params = match table.get("params") {
            None => Value::Object(Default::default()),
            Some(toml::Value::Table(t)) => serde_json::to_value(t)
                .map_err(|e| Error::config(format!("`params` cannot be read: {e}")))?,
            Some(_) => {
                return Err(Error::config(
                    "`params` must be a table, e.g. params = { service_url = \"http://127.0.0.1:8000\" }",
                ));
            }
        };
        let path = base_dir.join(runbook);
        let resolved = std::fs::canonicalize(&path).unwrap_or(path);
        let schedule = Schedule {
            name: name.to_owned(),
            spec,
            runbook: resolved.display().to_string(),
            params,
            misfire,
            catch_up,
            overlap,
            enabled,
        };
        schedule.check_runbook(Path::new("")).map_err(|e| {
            let key = if e.message().contains("parameter") {
                "params"
            } else {
                "runbook"
            };
            Error::config(format!("`{key}`: {}", e.message()))
        })?;
        Ok(schedule)
    }
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn validate_name(name: &str) -> Result<()> {
    crate::names::validate_name("schedule name", name)
}

/// The catch-up window that applies to `def`: its own, else the policy's default.
pub(crate) fn catch_up_window(def: &ScheduleDef) -> Duration {
    def.catch_up.unwrap_or(match def.misfire {
        MisfirePolicy::Skip => DEFAULT_SKIP_WINDOW,
        MisfirePolicy::FireOnce | MisfirePolicy::FireAll => DEFAULT_CATCH_UP,
    })
}

/// The parsed spec of a stored schedule.
pub(crate) fn spec_of(record: &ScheduleRecord) -> Result<ScheduleSpec> {
    let zone: TimeZoneName = record.def.time_zone.parse()?;
    ScheduleSpec::parse(&record.def.spec, zone)
}
