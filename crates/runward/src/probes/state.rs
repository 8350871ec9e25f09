//! `state`: runward's own state directory and its `state.db`.
//!
//! A missing directory is healthy when it can be created: state is created on first write,
//! so the probe checks that the nearest existing parent is a writable directory. An existing
//! directory must be writable, and an existing `state.db` must pass SQLite's `quick_check`.
//! `quick_check` reads the whole database, so once it passes a probe repeats it at most every
//! [`QUICK_CHECK_EVERY`]; after a failure it repeats it on every run.

use super::BuildContext;
use super::path::inspect as inspect_dir;
use crate::health::{CheckContext, OutageClass, Outcome, Probe, Status};
use crate::{Error, Result};
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name of the state database inside the state directory.
pub const STATE_DB: &str = "state.db";

/// How long a passing `quick_check` of the state database stands before a probe repeats it.
pub const QUICK_CHECK_EVERY: Duration = Duration::from_secs(600);

/// The parameters of a `state` check.
///
/// ```toml
/// [[checks]]
/// name = "state"
/// kind = "state"
/// path = ".runward"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The state directory; relative to the configuration file.
    pub path: PathBuf,
}

/// Checks that the state directory exists or can be created, and that its database is sound.
#[derive(Debug, Clone)]
pub struct StateProbe {
    dir: PathBuf,
    /// When `quick_check` last passed; clones share it.
    verified: Arc<Mutex<Option<Instant>>>,
}

impl StateProbe {
    /// A probe for the state directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateProbe {
            dir: dir.into(),
            verified: Arc::default(),
        }
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.path.as_os_str().is_empty() {
            return Err(Error::config(
                "`path` is empty: name the state directory to check",
            ));
        }
        Ok(StateProbe::new(ctx.resolve(&params.path)))
    }
}

/// Checks the state directory on the calling thread; `verify` says whether to run
/// `quick_check` on an existing database.
fn inspect(dir: &Path, verify: bool) -> Outcome {
    match std::fs::symlink_metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir
                .ancestors()
                .skip(1)
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .find(|p| p.exists())
                .unwrap_or(Path::new("/"));
            let outcome = inspect_dir(parent, false);
            if outcome.status != Status::Pass {
                return outcome;
            }
            Outcome::pass().with_output(format!(
                "{} does not exist yet; it is created on first write",
                dir.display()
            ))
        }
        Err(err) => Outcome::fail(format!("cannot inspect {}: {err}", dir.display())),
        Ok(_) => {
            let outcome = inspect_dir(dir, false);
            if outcome.status != Status::Pass {
                return outcome;
            }
            let db = dir.join(STATE_DB);
            if verify && db.exists() {
                quick_check(&db)
            } else {
                outcome
            }
        }
    }
}

/// Runs `PRAGMA quick_check` on a read-only connection.
fn quick_check(db: &Path) -> Outcome {
    let corrupt = |detail: String| {
        Outcome::outage(
            OutageClass::MalformedPayload,
            format!("{} is damaged: {detail}", db.display()),
        )
        .with_remediation(format!(
            "stop every runward process, move {} aside and restore it from a backup",
            db.display()
        ))
    };
    let conn = match Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(conn) => conn,
        Err(err) => return corrupt(err.to_string()),
    };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(500));
    let rows: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Outcome::pass(),
        Ok(rows) => corrupt(rows.into_iter().take(3).collect::<Vec<_>>().join("; ")),
        Err(err) => corrupt(err.to_string()),
    }
}

#[async_trait]
impl Probe for StateProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let dir = self.dir.clone();
        let what = format!("checking {}", self.dir.display());
        let verify = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() >= QUICK_CHECK_EVERY);
        let outcome = super::blocking_check(ctx, &what, move || inspect(&dir, verify)).await;
        if verify {
            let passed = outcome.status == Status::Pass;
            *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = passed.then(Instant::now);
        }
        outcome
    }

    fn is_local(&self) -> bool {
        true
    }

    fn component_type(&self) -> &str {
        "datastore"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CheckContext {
        CheckContext::new("state", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn a_missing_directory_under_a_writable_parent_passes_and_is_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".runward");
        let outcome = StateProbe::new(&dir).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert!(outcome.output.unwrap().contains("created on first write"));
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn a_sound_database_passes_and_a_corrupt_one_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join(STATE_DB);
        {
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (x TEXT); INSERT INTO t SELECT hex(randomblob(200)) FROM generate_series(1, 200);",
            )
            .or_else(|_| {
                conn.execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                     INSERT INTO t SELECT hex(randomblob(200)) FROM n;",
                )
            })
            .unwrap();
        }
        let probe = StateProbe::new(tmp.path());
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);

        // Overwrite pages past the header: the schema stays readable, the b-tree does not.
        let mut bytes = std::fs::read(&db).unwrap();
        assert!(bytes.len() > 8192, "the database spans several pages");
        for b in &mut bytes[4096 + 16..] {
            *b = 0x5a;
        }
        std::fs::write(&db, &bytes).unwrap();
        // A new probe (a new process) reads it at once.
        let outcome = StateProbe::new(tmp.path()).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail, "{outcome:?}");
        assert!(outcome.output.unwrap().contains("is damaged"));
        assert!(outcome.remediation.unwrap().contains("restore"));
    }

    #[tokio::test]
    async fn a_passing_quick_check_stands_for_a_while_and_a_failing_one_is_repeated() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join(STATE_DB);
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let probe = StateProbe::new(tmp.path());
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);
        // Not a database any more: the next run, inside the window, does not read it.
        std::fs::write(&db, vec![0x5a; 8192]).unwrap();
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);
        // Once the window has passed it is read again, and a failure is rechecked every run.
        *probe.verified.lock().unwrap() = Some(Instant::now() - QUICK_CHECK_EVERY);
        assert_eq!(probe.check(&ctx()).await.status, Status::Fail);
        assert!(probe.verified.lock().unwrap().is_none());
        assert_eq!(probe.check(&ctx()).await.status, Status::Fail);
    }

    #[tokio::test]
    async fn a_file_in_place_of_the_directory_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(".runward");
        std::fs::write(&file, b"x").unwrap();
        let outcome = StateProbe::new(&file).check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
    }
}
