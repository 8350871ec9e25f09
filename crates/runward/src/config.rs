//! `runward.toml`: the service, its checks and their policies.
//!
//! ```toml
//! [service]
//! id = "demo"
//!
//! [[checks]]
//! name = "db"
//! kind = "sqlite"
//! path = "data/app.db"
//! probes = ["readiness", "startup"]
//! ```
//!
//! Errors name the file, line and key, and list the valid choices.

use crate::health::{CheckSpec, ProbeKind, Registry, Schedule};
use crate::policy::OutboundPolicy;
use crate::probes::{self, BuildContext};
use crate::toml_location::{key_offset, location};
use crate::{Error, Result};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The file name looked up when no configuration path is given.
pub const DEFAULT_FILE: &str = "runward.toml";
/// Where state lives when the configuration does not say.
pub const DEFAULT_STATE_DIR: &str = ".runward";

/// The configuration used when there is no `runward.toml`.
pub const EMBEDDED_DEFAULT: &str = r#"
[service]
id = "runward"
description = "runward on embedded defaults (no runward.toml found)"

[[checks]]
name = "state-dir"
kind = "state"
path = ".runward"
probes = ["startup", "readiness", "liveness"]

[[checks]]
name = "state-disk"
kind = "disk"
path = "."
min_free_percent = 5
probes = ["readiness", "liveness"]
remediation = "free disk space on the volume that holds .runward/"
"#;

/// A parsed, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, when it came from one.
    pub path: Option<PathBuf>,
    /// Relative paths resolve against this directory.
    pub base_dir: PathBuf,
    /// The service identity.
    pub service: ServiceSection,
    /// Health settings.
    pub health: HealthSection,
    /// The HTTP server's settings.
    pub server: ServerSection,
    /// The automatic lockdown trigger, when configured.
    pub lockdown: Option<LockdownSection>,
    /// The outbound policy.
    pub outbound: Arc<OutboundPolicy>,
    /// Where runward keeps its state.
    pub state_dir: PathBuf,
    /// The `[engine]` section, validated.
    pub engine: EngineSection,
    /// The `[[schedules]]` entries, validated (spec, zone, runbook file, parameters, policies).
    pub schedules: Vec<crate::schedule::Schedule>,
    checks: Vec<CheckEntry>,
    source: Arc<str>,
}

#[derive(Debug, Clone)]
struct CheckEntry {
    name: String,
    /// Byte offset of the check's `[[checks]]` header in the source.
    offset: usize,
    table: toml::Table,
}

/// `[service]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// `serviceId` in health+json.
    pub id: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `releaseId`.
    pub release: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

/// `[health]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Liveness fails when the host has not sent a heartbeat for this long.
    pub heartbeat_timeout_ms: Option<u64>,
}

/// Who sees check details in HTTP responses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetailPolicy {
    /// Callers on loopback, or with the bearer token, see details.
    #[default]
    Loopback,
    /// Only callers with the bearer token see details.
    Token,
    /// Everyone sees details.
    Public,
    /// Nobody sees details over HTTP.
    None,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The listen address of `runward serve`.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// Who sees check details.
    #[serde(default)]
    pub details: DetailPolicy,
    /// The environment variable holding the bearer token that unlocks details.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// After SIGTERM, how long readiness fails before the server exits.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// The environment variable holding the bearer token of the admin API (`/admin/runs`);
    /// without a token in it the admin API is off.
    #[serde(default = "default_admin_token_env")]
    pub admin_token_env: String,
    /// Whether `/metrics` carries the per-check series, labelled with check names.
    #[serde(default = "yes")]
    pub check_metrics: bool,
    /// Connection timeouts and request size limits (`[server.limits]`).
    #[serde(default)]
    pub limits: crate::health::limits::ServerLimits,
}

