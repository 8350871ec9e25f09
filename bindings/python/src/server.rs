//! `runward.Server`: the core health server running on runward's own threads.

use crate::errors::py_err;
use crate::runtime::{block_on, fork_error, runtime};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use runward::health::server;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running health server, returned by `Health.serve`. Usable as a context manager, which
/// stops it at once on exit.
#[pyclass(module = "runward", name = "Server", frozen)]
pub(crate) struct Server {
    inner: Arc<Mutex<Option<server::Server>>>,
    addr: SocketAddr,
    max_connections: usize,
    drain_ms: u64,
    pid: u32,
}

impl Server {
    pub(crate) fn new(server: server::Server, drain_ms: u64) -> Self {
        Server {
            addr: server.local_addr(),
            max_connections: server.max_connections(),
            inner: Arc::new(Mutex::new(Some(server))),
            drain_ms,
            pid: std::process::id(),
        }
    }

    fn take(&self, py: Python<'_>) -> PyResult<Option<server::Server>> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Server", self.pid));
        }
        Ok(self.inner.lock().unwrap_or_else(|e| e.into_inner()).take())
    }
}

#[pymethods]
impl Server {
    /// The IP address the server listens on.
    #[getter]
    fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port the server listens on (the one picked by the OS for port 0).
    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The most connections the server keeps open at once: `max_connections`, or sized from
    /// the open-files limit.
    #[getter]
    fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// `http://host:port`.
    #[getter]
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the server has not been shut down or closed.
    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The shutdown sequence: readiness fails at once while liveness keeps passing; the
    /// server keeps answering until `Health.mark_drained()` or `drain_ms` passes (default: the
    /// configuration's `[server] drain_ms`), then stops. Blocks with the GIL released; a
    /// second call does nothing.
    #[pyo3(signature = (drain_ms=None))]
    fn shutdown(&self, py: Python<'_>, drain_ms: Option<u64>) -> PyResult<()> {
        let Some(server) = self.take(py)? else {
            return Ok(());
        };
        let drain = Duration::from_millis(drain_ms.unwrap_or(self.drain_ms));
        block_on(py, server.shutdown(drain))?.map_err(py_err)
    }

    /// Awaitable twin of `shutdown`.
    #[pyo3(signature = (drain_ms=None))]
    fn shutdown_async<'py>(
        &self,
        py: Python<'py>,
        drain_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let server = self.take(py)?;
        let drain = Duration::from_millis(drain_ms.unwrap_or(self.drain_ms));
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match server {
                Some(server) => server.shutdown(drain).await.map_err(py_err),
                None => Ok(()),
            }
        })
    }

    /// Stops at once, without the shutdown sequence. A second call does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let Some(mut server) = self.take(py)? else {
            return Ok(());
        };
        block_on(py, server.stop_now())?.map_err(py_err)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Server(url={:?}, running={})", self.url(), self.running())
    }
}
