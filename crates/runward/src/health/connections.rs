//! The probe server's accept loop: HTTP/1.1 connections under [`ServerLimits`].
//!
//! Each connection has a watchdog. Once a client starts sending a request it has
//! `header_read_timeout` to finish the headers; a connection with no request in flight and
//! nothing sent is closed after `idle_timeout`. At the connection limit, the connections that
//! have been idle longest are closed to make room, so a new probe connection is always
//! accepted; a new one is refused only when every open connection has a request in flight, or
//! when the closed ones have not released their descriptors within [`CLOSE_WAIT`].

use super::limits::ServerLimits;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tower_service::Service;

/// How long requests in flight may take to finish once the server stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The longest the accept loop waits for evicted sockets to close.
const CLOSE_WAIT: Duration = Duration::from_millis(100);

/// Pause after an accept error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// [`Activity::ask`]: serve on.
const KEEP: u8 = 0;
/// [`Activity::ask`]: close now, to make room for a new connection.
const EVICT: u8 = 1;
/// [`Activity::ask`]: the server stops; finish the request in flight, then close.
const FINISH: u8 = 2;

/// "No such time" in the millisecond fields of [`Activity`].
const NEVER: u64 = u64::MAX;

/// What the watchdog of one connection needs to know, updated by its reads and requests
/// with a few relaxed atomics: nothing on the request path wakes the watchdog.
struct Activity {
    epoch: Instant,
    /// Requests being answered.
    busy: AtomicU32,
    /// When the connection was accepted or its last request answered (ms since `epoch`).
    settled_ms: AtomicU64,
    /// When the first byte of the next request arrived (ms since `epoch`), or [`NEVER`].
    pending_ms: AtomicU64,
    /// What the server asks of this connection: [`KEEP`], [`EVICT`] or [`FINISH`].
    ask: AtomicU8,
    /// Wakes the connection's task when `ask` changes.
    asked: AtomicWaker,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        Activity {
            epoch,
            busy: AtomicU32::new(0),
            settled_ms: AtomicU64::new(Self::ms_since(epoch)),
            pending_ms: AtomicU64::new(NEVER),
            ask: AtomicU8::new(KEEP),
            asked: AtomicWaker::new(),
        }
    }

    fn ms_since(epoch: Instant) -> u64 {
        epoch.elapsed().as_millis() as u64
    }

    fn received(&self) {
        if self.busy.load(Ordering::Relaxed) == 0
            && self.pending_ms.load(Ordering::Relaxed) == NEVER
        {
            self.pending_ms
                .store(Self::ms_since(self.epoch), Ordering::Relaxed);
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.pending_ms.store(NEVER, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// When the watchdog closes the connection, unless something happens first.
    fn deadline(&self, limits: &ServerLimits) -> Option<Instant> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let pending = self.pending_ms.load(Ordering::Relaxed);
        let (since, allowed) = if pending == NEVER {
            (
                self.settled_ms.load(Ordering::Relaxed),
                limits.idle_timeout(),
            )
        } else {
            (pending, limits.header_read_timeout())
        };
        Some(self.epoch + Duration::from_millis(since) + allowed)
    }

    /// Asks the connection's task to [`EVICT`] or [`FINISH`].
    fn ask(&self, what: u8) {
        self.ask.store(what, Ordering::Release);
        self.asked.wake();
    }

    /// Resolves to what the server asked once it asks something. Lock-free, so polling it on
    /// every wake of the connection's task costs next to nothing.
    fn asked(&self) -> impl Future<Output = u8> + '_ {
        std::future::poll_fn(move |cx| {
            let what = self.ask.load(Ordering::Acquire);
            if what != KEEP {
                return Poll::Ready(what);
            }
            self.asked.register(cx.waker());
            match self.ask.load(Ordering::Acquire) {
                KEEP => Poll::Pending,
                what => Poll::Ready(what),
            }
        })
    }

    fn idle_since(&self) -> Option<u64> {
        (self.busy.load(Ordering::Relaxed) == 0).then(|| self.settled_ms.load(Ordering::Relaxed))
    }
}

/// A request in flight; its drop settles the connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .settled_ms
            .store(Activity::ms_since(activity.epoch), Ordering::Relaxed);
        activity.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that tells its [`Activity`] when bytes arrive.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The open connections, for the limit and for choosing whom to evict.
struct Table {
    epoch: Instant,
    /// The connections not evicted, by id, and the last id given.
    open: Mutex<(u64, HashMap<u64, Arc<Activity>>)>,
    /// Sockets open, evicted ones included until their task has closed them.
    sockets: AtomicUsize,
    /// Signalled whenever a socket closes.
    closed: Notify,
}

