//! `sqlite`: ping a SQLite database and check that its schema is migrated.
//!
//! One read-only connection per probe, opened on first use and reopened when the file is
//! replaced (a restore swaps the inode). Calls run on the blocking pool; a call that overruns
//! the deadline is interrupted.

use super::BuildContext;
use super::tcp::{elapsed_ms, soft_deadline};
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The parameters of a `sqlite` check.
///
/// ```toml
/// [[checks]]
/// name = "db"
/// kind = "sqlite"
/// path = "data/app.db"
/// min_user_version = 12
/// required_tables = ["tickets", "users"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The database file; relative to the configuration file. Opened read-only.
    pub path: PathBuf,
    /// `PRAGMA user_version` must equal this.
    #[serde(default)]
    pub user_version: Option<i64>,
    /// `PRAGMA user_version` must be at least this.
    #[serde(default)]
    pub min_user_version: Option<i64>,
    /// Tables (or views) that must exist.
    #[serde(default)]
    pub required_tables: Vec<String>,
    /// A table recording applied migrations (one row each), e.g. `_migrations`; it must exist.
    #[serde(default)]
    pub migrations_table: Option<String>,
    /// The migrations table must hold at least this many rows.
    #[serde(default)]
    pub min_migrations: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct Expect {
    user_version: Option<i64>,
    min_user_version: Option<i64>,
    required_tables: Vec<String>,
    migrations_table: Option<String>,
    min_migrations: Option<u64>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Connection>,
    /// (device, inode) of the file the connection has open.
    identity: Option<(u64, u64)>,
}

/// Pings a SQLite database (`SELECT 1`), observes the latency as `responseTime`, and checks
/// `user_version`, required tables and applied migrations.
pub struct SqliteProbe {
    path: PathBuf,
    expect: Arc<Expect>,
    slot: Arc<Mutex<Slot>>,
    interrupt: Arc<Mutex<Option<InterruptHandle>>>,
}

impl std::fmt::Debug for SqliteProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteProbe")
            .field("path", &self.path)
            .field("expect", &self.expect)
            .finish()
    }
}

impl SqliteProbe {
    /// A probe pinging the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteProbe {
            path: path.into(),
            expect: Arc::default(),
            slot: Arc::default(),
            interrupt: Arc::default(),
        }
    }

    fn expect_mut(&mut self) -> &mut Expect {
        Arc::make_mut(&mut self.expect)
    }

    /// Requires `PRAGMA user_version` to equal `version`.
    pub fn user_version(mut self, version: i64) -> Self {
        self.expect_mut().user_version = Some(version);
        self
    }

    /// Requires `PRAGMA user_version` to be at least `version`.
    pub fn min_user_version(mut self, version: i64) -> Self {
        self.expect_mut().min_user_version = Some(version);
        self
    }

    /// Requires these tables (or views) to exist.
    pub fn required_tables<S: Into<String>>(mut self, tables: impl IntoIterator<Item = S>) -> Self {
        self.expect_mut()
            .required_tables
            .extend(tables.into_iter().map(Into::into));
        self
    }

    /// Requires a migrations table holding at least `min` rows.
    pub fn migrations(mut self, table: impl Into<String>, min: Option<u64>) -> Self {
        let expect = self.expect_mut();
        expect.migrations_table = Some(table.into());
        expect.min_migrations = min;
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.path.as_os_str().is_empty() {
            return Err(Error::config("`path` is empty: name the database file"));
        }
        if let (Some(exact), Some(min)) = (params.user_version, params.min_user_version) {
            return Err(Error::config(format!(
                "`user_version` ({exact}) and `min_user_version` ({min}) are both set: keep one"
            )));
        }
        if params.min_migrations.is_some() && params.migrations_table.is_none() {
            return Err(Error::config(
                "`min_migrations` needs `migrations_table` (e.g. \"_migrations\")",
            ));
        }
        let mut probe =
            SqliteProbe::new(ctx.resolve(&params.path)).required_tables(params.required_tables);
        if let Some(v) = params.user_version {
            probe = probe.user_version(v);
        }
        if let Some(v) = params.min_user_version {
            probe = probe.min_user_version(v);
        }
        if let Some(table) = params.migrations_table {
            probe = probe.migrations(table, params.min_migrations);
        }
        Ok(probe)
    }
}

