//! runward's own tokio runtime: one per process, two worker threads named `runward-*`,
//! created on first use and refused after `fork()`.

use crate::errors::new_error;
use pyo3::prelude::*;
use runward::ErrorKind;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Runtime;

struct Owned {
    pid: u32,
    runtime: Runtime,
}

static RUNTIME: OnceLock<Owned> = OnceLock::new();

/// The error raised when an object made before `fork()` is used in the child.
pub(crate) fn fork_error(py: Python<'_>, what: &str, pid: u32) -> PyErr {
    new_error(
        py,
        ErrorKind::Shutdown,
        &format!(
            "{what} belongs to process {pid}, and this process ({}) was forked from it: threads do \
             not survive fork(). Create Health objects in each process after forking (e.g. in the \
             worker's startup), and do not start them before forking",
            std::process::id()
        ),
    )
}

/// The process-wide runtime, created on first use.
///
/// Raises `ShutdownError` in a child process when the runtime was created before `fork()`.
pub(crate) fn runtime(py: Python<'_>) -> PyResult<&'static Runtime> {
    let owned = RUNTIME.get_or_init(|| {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name_fn(|| format!("runward-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
            .enable_all()
            .build()
            .expect("cannot start runward's threads");
        Owned {
            pid: std::process::id(),
            runtime,
        }
    });
    if owned.pid != std::process::id() {
        return Err(fork_error(py, "runward's runtime", owned.pid));
    }
    // Async methods hand their futures to pyo3-async-runtimes, which must use the same runtime.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(&owned.runtime);
    Ok(&owned.runtime)
}

/// Runs `fut` to completion on the runtime with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime(py)?;
    Ok(py.detach(|| runtime.block_on(fut)))
}
