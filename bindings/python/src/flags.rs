//! `runward.Flags`: the core's flags and lockdown over a state database, as `runward flag`,
//! `runward lockdown` and `runward unlock` use them.

use crate::convert::Json;
use crate::errors::py_err;
use crate::runtime::{block_on, fork_error, runtime};
use pyo3::prelude::*;
use runward::flags;
use runward::store::SqliteStore;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The lockdown TTL when none is given, as `runward lockdown` defaults it (1 hour).
const DEFAULT_LOCKDOWN_TTL_MS: u64 = 3_600_000;

/// Flags and lockdown kept in a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `Flags.open(path)` or `await Flags.open_async(path)`. Every method is a thin call
/// of the core's `Flags` service; the sync ones release the GIL while they wait, the `_async`
/// twins return awaitables. Flags are returned as dicts, the JSON of `runward flag list --json`.
#[pyclass(module = "runward", name = "Flags", frozen)]
pub(crate) struct Flags {
    pid: u32,
    path: PathBuf,
    inner: flags::Flags,
}

fn to_json<T: serde::Serialize>(value: &T) -> runward::Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| runward::Error::new(runward::ErrorKind::Internal, e.to_string()))
}

fn ms(ttl_ms: u64) -> Duration {
    Duration::from_millis(ttl_ms)
}

async fn open(path: PathBuf) -> runward::Result<Flags> {
    let store = SqliteStore::open(&path).await?;
    Ok(Flags {
        pid: std::process::id(),
        path,
        inner: flags::Flags::new(Arc::new(store)),
    })
}

impl Flags {
    /// The core service, refused in a process forked after this object was made.
    fn flags(&self, py: Python<'_>) -> PyResult<flags::Flags> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Flags object", self.pid));
        }
        Ok(self.inner.clone())
    }

    /// Runs `fut` on runward's runtime with the GIL released.
    fn wait<F>(py: Python<'_>, fut: F) -> PyResult<Json>
    where
        F: Future<Output = runward::Result<Value>> + Send,
    {
        block_on(py, fut)?.map(Json).map_err(py_err)
    }

    /// An awaitable of `fut`, run on runward's runtime.
    fn spawn<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: Future<Output = runward::Result<Value>> + Send + 'static,
    {
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            fut.await.map(Json).map_err(py_err)
        })
    }
}

async fn set(
    f: flags::Flags,
    name: String,
    ttl_ms: u64,
    owner: String,
    reason: Option<String>,
) -> runward::Result<Value> {
    to_json(&f.set(&name, &owner, ms(ttl_ms), reason.as_deref()).await?)
}

async fn renew(
    f: flags::Flags,
    name: String,
    ttl_ms: u64,
    owner: String,
) -> runward::Result<Value> {
    to_json(&f.renew(&name, &owner, ms(ttl_ms)).await?)
}

async fn clear(f: flags::Flags, name: String, owner: Option<String>) -> runward::Result<Value> {
    Ok(Value::Bool(f.clear(&name, owner.as_deref()).await?))
}

async fn get(f: flags::Flags, name: String) -> runward::Result<Value> {
    to_json(&f.get(&name).await?)
}

async fn list(f: flags::Flags) -> runward::Result<Value> {
    to_json(&f.list().await?)
}

async fn require_absent(f: flags::Flags, names: Vec<String>) -> runward::Result<Value> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    f.require_absent(&names).await?;
    Ok(Value::Null)
}

async fn require_present(f: flags::Flags, names: Vec<String>) -> runward::Result<Value> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    to_json(&f.require_present(&names).await?)
}

async fn lockdown(
    f: flags::Flags,
    owner: String,
    reason: Option<String>,
    ttl_ms: u64,
    code_ttl_ms: Option<u64>,
) -> runward::Result<Value> {
    let ttl = ms(ttl_ms);
    let code_ttl = code_ttl_ms.map_or(ttl, ms);
    let lockdown = f
        .lockdown_with_code_ttl(&owner, reason.as_deref(), ttl, code_ttl)
        .await?;
    Ok(Value::String(lockdown.code.expose().to_owned()))
}

async fn unlock(f: flags::Flags, code: String) -> runward::Result<Value> {
    to_json(&f.unlock(&code).await?.flag)
}