#[async_trait]
impl Probe for SqliteProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let deadline = soft_deadline(ctx);
        let (path, expect, slot, interrupt) = (
            self.path.clone(),
            self.expect.clone(),
            self.slot.clone(),
            self.interrupt.clone(),
        );
        let task = tokio::task::spawn_blocking(move || {
            // A run abandoned at its deadline may still hold the connection: do not queue behind it.
            let Ok(mut slot) = slot.try_lock() else {
                return Outcome::outage(
                    OutageClass::Timeout,
                    "the previous run of this check is still in progress",
                );
            };
            run(&path, &expect, &mut slot, &interrupt, deadline)
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Outcome::fail(format!("the SQLite check failed: {join}")),
            Err(_) => {
                if let Some(handle) = self
                    .interrupt
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    handle.interrupt();
                }
                Outcome::outage(
                    OutageClass::Timeout,
                    format!("{} did not answer before the deadline", self.path.display()),
                )
            }
        }
    }

    fn component_type(&self) -> &str {
        "datastore"
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    (len, modified.map(|d| d.as_secs()).unwrap_or_default())
}

/// One check, on a blocking thread, with the connection slot locked.
fn run(
    path: &Path,
    expect: &Expect,
    slot: &mut Slot,
    interrupt: &Mutex<Option<InterruptHandle>>,
    deadline: Instant,
) -> Outcome {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            *slot = Slot::default();
            let (text, hint) = if err.kind() == std::io::ErrorKind::NotFound {
                (
                    format!("database {} does not exist", path.display()),
                    format!(
                        "start the application once (or run its migrations) to create {}, restore a backup, \
                         or fix the check's `path`",
                        path.display()
                    ),
                )
            } else {
                (
                    format!("cannot inspect {}: {err}", path.display()),
                    format!("check the permissions of {}", path.display()),
                )
            };
            return Outcome::outage(OutageClass::Misconfigured, text)
                .with_state(DependencyState::Offline)
                .with_remediation(hint);
        }
    };
    let id = identity(&meta);
    if slot.identity != Some(id) {
        // First use, or the file was replaced (restore): reopen.
        slot.conn = None;
    }
    let result = query(path, expect, slot, interrupt, deadline, id);
    match result {
        Ok(outcome) => outcome,
        Err(err) => {
            // Start from a fresh connection next time.
            *slot = Slot::default();
            classify(path, &err)
        }
    }
}

struct Facts {
    latency_ms: f64,
    user_version: i64,
    missing_tables: Vec<String>,
    migrations: Option<Option<i64>>,
}

fn query(
    path: &Path,
    expect: &Expect,
    slot: &mut Slot,
    interrupt: &Mutex<Option<InterruptHandle>>,
    deadline: Instant,
    id: (u64, u64),
) -> rusqlite::Result<Outcome> {
    if slot.conn.is_none() {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        *interrupt.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.get_interrupt_handle());
        slot.conn = Some(conn);
        slot.identity = Some(id);
    }
    let conn = slot.conn.as_ref().expect("connection opened above");
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    conn.busy_timeout(remaining)?;

    let started = Instant::now();
    let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0))?;
    debug_assert_eq!(one, 1);
    let latency_ms = elapsed_ms(started);
    let user_version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let mut missing_tables = Vec::new();
    let mut lookup = conn.prepare_cached(
        "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1",
    )?;
    let mut wanted: Vec<&String> = expect.required_tables.iter().collect();
    if let Some(table) = &expect.migrations_table {
        wanted.push(table);
    }
    for table in wanted {
        if !lookup.exists([table])? && !missing_tables.contains(table) {
            missing_tables.push(table.clone());
        }
    }
    drop(lookup);
    let migrations = match &expect.migrations_table {
        Some(table) if !missing_tables.contains(table) => {
            let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
            Some(Some(conn.query_row(&sql, [], |row| row.get::<_, i64>(0))?))
        }
        Some(_) => Some(None),
        None => None,
    };
    Ok(assess(
        path,
        expect,
        Facts {
            latency_ms,
            user_version,
            missing_tables,
            migrations,
        },
    ))
}

