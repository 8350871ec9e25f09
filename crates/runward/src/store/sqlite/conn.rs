//! Connections, the writer thread, the reader pool and the busy-retry loop.

use super::schema;
use crate::store::Clock;
use crate::{Error, ErrorKind, Result};
use rand::Rng;
use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A failure inside a transaction: a database error (retried when busy) or a domain error.
#[derive(Debug)]
pub(super) enum TxError {
    Db(rusqlite::Error),
    App(Error),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::App(e)
    }
}

impl From<serde_json::Error> for TxError {
    fn from(e: serde_json::Error) -> Self {
        TxError::App(Error::new(
            ErrorKind::Internal,
            format!("JSON encoding failed: {e}"),
        ))
    }
}

pub(super) type TxResult<T> = std::result::Result<T, TxError>;

/// How a connection is set up and how long busy storage is retried.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) path: Option<PathBuf>,
    pub(super) synchronous: &'static str,
    pub(super) busy_timeout: Duration,
    pub(super) busy_deadline: Duration,
    pub(super) readers: usize,
    pub(super) clock: Arc<dyn Clock>,
}

impl Settings {
    pub(super) fn label(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => ":memory:".into(),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn storage_error(settings: &Settings, e: rusqlite::Error) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!(
            "state database {}: {e}; check that the file is a runward state database on a local disk with free space",
            settings.label()
        ),
    )
    .with_source(e)
}

fn busy_error(settings: &Settings) -> Error {
    Error::new(
        ErrorKind::Busy,
        format!(
            "state database {} stayed busy for {:?} while other processes wrote to it; retry, \
             look for a process holding a long transaction on it, or raise the busy deadline",
            settings.label(),
            settings.busy_deadline
        ),
    )
}

/// Runs `f` until it does not fail with SQLITE_BUSY, backing off with jitter, until the
/// busy deadline.
pub(super) fn retry_busy<R>(settings: &Settings, mut f: impl FnMut() -> TxResult<R>) -> Result<R> {
    let deadline = Instant::now() + settings.busy_deadline;
    let mut backoff = Duration::from_millis(2);
    loop {
        match f() {
            Ok(r) => return Ok(r),
            Err(TxError::App(e)) => return Err(e),
            Err(TxError::Db(e)) if is_busy(&e) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(busy_error(settings));
                }
                let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64);
                let pause = (backoff + Duration::from_millis(jitter)).min(deadline - now);
                std::thread::sleep(pause);
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            Err(TxError::Db(e)) => return Err(storage_error(settings, e)),
        }
    }
}

/// Runs `f` in a transaction of `behavior`, committing on success, retrying when busy.
pub(super) fn run_tx<R>(
    conn: &mut Connection,
    settings: &Settings,
    behavior: TransactionBehavior,
    mut f: impl FnMut(&Transaction<'_>) -> TxResult<R>,
) -> Result<R> {
    retry_busy(settings, || {
        let tx = conn.transaction_with_behavior(behavior)?;
        let r = f(&tx)?;
        tx.commit()?;
        Ok(r)
    })
}

fn open_connection(settings: &Settings, writer: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = match &settings.path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory(),
    }
    .map_err(|e| storage_error(settings, e))?;
    conn.busy_timeout(settings.busy_timeout)
        .map_err(|e| storage_error(settings, e))?;
    retry_busy(settings, || {
        if settings.path.is_some() && writer {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "state database {} cannot use WAL journaling (got `{mode}`); keep it on a local file system",
                        settings.label()
                    ),
                )
                .into());
            }
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
            settings.synchronous
        ))?;
        if !writer {
            conn.execute_batch("PRAGMA query_only = ON;")?;
        }
        Ok(())
    })?;
    Ok(conn)
}

/// Applies missing migrations; refuses a schema newer than this build.
fn migrate(conn: &mut Connection, settings: &Settings) -> Result<()> {
    let now = settings.clock.now().as_millis();
    run_tx(conn, settings, TransactionBehavior::Immediate, |tx| {
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at  INTEGER NOT NULL
            );",
        )?;
        let current: u32 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        let latest = schema::latest();
        if current > latest {
            return Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "state database {} has schema version {current}, newer than the {latest} this \
                     runward supports; upgrade runward, or point it at another state file",
                    settings.label()
                ),
            )
            .into());
        }
        for (version, description, sql) in schema::MIGRATIONS {
            if *version <= current {
                continue;
            }
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![version, description, now],
            )?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {latest}"))?;
        Ok(())
    })
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The connections of one store: a writer thread and, for files, a pool of readers.
pub(super) struct Pool {
    pub(super) settings: Settings,
    writer: mpsc::Sender<Job>,
    readers: Option<Mutex<Vec<Connection>>>,
}

impl Pool {
    /// Opens the writer (running migrations on it) and returns the pool; blocking.
    pub(super) fn open(settings: Settings) -> Result<Pool> {
        if let Some(parent) = settings.path.as_deref().and_then(Path::parent) {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::io(
                        format!("cannot create the state directory {}", parent.display()),
                        e,
                    )
                })?;
            }
        }
        let mut conn = open_connection(&settings, true)?;
        migrate(&mut conn, &settings)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("runward-store-writer".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| Error::io("cannot start the store writer thread", e))?;
        let readers = settings.path.is_some().then(|| Mutex::new(Vec::new()));
        Ok(Pool {
            settings,
            writer: tx,
            readers,
        })
    }

    fn on_writer<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Settings) -> Result<R> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<Result<R>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let settings = self.settings.clone();
        let job: Job = Box::new(move |conn| {
            // A panicking job rolls its transaction back while unwinding; the thread lives on.
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn, &settings)))
                    .unwrap_or_else(|_| {
                        Err(Error::new(
                            ErrorKind::Internal,
                            "a store write panicked and was rolled back; please report it",
                        ))
                    });
            let _ = tx.send(result);
        });
        // A send error drops the job and its reply sender; the caller sees the closed channel.
        let _ = self.writer.send(job);
        rx
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer thread.
    pub(super) async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Transaction<'_>) -> TxResult<R> + Send + 'static,
    {
        let rx = self.on_writer(move |conn, settings| {
            run_tx(conn, settings, TransactionBehavior::Immediate, f)
        });
        rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs `f` in a read transaction: on a pooled reader for files, on the writer thread
    /// for in-memory stores.
    pub(super) async fn read<R, F>(self: &Arc<Self>, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Transaction<'_>) -> TxResult<R> + Send + 'static,
    {
        if self.readers.is_none() {
            let rx = self.on_writer(move |conn, settings| {
                run_tx(conn, settings, TransactionBehavior::Deferred, f)
            });
            return rx.await.unwrap_or_else(|_| Err(writer_gone()));
        }
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let readers = pool.readers.as_ref().expect("file stores have readers");
            let pooled = readers.lock().ok().and_then(|mut v| v.pop());
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&pool.settings, false)?,
            };
            let result = run_tx(&mut conn, &pool.settings, TransactionBehavior::Deferred, f);
            if let Ok(mut v) = readers.lock() {
                if v.len() < pool.settings.readers {
                    v.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("a store read panicked: {e}")))?
    }

    /// Runs blocking, CPU-bound work (hashing) off the async threads.
    pub(super) async fn blocking<R: Send + 'static>(
        f: impl FnOnce() -> Result<R> + Send + 'static,
    ) -> Result<R> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("a store task panicked: {e}")))?
    }
}

fn writer_gone() -> Error {
    Error::new(
        ErrorKind::Shutdown,
        "the store's writer thread has stopped; open the store again",
    )
}
