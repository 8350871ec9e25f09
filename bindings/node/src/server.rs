//! `HealthServer`: the core's standalone health server, running on runward's threads.

use crate::convert::{self, ShutdownOptions, millis};
use crate::error::OrThrow;
use napi::bindgen_prelude::{AsyncBlock, AsyncBlockBuilder};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use runward::health::server::Server;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The running server, shared by the `Health` that started it and the `HealthServer` handle,
/// so it runs until shut down or until both are collected.
pub(crate) type SharedServer = Arc<tokio::sync::Mutex<Option<Server>>>;

/// A referenced thread-safe function over a no-op: while held, the event loop stays alive.
type KeepAlive = ThreadsafeFunction<(), (), (), Status, false, false>;

/// A running health server.
#[napi]
pub struct HealthServer {
    addr: SocketAddr,
    max_connections: usize,
    server: SharedServer,
    keep_alive: Option<KeepAlive>,
    drain: Duration,
    stopping: bool,
}

impl HealthServer {
    pub(crate) fn new(
        server: Server,
        slot: SharedServer,
        keep_alive: KeepAlive,
        drain: Duration,
    ) -> Self {
        let addr = server.local_addr();
        let max_connections = server.max_connections();
        // Fresh slot: nothing else holds the lock yet.
        if let Ok(mut guard) = slot.try_lock() {
            *guard = Some(server);
        }
        HealthServer {
            addr,
            max_connections,
            server: slot,
            keep_alive: Some(keep_alive),
            drain,
            stopping: false,
        }
    }

    pub(crate) fn keep_alive(env: &Env) -> napi::Result<KeepAlive> {
        env.create_function_from_closure::<(), (), _>("runwardKeepAlive", |_| Ok(()))?
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build()
    }
}

#[napi]
impl HealthServer {
    /// The port the server listens on.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.addr.port())
    }

    /// The most connections the server keeps open at once: `maxConnections`, or sized from
    /// the open-files limit.
    #[napi(getter)]
    pub fn max_connections(&self) -> u32 {
        u32::try_from(self.max_connections).unwrap_or(u32::MAX)
    }

    /// The listen address, e.g. `127.0.0.1:41234`.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The core's shutdown sequence: readiness fails at once while liveness keeps passing;
    /// the server answers until `markDrained()` or `drainMs` passes, then stops. Resolves
    /// when it has stopped; calling it again resolves at once.
    #[napi(
        ts_args_type = "options?: ShutdownOptions",
        ts_return_type = "Promise<void>"
    )]
    pub fn shutdown(&mut self, env: Env, options: Option<Value>) -> napi::Result<AsyncBlock<()>> {
        let options: ShutdownOptions =
            convert::options("shutdown options", options).or_throw(&env)?;
        let drain = options.drain_ms.map_or(self.drain, millis);
        let slot = self.server.clone();
        // The pending promise keeps the event loop alive until the server has stopped.
        self.keep_alive = None;
        self.stopping = true;
        AsyncBlockBuilder::build_with_map(
            &env,
            async move {
                let server = slot.lock().await.take();
                Ok(match server {
                    Some(server) => server.shutdown(drain).await,
                    None => Ok(()),
                })
            },
            |env, result: runward::Result<()>| result.or_throw(&env),
        )
    }

    /// Keeps the process alive while the server runs (the default until `shutdown()`).
    #[napi(js_name = "ref")]
    pub fn keep_process_alive(&mut self, env: Env) -> napi::Result<()> {
        if self.keep_alive.is_none() && !self.stopping {
            self.keep_alive = Some(HealthServer::keep_alive(&env)?);
        }
        Ok(())
    }

    /// Lets the process exit while the server runs, like `net.Server.unref()`.
    #[napi]
    pub fn unref(&mut self) {
        self.keep_alive = None;
    }
}