fn assess(path: &Path, expect: &Expect, facts: Facts) -> Outcome {
    let migrate = format!(
        "run the application's migrations against {}",
        path.display()
    );
    let base = |outcome: Outcome| {
        outcome
            .with_observed("responseTime", facts.latency_ms, Some("ms"))
            .with_detail("userVersion", facts.user_version)
    };
    if !facts.missing_tables.is_empty() {
        return base(Outcome::outage(
            OutageClass::SchemaUnavailable,
            format!("missing tables: {}", facts.missing_tables.join(", ")),
        ))
        .with_remediation(migrate);
    }
    let version = facts.user_version;
    if let Some(exact) = expect.user_version {
        if version < exact {
            return base(Outcome::outage(
                OutageClass::SchemaUnavailable,
                format!("user_version is {version}, expected {exact}: migrations are not applied"),
            ))
            .with_remediation(migrate);
        }
        if version > exact {
            return base(Outcome::outage(
                OutageClass::VersionMismatch,
                format!("user_version is {version}, expected {exact}: the database is newer than this release"),
            ))
            .with_remediation("deploy the release that matches this database, or restore a backup taken before the upgrade");
        }
    }
    if let Some(min) = expect.min_user_version.filter(|min| version < *min) {
        return base(Outcome::outage(
            OutageClass::SchemaUnavailable,
            format!(
                "user_version is {version}, expected at least {min}: migrations are not applied"
            ),
        ))
        .with_remediation(migrate);
    }
    if let (Some(Some(count)), Some(min)) = (facts.migrations, expect.min_migrations) {
        if count < min as i64 {
            return base(Outcome::outage(
                OutageClass::SchemaUnavailable,
                format!("{count} migrations applied, expected at least {min}"),
            ))
            .with_remediation(migrate);
        }
    }
    let mut outcome = base(Outcome::pass().with_state(DependencyState::Ready));
    if let Some(Some(count)) = facts.migrations {
        outcome = outcome.with_detail("migrations", count);
    }
    outcome
}