fn default_addr() -> String {
    "127.0.0.1:8080".into()
}
fn default_token_env() -> String {
    "RUNWARD_HEALTH_TOKEN".into()
}
fn default_drain_ms() -> u64 {
    5000
}
fn default_admin_token_env() -> String {
    "RUNWARD_ADMIN_TOKEN".into()
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            addr: default_addr(),
            details: DetailPolicy::default(),
            token_env: default_token_env(),
            drain_ms: default_drain_ms(),
            admin_token_env: default_admin_token_env(),
            check_metrics: true,
            limits: crate::health::limits::ServerLimits::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    #[serde(default)]
    outbound: OutboundPolicy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateSection {
    dir: Option<PathBuf>,
}

/// `[engine]`: how the run engine of `runward runbook` and `runward serve` behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSection {
    /// How long a run's lease lasts without renewal (`lease_ttl = "10s"`); `None` keeps
    /// [`DEFAULT_LEASE_TTL`](crate::runbook::engine::DEFAULT_LEASE_TTL).
    pub lease_ttl: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngineSection {
    lease_ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    service: ServiceSection,
    #[serde(default)]
    health: HealthSection,
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    policy: PolicySection,
    #[serde(default)]
    state: StateSection,
    #[serde(default)]
    engine: RawEngineSection,
    #[serde(default)]
    checks: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    schedules: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    lockdown: Option<LockdownSection>,
}

/// `[lockdown]`: start lockdown automatically when readiness keeps failing (`runward serve`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LockdownSection {
    /// Whether the trigger runs (default true once the section is present).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Failed readiness evaluations within the window that start lockdown (default 3).
    #[serde(default = "three")]
    pub failures: u32,
    /// How far back failures count, in milliseconds (default 60000).
    #[serde(default = "minute_ms")]
    pub window_ms: u64,
    /// How long the lockdown lasts unless unlocked, in milliseconds (default 3600000).
    #[serde(default = "hour_ms")]
    pub ttl_ms: u64,
    /// How long the unlock code stays valid, in milliseconds (default: `ttl_ms`).
    pub code_ttl_ms: Option<u64>,
}

fn yes() -> bool {
    true
}
fn three() -> u32 {
    3
}
fn minute_ms() -> u64 {
    60_000
}
fn hour_ms() -> u64 {
    3_600_000
}

impl LockdownSection {
    /// The trigger policy this section describes, or `None` when disabled.
    pub fn policy(&self) -> Option<crate::flags::LockdownPolicy> {
        if !self.enabled {
            return None;
        }
        let mut policy = crate::flags::LockdownPolicy::new(
            self.failures,
            Duration::from_millis(self.window_ms),
            Duration::from_millis(self.ttl_ms),
        );
        if let Some(code_ttl) = self.code_ttl_ms {
            policy.code_ttl = Duration::from_millis(code_ttl);
        }
        Some(policy)
    }
}

/// Keys every check accepts, besides its kind's own.
const COMMON_KEYS: &[&str] = &[
    "name",
    "kind",
    "probes",
    "critical",
    "timeout_ms",
    "interval_ms",
    "initial_delay_ms",
    "jitter_ms",
    "mode",
    "ttl_ms",
    "max_age_ms",
    "failure_threshold",
    "success_threshold",
    "component_type",
    "affected_endpoints",
    "remediation",
];

impl Config {
    /// The embedded default: state under `./.runward/`, checked for being writable (with a
    /// fixer that creates it) and for free disk space.
    pub fn embedded_default() -> Config {
        Config::parse(EMBEDDED_DEFAULT, None, Path::new("."))
            .expect("the embedded default configuration is valid")
    }