impl Table {
    /// Connections open and not evicted.
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    fn insert(&self) -> (u64, Arc<Activity>) {
        self.sockets.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, activity.clone());
        (id, activity)
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&id);
    }

    /// Closes up to `count` connections, those idle longest; returns how many. None when
    /// every connection has a request in flight.
    fn evict_idle_longest(&self, count: usize) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mut idle: Vec<(u64, u64)> = open
            .1
            .iter()
            .filter_map(|(id, a)| a.idle_since().map(|since| (since, *id)))
            .collect();
        let count = count.min(idle.len());
        if count == 0 {
            return 0;
        }
        idle.select_nth_unstable(count - 1);
        for (_, id) in &idle[..count] {
            if let Some(activity) = open.1.remove(id) {
                activity.ask(EVICT);
            }
        }
        count
    }
}

/// Ends a connection's accounting when its task ends, however it ends: out of the table (if
/// not evicted already) and out of the count of open sockets.
struct Registered {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(self.id);
        self.table.sockets.fetch_sub(1, Ordering::Relaxed);
        self.table.closed.notify_one();
    }
}

/// Accepts connections until `stop` fires, then lets requests in flight finish (at most
/// [`STOP_GRACE`]) and closes the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    max_connections: usize,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let table = Arc::new(Table {
        epoch: Instant::now(),
        open: Mutex::new((0, HashMap::new())),
        sockets: AtomicUsize::new(0),
        closed: Notify::new(),
    });
    // At the limit, this many of the connections idle longest are closed at once, so that
    // the next connections find room without a scan each.
    let eviction_batch = (max_connections / 32).max(1);
    // Evicted sockets close as soon as their tasks run; with this many open, the loop waits
    // for them before it accepts more, so the process never runs out of descriptors.
    let hard_cap = max_connections + (super::limits::FD_HEADROOM as usize / 4);
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                if !is_per_connection(&err) {
                    tracing::warn!("the health server cannot accept a connection: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        if table.len() >= max_connections && !make_room(&table, eviction_batch, hard_cap).await {
            // Every open connection has a request in flight, or the evicted ones still hold
            // their descriptors: refuse this one.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, activity) = table.insert();
        let registered = Registered {
            table: table.clone(),
            id,
        };
        tasks.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits.clone(),
            registered,
            activity,
        ));
    }
    drop(listener);
    for activity in table
        .open
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .1
        .values()
    {
        activity.ask(FINISH);
    }
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(())
}

/// Closes the connections idle longest and waits, at most [`CLOSE_WAIT`], until fewer than
/// `hard_cap` sockets are open. False when no connection could be closed or the sockets did
/// not close in time.
async fn make_room(table: &Table, batch: usize, hard_cap: usize) -> bool {
    if table.evict_idle_longest(batch) == 0 {
        return false;
    }
    let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    while table.sockets.load(Ordering::Relaxed) >= hard_cap {
        if tokio::time::timeout_at(deadline, table.closed.notified())
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Errors of one connection only, after which accepting goes on at once.
fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Arc<ServerLimits>,
    registered: Registered,
    activity: Arc<Activity>,
) {
    let _registered = registered;
    let io = TokioIo::new(Tracked {
        stream,
        activity: activity.clone(),
    });
    let max_body = limits.max_body_bytes;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = activity.begin();
            let app = app.clone();
            async move {
                let response = respond(app, req, peer, max_body).await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // The watchdog is never woken by requests: it wakes at the current deadline, or after
    // the header timeout at the latest (a request may have started, moving the deadline
    // earlier), and reads the connection's state then.
    loop {
        let now = Instant::now();
        let latest = now + limits.header_read_timeout();
        let wake = activity.deadline(&limits).map_or(latest, |d| d.min(latest));
        tokio::select! {
            biased;
            _ = conn.as_mut() => return,
            what = activity.asked() => {
                if what == FINISH {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
                return;
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return;
                }
            }
        }
    }
}

/// Answers one request through the router, with the body limit applied and the caller's
/// address passed as [`ConnectInfo`].
async fn respond(
    mut app: Router,
    req: Request<Incoming>,
    peer: SocketAddr,
    max_body: usize,
) -> Response<Body> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        let mut response = Response::new(Body::from(format!(
            "request body over the limit of {max_body} bytes\n"
        )));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let mut req = req.map(|body| {
        if hyper::body::Body::is_end_stream(&body) {
            // No body (a probe's GET): nothing to limit, and an empty body costs no allocation.
            Body::empty()
        } else {
            Body::new(http_body_util::Limited::new(body, max_body))
        }
    });
    req.extensions_mut().insert(ConnectInfo(peer));
    match app.call(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