fn classify(path: &Path, err: &rusqlite::Error) -> Outcome {
    let shown = path.display();
    match err.sqlite_error_code() {
        Some(ErrorCode::OperationInterrupted) => Outcome::outage(
            OutageClass::Timeout,
            format!("{shown}: the query was interrupted at the deadline"),
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Outcome::outage(
            OutageClass::Timeout,
            format!("{shown} stayed locked until the deadline: {err}"),
        )
        .with_remediation(
            "look for a long write transaction or a stuck process holding the database",
        ),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Outcome::outage(
            OutageClass::MalformedPayload,
            format!("{shown} is not a usable SQLite database: {err}"),
        )
        .with_remediation("restore the database from a verified backup"),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            Outcome::outage(
                OutageClass::Misconfigured,
                format!("cannot open {shown}: {err}"),
            )
            .with_state(DependencyState::Offline)
            .with_remediation(format!(
                "give the service's user read access to {shown} and its directory"
            ))
        }
        _ => Outcome::outage(OutageClass::ProviderUnavailable, format!("{shown}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn ctx() -> CheckContext {
        CheckContext::new("db", Duration::from_secs(2))
    }

    fn make_db(dir: &Path, version: i64, tables: &[&str]) -> PathBuf {
        let path = dir.join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
        for t in tables {
            conn.execute_batch(&format!("CREATE TABLE \"{t}\" (id INTEGER PRIMARY KEY)"))
                .unwrap();
        }
        path
    }

    #[tokio::test]
    async fn pings_and_reports_latency() {
        let dir = tempfile::tempdir().unwrap();
        let path = make_db(dir.path(), 3, &["users"]);
        let probe = SqliteProbe::new(&path)
            .min_user_version(3)
            .required_tables(["users"]);
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.state, Some(DependencyState::Ready));
        assert_eq!(outcome.observed.unwrap().measurement, "responseTime");
        assert_eq!(outcome.details["userVersion"], 3);
    }

    #[tokio::test]
    async fn schema_problems_are_schema_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = make_db(dir.path(), 1, &["users"]);
        let missing = SqliteProbe::new(&path)
            .required_tables(["users", "tickets"])
            .check(&ctx())
            .await;
        assert_eq!(missing.outage, Some(OutageClass::SchemaUnavailable));
        assert_eq!(missing.output.as_deref(), Some("missing tables: tickets"));
        let old = SqliteProbe::new(&path)
            .min_user_version(2)
            .check(&ctx())
            .await;
        assert_eq!(old.outage, Some(OutageClass::SchemaUnavailable));
        assert_eq!(old.state, Some(DependencyState::SchemaUnavailable));
        let newer = SqliteProbe::new(&path).user_version(0).check(&ctx()).await;
        assert_eq!(newer.outage, Some(OutageClass::VersionMismatch));
    }

    #[tokio::test]
    async fn migrations_table_rows_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = make_db(dir.path(), 0, &["_migrations"]);
        Connection::open(&path)
            .unwrap()
            .execute_batch("INSERT INTO _migrations DEFAULT VALUES;")
            .unwrap();
        let probe = SqliteProbe::new(&path).migrations("_migrations", Some(2));
        let outcome = probe.check(&ctx()).await;
        assert_eq!(
            outcome.outage,
            Some(OutageClass::SchemaUnavailable),
            "{outcome:?}"
        );
        assert!(outcome.output.unwrap().contains("1 migrations applied"));
        Connection::open(&path)
            .unwrap()
            .execute_batch("INSERT INTO _migrations DEFAULT VALUES;")
            .unwrap();
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.details["migrations"], 2);
    }

    #[tokio::test]
    async fn missing_file_fails_with_remediation_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let outcome = SqliteProbe::new(&path).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.state, Some(DependencyState::Offline));
        assert!(outcome.remediation.unwrap().contains("migrations"));
        assert!(
            !path.exists(),
            "a read-only probe must not create the database"
        );
    }

    #[tokio::test]
    async fn garbage_file_is_reported_and_a_replaced_file_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let probe = SqliteProbe::new(&path).min_user_version(5);
        let bad = probe.check(&ctx()).await;
        assert_eq!(bad.status, Status::Fail);
        assert_eq!(bad.outage, Some(OutageClass::MalformedPayload), "{bad:?}");
        // Replace the file, as a restore does.
        let fresh = dir.path().join("fresh.db");
        Connection::open(&fresh)
            .unwrap()
            .pragma_update(None, "user_version", 5)
            .unwrap();
        std::fs::rename(&fresh, &path).unwrap();
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);
    }

    #[test]
    fn contradictory_params_are_rejected() {
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        let both: Params =
            toml::from_str("path = \"a.db\"\nuser_version = 1\nmin_user_version = 1").unwrap();
        assert!(SqliteProbe::from_params(both, &ctx).is_err());
        let orphan: Params = toml::from_str("path = \"a.db\"\nmin_migrations = 3").unwrap();
        assert!(
            SqliteProbe::from_params(orphan, &ctx)
                .unwrap_err()
                .to_string()
                .contains("migrations_table")
        );
    }
}