    /// Reads and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = crate::toml_location::read_text(path, "configuration")?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Config::parse(&text, Some(path), base)
    }

    /// Loads `path` when given, else `./runward.toml` when present, else the embedded default.
    pub fn discover(path: Option<&Path>) -> Result<Config> {
        match path {
            Some(path) => Config::load(path),
            None if Path::new(DEFAULT_FILE).exists() => Config::load(DEFAULT_FILE),
            None => Ok(Config::embedded_default()),
        }
    }

    /// Parses configuration text; `file` is used in error messages, `base_dir` for relative paths.
    pub fn parse(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Config> {
        let locate = |offset: usize| location(text, file, offset);
        let raw: RawConfig = toml::from_str(text).map_err(|e: toml::de::Error| {
            let loc = e
                .span()
                .map(|s| locate(s.start))
                .unwrap_or_else(|| locate(0));
            Error::config(e.message().trim().to_owned()).with_location(loc)
        })?;
        let mut checks = Vec::with_capacity(raw.checks.len());
        for spanned in raw.checks {
            let offset = spanned.span().start;
            let table = spanned.into_inner();
            let name = match table.get("name") {
                Some(toml::Value::String(name)) => name.clone(),
                Some(_) => {
                    let at = key_offset(text, offset, "name").unwrap_or(offset);
                    return Err(Error::config("`name` must be a string").with_location(locate(at)));
                }
                None => {
                    return Err(Error::config("every [[checks]] entry needs a `name`")
                        .with_location(locate(offset)));
                }
            };
            if let Err(e) = crate::names::validate_name("check name", &name) {
                let at = key_offset(text, offset, "name").unwrap_or(offset);
                return Err(
                    Error::config(format!("`name`: {}", e.message())).with_location(locate(at))
                );
            }
            checks.push(CheckEntry {
                name,
                offset,
                table,
            });
        }
        let schedules = parse_schedules(text, file, base_dir, raw.schedules)?;
        let engine = EngineSection {
            lease_ttl: raw
                .engine
                .lease_ttl
                .map(|ttl| {
                    humantime::parse_duration(&ttl)
                        .map_err(|e| {
                            Error::config(format!(
                                "`lease_ttl` is `{ttl}`, not a duration ({e}): write e.g. \"10s\""
                            ))
                        })
                        .and_then(|d| {
                            crate::runbook::engine::check_lease_ttl(d)
                                .map_err(|e| Error::config(format!("`lease_ttl`: {}", e.message())))
                        })
                        .map_err(|e| {
                            let section = text.find("[engine]").unwrap_or(0);
                            let at = key_offset(text, section, "lease_ttl").unwrap_or(section);
                            e.with_location(locate(at))
                        })
                })
                .transpose()?,
        };
        if let Err(e) = raw.server.limits.validate() {
            let section = text.find("[server.limits]").unwrap_or(0);
            return Err(Error::config(format!("[server.limits]: {}", e.message()))
                .with_location(locate(section)));
        }
        let state_dir = raw
            .state
            .dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let config = Config {
            path: file.map(Path::to_path_buf),
            base_dir: base_dir.to_path_buf(),
            service: raw.service,
            health: raw.health,
            server: raw.server,
            lockdown: raw.lockdown,
            outbound: Arc::new(raw.policy.outbound),
            state_dir: if state_dir.is_absolute() {
                state_dir
            } else {
                base_dir.join(state_dir)
            },
            schedules,
            engine,
            checks,
            source: Arc::from(text),
        };
        // Validate every check now, so a bad file fails before anything runs.
        config.check_specs()?;
        Ok(config)
    }

    /// Names of the configured checks.
    pub fn check_names(&self) -> Vec<&str> {
        self.checks.iter().map(|c| c.name.as_str()).collect()
    }

    /// Builds the check specs, with their probes. Errors name the file, line and key.
    pub fn check_specs(&self) -> Result<Vec<CheckSpec>> {
        let ctx = BuildContext {
            base_dir: self.base_dir.clone(),
            outbound: self.outbound.clone(),
        };
        self.checks
            .iter()
            .map(|entry| {
                build_spec(entry, &ctx).map_err(|e| {
                    // Messages name the offending key in backticks; point at its line.
                    let key = e.message().split('`').nth(1).unwrap_or("kind");
                    let at = key_offset(&self.source, entry.offset, key)
                        .or_else(|| key_offset(&self.source, entry.offset, "kind"))
                        .unwrap_or(entry.offset);
                    let loc = location(&self.source, self.path.as_deref(), at);
                    Error::config(format!("check `{}`: {}", entry.name, e.message()))
                        .with_location(loc)
                })
            })
            .collect()
    }

    /// Builds the health registry this configuration describes.
    pub fn registry(&self) -> Result<Registry> {
        self.registry_builder()?.build()
    }

    /// A registry builder with this configuration's service and checks, to which code can
    /// add checks of its own before building.
    pub fn registry_builder(&self) -> Result<crate::health::RegistryBuilder> {
        let mut builder = Registry::builder();
        if let Some(id) = &self.service.id {
            builder = builder.service_id(id);
        }
        if let Some(v) = &self.service.version {
            builder = builder.version(v);
        }
        if let Some(r) = &self.service.release {
            builder = builder.release_id(r);
        }
        if let Some(d) = &self.service.description {
            builder = builder.description(d);
        }
        if let Some(ms) = self.health.heartbeat_timeout_ms {
            builder = builder.heartbeat_timeout(Duration::from_millis(ms));
        }
        for spec in self.check_specs()? {
            builder = builder.check(spec);
        }
        Ok(builder)
    }

    /// The state database file: `<state dir>/state.db`.
    pub fn state_db_path(&self) -> PathBuf {
        self.state_dir.join("state.db")
    }

    /// Opens (creating if needed) the SQLite state store under the state directory.
    pub async fn open_store(&self) -> Result<crate::store::SqliteStore> {
        std::fs::create_dir_all(&self.state_dir).map_err(|e| {
            Error::io(
                format!(
                    "cannot create the state directory `{}`",
                    self.state_dir.display()
                ),
                e,
            )
        })?;
        crate::store::SqliteStore::open(self.state_db_path()).await
    }

    /// Opens the state store for commands that only read: when no state database exists
    /// yet, an empty in-memory store stands for it, so reading creates nothing on disk.
    pub async fn open_store_for_reading(&self) -> Result<crate::store::SqliteStore> {
        if self.state_db_path().exists() {
            self.open_store().await
        } else {
            crate::store::SqliteStore::open_in_memory().await
        }
    }

    /// An engine builder over `store` with this configuration's outbound policy and
    /// `[engine]` settings (the lease TTL); callers add the health registry and steps.
    pub fn engine_builder(
        &self,
        store: Arc<dyn crate::store::Store>,
    ) -> Result<crate::runbook::engine::EngineBuilder> {
        let mut builder =
            crate::runbook::engine::Engine::builder(store).outbound((*self.outbound).clone());
        if let Some(ttl) = self.engine.lease_ttl {
            builder = builder.lease_ttl(ttl)?;
        }
        Ok(builder)
    }

    /// The bearer token that unlocks details, read from `server.token_env`.
    pub fn server_token(&self) -> Option<String> {
        std::env::var(&self.server.token_env)
            .ok()
            .filter(|t| !t.is_empty())
    }

    /// The endpoint options (detail policy and token) of `[server]`.
    #[cfg(feature = "server")]
    pub fn endpoint_options(&self) -> crate::health::endpoints::EndpointOptions {
        crate::health::endpoints::EndpointOptions {
            check_metrics: self.server.check_metrics,
            details: self.server.details,
            token: self.server_token(),
        }
    }
}