async fn rotate(
    f: flags::Flags,
    code: Option<String>,
    override_reason: Option<String>,
    who: Option<String>,
    ttl_ms: Option<u64>,
) -> runward::Result<Value> {
    let authority = flags::RotateAuthority::from_options(
        code.as_deref(),
        override_reason.as_deref(),
        who.as_deref(),
    )?;
    let issued = f.rotate_unlock_code(authority, ttl_ms.map(ms)).await?;
    Ok(Value::String(issued.code.expose().to_owned()))
}

async fn status(f: flags::Flags) -> runward::Result<Value> {
    to_json(&f.lockdown_status().await?)
}

#[pymethods]
impl Flags {
    /// Opens (creating if needed, with its folder) the state database at `path` and migrates
    /// it. Raises `StorageError` when it cannot be opened, e.g. a schema newer than this build.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        block_on(py, open(path))?.map_err(py_err)
    }

    /// Awaitable twin of `open`.
    #[staticmethod]
    fn open_async(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyAny>> {
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(
            py,
            async move { open(path).await.map_err(py_err) },
        )
    }

    /// The state database file.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Sets flag `name` for `owner` for `ttl_ms` milliseconds and returns it. Setting a flag the
    /// same owner holds renews it; while another owner holds it, raises `ConflictError` naming
    /// that owner. An empty name or owner, or a zero TTL, raises `InvalidInputError`.
    #[pyo3(signature = (name, ttl_ms, owner, reason=None))]
    fn set(
        &self,
        py: Python<'_>,
        name: String,
        ttl_ms: u64,
        owner: String,
        reason: Option<String>,
    ) -> PyResult<Json> {
        Self::wait(py, set(self.flags(py)?, name, ttl_ms, owner, reason))
    }

    /// Awaitable twin of `set`.
    #[pyo3(signature = (name, ttl_ms, owner, reason=None))]
    fn set_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        ttl_ms: u64,
        owner: String,
        reason: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, set(self.flags(py)?, name, ttl_ms, owner, reason))
    }

    /// Extends `owner`'s flag to now + `ttl_ms` (a heartbeat). Raises `NotFoundError` when it
    /// lapsed and `ConflictError` when another owner holds it.
    fn renew(&self, py: Python<'_>, name: String, ttl_ms: u64, owner: String) -> PyResult<Json> {
        Self::wait(py, renew(self.flags(py)?, name, ttl_ms, owner))
    }

    /// Awaitable twin of `renew`.
    fn renew_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        ttl_ms: u64,
        owner: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, renew(self.flags(py)?, name, ttl_ms, owner))
    }

    /// Clears flag `name`; returns whether an unexpired flag was cleared. With `owner`, raises
    /// `ConflictError` when another owner holds it; without, clears it whoever holds it.
    /// Clearing `lockdown` deletes its unlock code too: prefer `unlock(code)`.
    #[pyo3(signature = (name, owner=None))]
    fn clear(&self, py: Python<'_>, name: String, owner: Option<String>) -> PyResult<Json> {
        Self::wait(py, clear(self.flags(py)?, name, owner))
    }

    /// Awaitable twin of `clear`.
    #[pyo3(signature = (name, owner=None))]
    fn clear_async<'py>(
        &self,
        py: Python<'py>,
        name: String,
        owner: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, clear(self.flags(py)?, name, owner))
    }

    /// Flag `name`, or `None` when it is absent or expired.
    fn get(&self, py: Python<'_>, name: String) -> PyResult<Json> {
        Self::wait(py, get(self.flags(py)?, name))
    }

    /// Awaitable twin of `get`.
    fn get_async<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, get(self.flags(py)?, name))
    }

    /// Every unexpired flag, by name.
    fn list(&self, py: Python<'_>) -> PyResult<Json> {
        Self::wait(py, list(self.flags(py)?))
    }

    /// Awaitable twin of `list`.
    fn list_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, list(self.flags(py)?))
    }

    /// Returns when none of `names` is set; otherwise raises `ConflictError` naming each flag
    /// that is set, its owner, reason and expiry.
    fn require_absent(&self, py: Python<'_>, names: Vec<String>) -> PyResult<()> {
        Self::wait(py, require_absent(self.flags(py)?, names)).map(drop)
    }

    /// Awaitable twin of `require_absent`.
    fn require_absent_async<'py>(
        &self,
        py: Python<'py>,
        names: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, require_absent(self.flags(py)?, names))
    }

    /// Returns the flags when every one of `names` is set; otherwise raises `ConflictError`
    /// naming the missing ones.
    fn require_present(&self, py: Python<'_>, names: Vec<String>) -> PyResult<Json> {
        Self::wait(py, require_present(self.flags(py)?, names))
    }

    /// Awaitable twin of `require_present`.
    fn require_present_async<'py>(
        &self,
        py: Python<'py>,
        names: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, require_present(self.flags(py)?, names))
    }

    /// Turns lockdown on for `owner` for `ttl_ms` and returns a fresh unlock code, valid for
    /// `code_ttl_ms` (default: as long as the lockdown). The code is shown only here. When
    /// `owner` already holds lockdown, it is renewed and the new code replaces the old one;
    /// while another owner holds it, raises `ConflictError`.
    #[pyo3(signature = (owner, reason=None, *, ttl_ms=DEFAULT_LOCKDOWN_TTL_MS, code_ttl_ms=None))]
    fn lockdown(
        &self,
        py: Python<'_>,
        owner: String,
        reason: Option<String>,
        ttl_ms: u64,
        code_ttl_ms: Option<u64>,
    ) -> PyResult<Json> {
        Self::wait(
            py,
            lockdown(self.flags(py)?, owner, reason, ttl_ms, code_ttl_ms),
        )
    }

    /// Awaitable twin of `lockdown`.
    #[pyo3(signature = (owner, reason=None, *, ttl_ms=DEFAULT_LOCKDOWN_TTL_MS, code_ttl_ms=None))]
    fn lockdown_async<'py>(
        &self,
        py: Python<'py>,
        owner: String,
        reason: Option<String>,
        ttl_ms: u64,
        code_ttl_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(
            py,
            lockdown(self.flags(py)?, owner, reason, ttl_ms, code_ttl_ms),
        )
    }

    /// Ends lockdown with its unlock code and returns the lockdown flag it cleared (`None`
    /// when it had already expired). Changes nothing and raises `PolicyDeniedError` for a
    /// wrong code, `ConflictError` for an expired one, `NotFoundError` when no code is set and
    /// `InvalidInputError` for an empty one.
    fn unlock(&self, py: Python<'_>, code: String) -> PyResult<Json> {
        Self::wait(py, unlock(self.flags(py)?, code))
    }

    /// Awaitable twin of `unlock`.
    fn unlock_async<'py>(&self, py: Python<'py>, code: String) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, unlock(self.flags(py)?, code))
    }

    /// Replaces the unlock code and returns the new one; the old code stops working. Pass the
    /// current `code` (an expired one counts), or `override_reason` and `who`, which are
    /// recorded with the new code. It lives `ttl_ms`, or as long as the previous code did.
    /// Raises `PolicyDeniedError` for a wrong code, `NotFoundError` when no code is set (or
    /// lockdown is off) and `InvalidInputError` when neither or both are given.
    #[pyo3(signature = (code=None, *, override_reason=None, who=None, ttl_ms=None))]
    fn rotate_unlock_code(
        &self,
        py: Python<'_>,
        code: Option<String>,
        override_reason: Option<String>,
        who: Option<String>,
        ttl_ms: Option<u64>,
    ) -> PyResult<Json> {
        Self::wait(
            py,
            rotate(self.flags(py)?, code, override_reason, who, ttl_ms),
        )
    }

    /// Awaitable twin of `rotate_unlock_code`.
    #[pyo3(signature = (code=None, *, override_reason=None, who=None, ttl_ms=None))]
    fn rotate_unlock_code_async<'py>(
        &self,
        py: Python<'py>,
        code: Option<String>,
        override_reason: Option<String>,
        who: Option<String>,
        ttl_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(
            py,
            rotate(self.flags(py)?, code, override_reason, who, ttl_ms),
        )
    }

    /// Whether lockdown is on (`flag`) and its unlock code's record (`code`: times and
    /// generation, never the code), each `None` when absent.
    fn lockdown_status(&self, py: Python<'_>) -> PyResult<Json> {
        Self::wait(py, status(self.flags(py)?))
    }

    /// Awaitable twin of `lockdown_status`.
    fn lockdown_status_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Self::spawn(py, status(self.flags(py)?))
    }

    fn __repr__(&self) -> String {
        format!("<Flags {:?}>", self.path.display().to_string())
    }
}
