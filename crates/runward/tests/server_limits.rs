//! The probe server under slow, idle, greedy and malformed clients: every limit of
//! `ServerLimits` closes or refuses what it should, and a new probe is always answered.

use runward::health::endpoints::EndpointOptions;
use runward::health::limits::ServerLimits;
use runward::health::server::{Server, router};
use runward::health::{CheckSpec, Outcome, ProbeKind, Registry, probe_fn};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(limits: ServerLimits) -> Server {
    let registry = Registry::builder()
        .check(
            CheckSpec::new("db", probe_fn(|_| async { Outcome::pass() }))
                .kinds([ProbeKind::Readiness]),
        )
        .build()
        .unwrap();
    registry.refresh_all().await;
    let app = router(registry.clone(), EndpointOptions::default());
    Server::bind_router(registry, "127.0.0.1:0", app, limits)
        .await
        .unwrap()
}

/// Sends one request on `stream` and returns the response head and body as text.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("an answer within 2 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A fresh connection's `/readyz`, and how long it took.
async fn probe(addr: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(
        &mut stream,
        b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    (answer, started.elapsed())
}

/// How long until the server closes `stream` (reads until EOF, at most `within`).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            within.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn limits(header_ms: u64, idle_ms: u64) -> ServerLimits {
    ServerLimits {
        header_read_timeout_ms: header_ms,
        idle_timeout_ms: idle_ms,
        ..ServerLimits::default()
    }
}

#[tokio::test]
async fn a_client_that_trickles_headers_is_cut_off_after_the_header_timeout() {
    let server = server(limits(300, 5_000)).await;
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    slow.write_all(b"GET /readyz HTTP/1.1\r\n").await.unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(3))
        .await
        .expect("the slow client is disconnected");
    assert!(
        closed < Duration::from_millis(1_500),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lives_until_the_idle_timeout_not_the_header_one() {
    let server = server(limits(200, 1_000)).await;
    let mut conn = TcpStream::connect(server.local_addr()).await.unwrap();
    let first = exchange(&mut conn, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Longer than the header timeout, shorter than the idle one: still open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = exchange(&mut conn, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let closed = closed_within(&mut conn, Duration::from_secs(3))
        .await
        .expect("the idle connection is closed");
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_millis(2_000),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_is_closed_after_the_idle_timeout() {
    let server = server(limits(5_000, 300)).await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(3))
        .await
        .expect("the silent connection is closed");
    assert!(
        closed < Duration::from_millis(1_500),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn at_the_connection_limit_the_oldest_idle_connection_makes_room_for_a_probe() {
    let server = server(ServerLimits {
        max_connections: Some(4),
        ..ServerLimits::default()
    })
    .await;
    assert_eq!(server.max_connections(), 4);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..10 {
        let (answer, took) = probe(server.local_addr()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(took < Duration::from_millis(500), "probe took {took:?}");
    }
    // The first connection held was the oldest, so it was closed to make room.
    let closed = closed_within(&mut held[0], Duration::from_secs(1)).await;
    assert!(closed.is_some(), "the oldest connection is still open");
}

#[tokio::test]
async fn oversized_requests_are_refused_and_probes_keep_answering() {
    let server = server(ServerLimits {
        max_header_bytes: 8_192,
        max_body_bytes: 1_024,
        ..ServerLimits::default()
    })
    .await;
    let addr = server.local_addr();

    let mut conn = TcpStream::connect(addr).await.unwrap();
    let huge_header = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = exchange(&mut conn, huge_header.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let mut conn = TcpStream::connect(addr).await.unwrap();
    let long_query = format!(
        "GET /readyz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "q".repeat(1_000_000)
    );
    // The server may close before the whole request is written; either answer is a refusal.
    let _ = conn.write_all(long_query.as_bytes()).await;
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 414"),
        "{answer}"
    );

    let mut conn = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(
        &mut conn,
        b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut conn = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(
        &mut conn,
        b"DELETE /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");

    let mut conn = TcpStream::connect(addr).await.unwrap();
    let answer = exchange(&mut conn, b"BREW /../../etc/passwd HTCPCP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let (answer, _) = probe(addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn limits_out_of_range_are_refused_before_listening() {
    let registry = Registry::builder().build().unwrap();
    let app = router(registry.clone(), EndpointOptions::default());
    let err = Server::bind_router(registry, "127.0.0.1:0", app, limits(0, 1_000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
    assert!(err.message().contains("header_read_timeout_ms"), "{err}");
}