/// Validates `[[schedules]]` entries; errors name the file, line and key.
fn parse_schedules(
    text: &str,
    file: Option<&Path>,
    base_dir: &Path,
    entries: Vec<Spanned<toml::Table>>,
) -> Result<Vec<crate::schedule::Schedule>> {
    let mut out: Vec<crate::schedule::Schedule> = Vec::with_capacity(entries.len());
    for spanned in entries {
        let offset = spanned.span().start;
        let table = spanned.into_inner();
        let label = match table.get("name") {
            Some(toml::Value::String(name)) => {
                format!("schedule `{}`", crate::names::shown(name))
            }
            _ => "[[schedules]] entry".to_owned(),
        };
        let schedule = crate::schedule::Schedule::from_toml(&table, base_dir).map_err(|e| {
            let key = e.message().split('`').nth(1).unwrap_or("name");
            let at = key_offset(text, offset, key).unwrap_or(offset);
            Error::config(format!("{label}: {}", e.message()))
                .with_location(location(text, file, at))
        })?;
        if out.iter().any(|s| s.name() == schedule.name()) {
            let at = key_offset(text, offset, "name").unwrap_or(offset);
            return Err(Error::config(format!(
                "{label} is defined twice: schedule names must be unique"
            ))
            .with_location(location(text, file, at)));
        }
        out.push(schedule);
    }
    Ok(out)
}

fn get_u64(table: &toml::Table, key: &str) -> Result<Option<u64>> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
        Some(_) => Err(Error::config(format!(
            "`{key}` must be a non-negative integer"
        ))),
    }
}

fn get_str<'a>(table: &'a toml::Table, key: &str) -> Result<Option<&'a str>> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::config(format!("`{key}` must be a string"))),
    }
}

