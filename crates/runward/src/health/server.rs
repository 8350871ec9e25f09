//! The standalone health server and an axum [`router`] for hosts that mount it.
//!
//! Both answer through [`answer`](super::endpoints::answer), on runward's own runtime threads.

use super::Registry;
use super::connections;
use super::endpoints::{self, EndpointOptions, ProbeRequest};
use super::limits::ServerLimits;
use crate::{Error, ErrorKind, Result};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone)]
struct AppState {
    registry: Registry,
    options: Arc<EndpointOptions>,
}

/// The health router: `/livez`, `/readyz`, `/readyz/{check}`, `/startupz`, `/healthz`, `/metrics`.
///
/// Mount it in an axum application with `Router::merge`. To let the loopback detail policy
/// see callers' addresses, serve with `into_make_service_with_connect_info::<SocketAddr>()`;
/// without it every caller counts as remote.
pub fn router(registry: Registry, options: EndpointOptions) -> Router {
    let state = AppState {
        registry,
        options: Arc::new(options),
    };
    let mut router = Router::new();
    for path in endpoints::PATHS {
        router = router.route(path, axum::routing::get(answer));
    }
    router.with_state(state)
}

async fn answer(State(state): State<AppState>, req: Request) -> Response {
    let peer_loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
    let probe = ProbeRequest {
        path: req.uri().path(),
        query: req.uri().query(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        peer_loopback,
    };
    let out = endpoints::answer(&state.registry, &state.options, &probe).await;
    let mut response = (
        StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        out.body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(out.content_type),
    );
    if let Ok(value) = HeaderValue::from_str(&out.cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// A running health server.
pub struct Server {
    addr: SocketAddr,
    registry: Registry,
    open_files: Option<u64>,
    max_connections: usize,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Raises the process's soft limit on open files to its hard limit, so that many client
/// connections do not leave probes without a file descriptor. Returns the soft limit now in
/// force (`None`: unlimited). If the limit cannot be raised it stays as it was.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return raised.current;
        }
    }
    limit.current
}

impl Server {
    /// Binds `addr` and serves the health [`router`] under the default [`ServerLimits`].
    /// See [`Server::bind_router`].
    pub async fn bind(registry: Registry, addr: &str, options: EndpointOptions) -> Result<Server> {
        let app = router(registry.clone(), options);
        Server::bind_router(registry, addr, app, ServerLimits::default()).await
    }

    /// Binds `addr` and serves `app` (the health [`router`], possibly with routes of the
    /// host merged in) on the current runtime under `limits`, starting the registry's
    /// periodic checks if they are not running yet.
    ///
    /// First raises the soft limit on open files to the hard one
    /// ([`raise_open_files_limit`]) and sizes the connection limit from it
    /// ([`ServerLimits::connection_limit`]); limits out of range are `InvalidInput`.
    pub async fn bind_router(
        registry: Registry,
        addr: &str,
        app: Router,
        limits: ServerLimits,
    ) -> Result<Server> {
        let open_files = raise_open_files_limit();
        let max_connections = limits.connection_limit(open_files)?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on {addr}: {e}; pick another address"),
            )
            .with_source(e)
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the listen address", e))?;
        registry.start();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(connections::serve(
            listener,
            app,
            limits,
            max_connections,
            rx,
        ));
        Ok(Server {
            addr: local,
            registry,
            open_files,
            max_connections,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// The most connections the server keeps open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The soft open-files limit the server runs under (`None`: unlimited).
    pub fn open_files_limit(&self) -> Option<u64> {
        self.open_files
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shutdown sequence: readiness fails at once while liveness keeps passing; the
    /// server keeps answering until the host marks the registry drained or `drain` passes,
    /// then stops accepting and finishes in-flight requests.
    pub async fn shutdown(mut self, drain: Duration) -> Result<()> {
        self.registry.begin_shutdown();
        let deadline = tokio::time::Instant::now() + drain;
        while !self.registry.is_drained() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20).min(drain)).await;
        }
        self.stop_now().await
    }

    /// Stops at once, without the drain period.
    pub async fn stop_now(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(result) => result.map_err(|e| Error::io("the health server failed", e))?,
                Err(err) => {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("the health server task failed: {err}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