fn get_strings(table: &toml::Table, key: &str) -> Result<Option<Vec<String>>> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s.clone()),
                _ => Err(Error::config(format!("`{key}` must be a list of strings"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(Error::config(format!("`{key}` must be a list of strings"))),
    }
}

fn build_spec(entry: &CheckEntry, ctx: &BuildContext) -> Result<CheckSpec> {
    let table = &entry.table;
    let kind = get_str(table, "kind")?.ok_or_else(|| {
        Error::config(format!(
            "`kind` is missing: expected one of {}",
            probes::KINDS.join(", ")
        ))
    })?;
    let params: toml::Table = table
        .iter()
        .filter(|(k, _)| !COMMON_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let built = probes::build(kind, params, ctx)?;
    let mut spec = CheckSpec::new(entry.name.clone(), built.probe);
    if let Some(fixer) = built.fixer {
        spec = spec.fixer(fixer);
    }
    if let Some(kinds) = get_strings(table, "probes")? {
        let kinds = kinds
            .iter()
            .map(|k| {
                k.parse::<ProbeKind>().map_err(|_| {
                    Error::config(format!(
                        "`probes` has unknown probe `{k}`: expected startup, readiness or liveness"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        spec = spec.kinds(kinds);
    }
    match table.get("critical") {
        None => {}
        Some(toml::Value::Boolean(b)) => spec = spec.critical(*b),
        Some(_) => return Err(Error::config("`critical` must be true or false")),
    }
    if let Some(ms) = get_u64(table, "timeout_ms")? {
        if ms == 0 {
            return Err(Error::config("`timeout_ms` must be greater than 0"));
        }
        spec = spec.timeout(Duration::from_millis(ms));
    }
    let mode = get_str(table, "mode")?.unwrap_or("periodic");
    let schedule = match mode {
        "periodic" => {
            let interval =
                Duration::from_millis(get_u64(table, "interval_ms")?.unwrap_or(10_000).max(1));
            Schedule::Periodic {
                interval,
                initial_delay: Duration::from_millis(
                    get_u64(table, "initial_delay_ms")?.unwrap_or(0),
                ),
                jitter: get_u64(table, "jitter_ms")?
                    .map(Duration::from_millis)
                    .unwrap_or(interval / 10),
            }
        }
        "on_demand" => Schedule::OnDemand {
            ttl: Duration::from_millis(get_u64(table, "ttl_ms")?.unwrap_or(5_000)),
        },
        other => {
            return Err(Error::config(format!(
                "`mode` is `{other}`: expected one of periodic, on_demand"
            )));
        }
    };
    spec = spec.schedule(schedule);
    if let Some(ms) = get_u64(table, "max_age_ms")? {
        spec = spec.max_age(Duration::from_millis(ms));
    }
    if let Some(n) = get_u64(table, "failure_threshold")? {
        spec = spec.failure_threshold(n as u32);
    }
    if let Some(n) = get_u64(table, "success_threshold")? {
        spec = spec.success_threshold(n as u32);
    }
    if let Some(t) = get_str(table, "component_type")? {
        spec = spec.component_type(t);
    }
    if let Some(eps) = get_strings(table, "affected_endpoints")? {
        spec = spec.affected_endpoints(eps);
    }
    if let Some(hint) = get_str(table, "remediation")? {
        spec = spec.remediation(hint);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_lease_ttl_is_read_and_bad_values_name_the_line() {
        let parse = |value: &str| {
            Config::parse(
                &format!("[service]\nid = \"x\"\n\n[engine]\nlease_ttl = \"{value}\"\n"),
                Some(Path::new("r.toml")),
                Path::new("."),
            )
        };
        let config = parse("5s").unwrap();
        assert_eq!(config.engine.lease_ttl, Some(Duration::from_secs(5)));
        assert_eq!(
            Config::embedded_default().engine.lease_ttl,
            None,
            "the engine's default applies"
        );
        for (value, says) in [
            ("0s", "between 100ms and 1day"),
            ("50ms", "between 100ms and 1day"),
            ("30days", "between 100ms and 1day"),
            ("soon", "not a duration"),
        ] {
            let err = parse(value).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config);
            let text = err.to_string();
            assert!(text.starts_with("r.toml:5:"), "{value}: {text}");
            assert!(text.contains("`lease_ttl`"), "{value}: {text}");
            assert!(text.contains(says), "{value}: {text}");
        }
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = Config::parse(
            "[service]\nid = \"x\"\n[[checks]\n",
            Some(Path::new("r.toml")),
            Path::new("."),
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.to_string().starts_with("r.toml:3:"), "{err}");
    }

    #[test]
    fn unknown_section_lists_valid_keys() {
        let err = Config::parse(
            "[servise]\nid = 1\n",
            Some(Path::new("r.toml")),
            Path::new("."),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("r.toml:1:"), "{text}");
        assert!(text.contains("service"), "{text}");
    }

    #[test]
    fn unknown_kind_lists_known_kinds() {
        let text = "[service]\nid = \"x\"\n\n[[checks]]\nname = \"a\"\nkind = \"htp\"\n";
        let err = Config::parse(text, Some(Path::new("r.toml")), Path::new(".")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("r.toml:6:"), "{msg}");
        assert!(msg.contains("unknown check kind `htp`"), "{msg}");
        assert!(msg.contains("http, tcp, dns, sqlite"), "{msg}");
    }

    #[test]
    fn server_limits_are_read_and_checked() {
        let text = "[server.limits]\nidle_timeout_ms = 1000\nmax_connections = 100\n";
        let config = Config::parse(text, Some(Path::new("r.toml")), Path::new(".")).unwrap();
        assert_eq!(config.server.limits.idle_timeout_ms, 1000);
        assert_eq!(config.server.limits.max_connections, Some(100));
        assert_eq!(config.server.limits.header_read_timeout_ms, 5000);
        let text = "[server]\naddr = \"127.0.0.1:0\"\n\n[server.limits]\nmax_header_bytes = 10\n";
        let err = Config::parse(text, Some(Path::new("r.toml")), Path::new(".")).unwrap_err();
        assert!(err.to_string().starts_with("r.toml:4:"), "{err}");
        assert!(err.to_string().contains("max_header_bytes"), "{err}");
        let text = "[server.limits]\nidle_timeout = 5\n";
        let err = Config::parse(text, Some(Path::new("r.toml")), Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn bad_common_key_points_at_its_line() {
        let text =
            "[[checks]]\nname = \"a\"\nkind = \"disk\"\npath = \".\"\ntimeout_ms = \"soon\"\n";
        let err = Config::parse(text, Some(Path::new("r.toml")), Path::new(".")).unwrap_err();
        assert!(err.to_string().starts_with("r.toml:5:"), "{err}");
        assert!(err.to_string().contains("timeout_ms"), "{err}");
    }

    #[test]
    fn schedules_are_validated_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hb.toml"),
            "[runbook]\nname = \"hb\"\n[params.queue]\ntype = \"string\"\n[[steps]]\nid = \"s\"\nkind = \"sleep\"\nduration = \"1s\"\n",
        )
        .unwrap();
        let file = Some(Path::new("r.toml"));
        let ok = "[[schedules]]\nname = \"hb\"\nspec = \"@every:60\"\nzone = \"Europe/Berlin\"\nrunbook = \"hb.toml\"\nparams = { queue = \"q\" }\nmisfire = \"fire_all\"\ncatch_up = \"10m\"\n";
        let config = Config::parse(ok, file, dir.path()).unwrap();
        assert_eq!(config.schedules.len(), 1);
        let def = config.schedules[0].to_def();
        assert_eq!(
            (def.time_zone.as_str(), def.catch_up),
            ("Europe/Berlin", Some(Duration::from_secs(600)))
        );

        let cases = [
            (
                ok.replace("fire_all", "sometimes"),
                "r.toml:7:",
                "skip, fire_once, fire_all",
            ),
            (
                ok.replace("Europe/Berlin", "Mars/Base"),
                "r.toml:4:",
                "IANA",
            ),
            (
                ok.replace("@every:60", "@every:soon"),
                "r.toml:3:",
                "@every:60",
            ),
            (
                ok.replace("hb.toml", "missing.toml"),
                "r.toml:5:",
                "missing.toml",
            ),
            (
                ok.replace("queue = ", "colour = "),
                "r.toml:6:",
                "no parameter `colour`",
            ),
            (
                format!("{ok}overlap = \"never\"\n"),
                "r.toml:9:",
                "skip, buffer_one, allow",
            ),
            (format!("{ok}{ok}"), "r.toml:10:", "defined twice"),
        ];
        for (text, at, says) in cases {
            let err = Config::parse(&text, file, dir.path()).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{msg}");
            assert!(msg.starts_with(at) && msg.contains(says), "{msg}");
        }
    }
}
