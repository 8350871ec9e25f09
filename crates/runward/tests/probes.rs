//! The built-in probes against real parts: HTTP and TLS servers on loopback, SQLite files,
//! processes, and a registry built from `runward.toml` text.

use runward::config::Config;
use runward::health::{
    CheckContext, DependencyState, OutageClass, Outcome, Probe, ProbeKind, Status,
};
use runward::policy::OutboundPolicy;
use runward::probes::http::HttpProbe;
use runward::probes::sqlite::SqliteProbe;
use runward::probes::tls_expiry::TlsExpiryProbe;
use runward::probes::{self, BuildContext};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

fn ctx(ms: u64) -> CheckContext {
    CheckContext::new("test", Duration::from_millis(ms))
}

fn build_ctx(dir: &Path) -> BuildContext {
    BuildContext {
        base_dir: dir.to_path_buf(),
        outbound: Arc::new(OutboundPolicy::default()),
    }
}

fn table(text: &str) -> toml::Table {
    toml::from_str(text).expect("test TOML parses")
}

/// Whether any text of the outcome contains `needle`.
fn leaks(outcome: &Outcome, needle: &str) -> bool {
    serde_json::to_string(outcome).unwrap().contains(needle)
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server with keep-alive, answering by path.

type Route = fn(&str) -> (u16, &'static str, String);

struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn serve_http(route: Route) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handle_http(sock, route, log.clone()));
        }
    });
    Server {
        port,
        connections,
        requests,
    }
}

async fn handle_http<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    route: Route,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head (these tests send no bodies).
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 2048];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        log.lock().unwrap().push(head);
        if path == "/hang" {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let (status, extra, body) = route(&path);
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        );
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn api(path: &str) -> (u16, &'static str, String) {
    match path {
        "/ok" => (
            200,
            "",
            r#"{"status":"ok","contract_version":"1.4.0","queue":{"depth":3}}"#.into(),
        ),
        "/down" => (503, "", r#"{"status":"down"}"#.into()),
        "/login" => (401, "", r#"{"error":"unauthorized"}"#.into()),
        "/forbidden" => (403, "", "{}".into()),
        "/garbage" => (200, "", "<html>surprise</html>".into()),
        "/v2" => (
            200,
            "",
            r#"{"status":"ok","contract_version":"2.1.0"}"#.into(),
        ),
        "/degraded" => (
            200,
            "",
            r#"{"status":"degraded","contract_version":"1.2.0"}"#.into(),
        ),
        "/to-private" => (302, "Location: http://10.0.0.1/steal\r\n", String::new()),
        "/to-metadata" => (
            302,
            "Location: http://169.254.169.254/latest/meta-data/\r\n",
            String::new(),
        ),
        "/to-ok" => (302, "Location: /ok\r\n", String::new()),
        _ => (404, "", "{}".into()),
    }
}

fn http(url: &str) -> HttpProbe {
    HttpProbe::new(url, Arc::new(OutboundPolicy::default())).unwrap()
}

fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_pass_checks_pointers_and_contract() {
    let server = serve_http(api).await;
    let probe = http(&server.url("/ok"))
        .json_equals("/status", serde_json::json!("ok"))
        .unwrap()
        .json_equals("/queue/depth", serde_json::json!(3.0))
        .unwrap()
        .json_exists("/error", false)
        .unwrap()
        .version_contract("/contract_version", "^1.2")
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
    assert_eq!(outcome.state, Some(DependencyState::Ready));
    let observed = outcome.observed.as_ref().unwrap();
    assert_eq!(observed.measurement, "responseTime");
    assert_eq!(observed.unit.as_deref(), Some("ms"));
    assert_eq!(outcome.details["contractVersion"], "1.4.0");
    assert_eq!(outcome.details["statusCode"], 200);
}

#[tokio::test]
async fn http_server_errors_and_auth_are_classified() {
    let server = serve_http(api).await;
    let down = http(&server.url("/down")).check(&ctx(3000)).await;
    assert_eq!(down.status, Status::Fail);
    assert_eq!(down.outage, Some(OutageClass::ProviderUnavailable));
    assert!(down.output.as_deref().unwrap().contains("503"), "{down:?}");
    for path in ["/login", "/forbidden"] {
        let auth = http(&server.url(path)).check(&ctx(3000)).await;
        assert_eq!(auth.outage, Some(OutageClass::Auth), "{path}: {auth:?}");
    }
    // A listed status is healthy.
    let accepted = http(&server.url("/login"))
        .expect_status([401])
        .check(&ctx(3000))
        .await;
    assert_eq!(accepted.status, Status::Pass);
}

#[tokio::test]
async fn http_garbage_json_is_malformed_payload() {
    let server = serve_http(api).await;
    let probe = http(&server.url("/garbage"))
        .json_exists("/status", true)
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(
        outcome.outage,
        Some(OutageClass::MalformedPayload),
        "{outcome:?}"
    );
    assert_eq!(outcome.state, Some(DependencyState::MalformedPayload));
    // Without JSON checks the body is not read, so the same answer passes.
    assert_eq!(
        http(&server.url("/garbage")).check(&ctx(3000)).await.status,
        Status::Pass
    );
}

#[tokio::test]
async fn http_version_outside_the_range_is_version_mismatch() {
    let server = serve_http(api).await;
    let probe = http(&server.url("/v2"))
        .version_contract("/contract_version", "^1.2")
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.outage, Some(OutageClass::VersionMismatch));
    assert_eq!(outcome.state, Some(DependencyState::VersionMismatch));
    assert!(outcome.output.unwrap().contains("2.1.0"));
}

#[tokio::test]
async fn http_pointer_mismatch_fails_and_names_the_value() {
    let server = serve_http(api).await;
    let probe = http(&server.url("/degraded"))
        .json_equals("/status", serde_json::json!("ok"))
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(
        outcome.output.as_deref(),
        Some(r#"`/status` is "degraded", expected "ok""#)
    );
}

#[tokio::test]
async fn http_connection_refused() {
    let port = dead_port();
    let outcome = http(&format!("http://127.0.0.1:{port}/readyz"))
        .check(&ctx(3000))
        .await;
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(
        outcome.outage,
        Some(OutageClass::ConnectionRefused),
        "{outcome:?}"
    );
    assert_eq!(outcome.state, Some(DependencyState::Offline));
}

#[tokio::test]
async fn http_unknown_host_is_dns_resolution() {
    // `.invalid` never resolves (RFC 6761).
    let outcome = http("https://runward-probe-test.invalid/readyz")
        .check(&ctx(3000))
        .await;
    assert_eq!(
        outcome.outage,
        Some(OutageClass::DnsResolution),
        "{outcome:?}"
    );
    assert!(
        outcome
            .output
            .unwrap()
            .contains("runward-probe-test.invalid")
    );
}

#[tokio::test]
async fn http_timeout_ends_before_the_deadline() {
    let server = serve_http(api).await;
    let started = Instant::now();
    let outcome = http(&server.url("/hang")).check(&ctx(400)).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.outage, Some(OutageClass::Timeout), "{outcome:?}");
}

#[tokio::test]
async fn http_policy_refuses_private_and_plain_http_public_hosts() {
    // Both are refused before any connection: no packet leaves the machine.
    let plain_private = http("http://10.0.0.1/").check(&ctx(3000)).await;
    assert_eq!(
        plain_private.outage,
        Some(OutageClass::Misconfigured),
        "{plain_private:?}"
    );
    let private = http("https://10.0.0.1/").check(&ctx(3000)).await;
    assert_eq!(
        private.outage,
        Some(OutageClass::Misconfigured),
        "{private:?}"
    );
    assert!(
        private.output.as_deref().unwrap().contains("private"),
        "{private:?}"
    );
    let plain = http("http://example.com/health").check(&ctx(3000)).await;
    assert_eq!(plain.outage, Some(OutageClass::Misconfigured), "{plain:?}");
    assert!(
        plain
            .output
            .as_deref()
            .unwrap()
            .contains("allow_plain_http"),
        "{plain:?}"
    );
    let metadata = http("https://169.254.169.254/latest/meta-data/")
        .check(&ctx(3000))
        .await;
    assert!(
        metadata.output.as_deref().unwrap().contains("metadata"),
        "{metadata:?}"
    );
}

#[tokio::test]
async fn http_redirects_are_rechecked_by_the_policy() {
    let server = serve_http(api).await;
    for path in ["/to-private", "/to-metadata"] {
        let outcome = http(&server.url(path)).check(&ctx(3000)).await;
        assert_eq!(
            outcome.outage,
            Some(OutageClass::Misconfigured),
            "{path}: {outcome:?}"
        );
    }
    let followed = http(&server.url("/to-ok")).check(&ctx(3000)).await;
    assert_eq!(followed.status, Status::Pass, "{followed:?}");
    let paths: Vec<String> = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.lines().next().unwrap().to_owned())
        .collect();
    assert!(paths.iter().any(|l| l.starts_with("GET /ok ")), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|l| l.contains("/steal") || l.contains("meta-data")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn http_header_values_expand_from_the_environment_and_are_never_shown() {
    let home = std::env::var("HOME").expect("HOME is set");
    let server = serve_http(api).await;
    let probe = http(&server.url("/login"))
        .header("X-Home", "home=${HOME}")
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.outage, Some(OutageClass::Auth));
    let head = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("x-home: home={}", home.to_ascii_lowercase())),
        "{head}"
    );
    assert!(!leaks(&outcome, "home="), "{outcome:?}");
    let unset = http(&server.url("/ok"))
        .header("Authorization", "Bearer ${RUNWARD_TEST_UNSET_TOKEN}")
        .unwrap();
    let outcome = unset.check(&ctx(3000)).await;
    assert_eq!(outcome.outage, Some(OutageClass::Misconfigured));
    assert!(outcome.output.unwrap().contains("RUNWARD_TEST_UNSET_TOKEN"));
}

#[tokio::test]
async fn http_probe_reuses_one_connection_pool() {
    let server = serve_http(api).await;
    let probe = http(&server.url("/ok"));
    for _ in 0..4 {
        assert_eq!(probe.check(&ctx(3000)).await.status, Status::Pass);
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "each check opened a new connection"
    );
}

#[tokio::test]
async fn http_query_strings_and_credentials_stay_out_of_outputs() {
    let port = dead_port();
    let url = format!("http://user:hunter2@127.0.0.1:{port}/x?token=sekrit");
    let outcome = http(&url).check(&ctx(3000)).await;
    assert_eq!(outcome.outage, Some(OutageClass::ConnectionRefused));
    assert!(
        !leaks(&outcome, "hunter2") && !leaks(&outcome, "sekrit"),
        "{outcome:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// TLS: a CA and leaf certificates from rcgen, served on loopback with tokio-rustls.

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki() -> Pki {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "runward test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A leaf for `localhost` and 127.0.0.1 valid from `from` to `until` (seconds from now).
fn leaf(
    pki: &Pki,
    from: i64,
    until: i64,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(until);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (vec![cert.der().clone()], der.into())
}

const DAY: i64 = 86_400;

/// Serves TLS on loopback; each connection gets the HTTP routes above.
async fn serve_tls(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(sock).await {
                    handle_http(tls, api, Arc::default()).await;
                }
            });
        }
    });
    port
}

fn write_ca(dir: &Path, pki: &Pki) -> PathBuf {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &pki.ca_pem).unwrap();
    path
}

fn tls_probe(port: u16) -> TlsExpiryProbe {
    TlsExpiryProbe::new("127.0.0.1", port, Arc::new(OutboundPolicy::default()))
        .unwrap()
        .server_name("localhost")
        .unwrap()
}

#[tokio::test]
async fn tls_valid_certificate_passes_with_days_left() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (chain, key) = leaf(&pki, -DAY, 90 * DAY);
    let port = serve_tls(chain, key).await;
    let probe = tls_probe(port)
        .ca_file(&write_ca(dir.path(), &pki))
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
    let observed = outcome.observed.unwrap();
    assert_eq!(observed.measurement, "daysLeft");
    let days = observed.value.as_f64().unwrap();
    assert!((89.0..=90.0).contains(&days), "{days}");
}

#[tokio::test]
async fn tls_expiring_soon_warns() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (chain, key) = leaf(&pki, -DAY, 5 * DAY - 3600);
    let port = serve_tls(chain, key).await;
    let probe = tls_probe(port)
        .ca_file(&write_ca(dir.path(), &pki))
        .unwrap();
    let outcome = probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Warn, "{outcome:?}");
    let text = outcome.output.unwrap();
    assert!(text.contains("expires in 4 day(s)"), "{text}");
    assert_eq!(
        tls_probe(port)
            .ca_file(&write_ca(dir.path(), &pki))
            .unwrap()
            .warn_days(3)
            .check(&ctx(3000))
            .await
            .status,
        Status::Pass
    );
}

#[tokio::test]
async fn tls_expired_certificate_fails_with_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (chain, key) = leaf(&pki, -30 * DAY, -2 * DAY);
    let port = serve_tls(chain, key).await;
    let verified = tls_probe(port)
        .ca_file(&write_ca(dir.path(), &pki))
        .unwrap()
        .check(&ctx(3000))
        .await;
    assert_eq!(verified.status, Status::Fail);
    assert_eq!(verified.outage, Some(OutageClass::Tls));
    assert!(
        verified
            .output
            .as_deref()
            .unwrap()
            .contains("expired 2 day(s) ago"),
        "{verified:?}"
    );
    assert!(verified.observed.unwrap().value.as_f64().unwrap() < 0.0);
    let insecure = tls_probe(port)
        .insecure_skip_verify()
        .check(&ctx(3000))
        .await;
    assert_eq!(
        insecure.status,
        Status::Fail,
        "dates are checked even without verification"
    );
}

#[tokio::test]
async fn tls_untrusted_issuer_fails_unless_verification_is_skipped() {
    let pki = pki();
    let (chain, key) = leaf(&pki, -DAY, 60 * DAY);
    let port = serve_tls(chain, key).await;
    let platform = tls_probe(port).check(&ctx(3000)).await;
    assert_eq!(platform.outage, Some(OutageClass::Tls), "{platform:?}");
    assert!(
        platform
            .output
            .as_deref()
            .unwrap()
            .contains("failed verification"),
        "{platform:?}"
    );
    let insecure = tls_probe(port)
        .insecure_skip_verify()
        .check(&ctx(3000))
        .await;
    assert_eq!(insecure.status, Status::Pass, "{insecure:?}");
}

#[tokio::test]
async fn tls_probe_on_a_plain_port_or_dead_port_fails() {
    // A plain-text server that answers anything with an HTTP error.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let plain = tls_probe(port)
        .insecure_skip_verify()
        .check(&ctx(3000))
        .await;
    assert_eq!(plain.outage, Some(OutageClass::Tls), "{plain:?}");
    let dead = tls_probe(dead_port()).check(&ctx(3000)).await;
    assert_eq!(
        dead.outage,
        Some(OutageClass::ConnectionRefused),
        "{dead:?}"
    );
}

#[tokio::test]
async fn https_probe_trusts_a_ca_file_and_classifies_tls_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let (chain, key) = leaf(&pki, -DAY, 60 * DAY);
    let port = serve_tls(chain, key).await;
    let ca = write_ca(dir.path(), &pki);
    let params: probes::http::Params = table(&format!(
        "url = \"https://localhost:{port}/ok\"\nca_file = \"{}\"\njson_pointer = [{{ pointer = \"/status\", equals = \"ok\" }}]",
        ca.display()
    ))
    .try_into()
    .unwrap();
    let trusted = HttpProbe::from_params(params, &build_ctx(dir.path())).unwrap();
    let outcome = trusted.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
    let untrusted = http(&format!("https://localhost:{port}/ok"))
        .check(&ctx(3000))
        .await;
    assert_eq!(untrusted.outage, Some(OutageClass::Tls), "{untrusted:?}");
}

// ---------------------------------------------------------------------------------------------
// SQLite, processes, files.

#[tokio::test]
async fn sqlite_sees_a_restored_file_and_a_wal_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer.pragma_update(None, "journal_mode", "WAL").unwrap();
    writer
        .execute_batch("CREATE TABLE tickets (id INTEGER PRIMARY KEY); PRAGMA user_version = 4;")
        .unwrap();
    let probe = SqliteProbe::new(&path)
        .min_user_version(4)
        .required_tables(["tickets"]);
    let first = probe.check(&ctx(3000)).await;
    assert_eq!(first.status, Status::Pass, "{first:?}");
    // A writer holding an open transaction does not block the read-only ping.
    writer
        .execute_batch("BEGIN; INSERT INTO tickets DEFAULT VALUES;")
        .unwrap();
    assert_eq!(probe.check(&ctx(3000)).await.status, Status::Pass);
    writer.execute_batch("COMMIT;").unwrap();
    drop(writer);

    // Replace the file with an older schema, as a bad restore would.
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA user_version = 2;")
        .unwrap();
    std::fs::rename(&old, &path).unwrap();
    let _ = std::fs::remove_file(dir.path().join("app.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("app.db-shm"));
    let after = probe.check(&ctx(3000)).await;
    assert_eq!(
        after.outage,
        Some(OutageClass::SchemaUnavailable),
        "{after:?}"
    );
    assert_eq!(after.details["userVersion"], 2);
}

#[tokio::test]
async fn config_probe_reads_an_env_file_and_never_prints_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# app settings\nDATABASE_URL=postgres://app:pa55word@db/app\nWEBHOOK_SECRET=your-api-key\n\
         PUBLIC_URL=http://app.example.com\nALLOWED_ORIGINS=\n",
    )
    .unwrap();
    let built = probes::build(
        "config",
        table(
            r#"
            env_file = ".env"
            process_env = false
            required = ["DATABASE_URL", "WEBHOOK_SECRET", "SMTP_HOST"]
            https_keys = ["PUBLIC_URL"]
            allowlist_keys = ["ALLOWED_ORIGINS"]
            "#,
        ),
        &build_ctx(dir.path()),
    )
    .unwrap();
    let outcome = built.probe.check(&ctx(1000)).await;
    assert_eq!(outcome.status, Status::Fail);
    assert_eq!(outcome.outage, Some(OutageClass::Misconfigured));
    let text = outcome.output.clone().unwrap();
    for key in [
        "SMTP_HOST",
        "WEBHOOK_SECRET",
        "PUBLIC_URL",
        "ALLOWED_ORIGINS",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    for value in ["pa55word", "your-api-key", "app.example.com"] {
        assert!(!leaks(&outcome, value), "{value} leaked: {outcome:?}");
    }
    assert!(built.probe.is_local());
}

#[tokio::test]
async fn command_probe_from_config_runs_in_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "ready").unwrap();
    let built = probes::build(
        "command",
        table("shell = \"grep -q ready marker\""),
        &build_ctx(dir.path()),
    )
    .unwrap();
    assert_eq!(built.probe.check(&ctx(3000)).await.status, Status::Pass);
    let failing = probes::build(
        "command",
        table("argv = [\"cat\", \"absent-file\"]\nexit_code = 0"),
        &build_ctx(dir.path()),
    )
    .unwrap();
    let outcome = failing.probe.check(&ctx(3000)).await;
    assert_eq!(outcome.status, Status::Fail);
    assert!(
        outcome.output.unwrap().contains("absent-file"),
        "the output tail is shown"
    );
}

#[test]
fn every_kind_builds_and_reports_its_component_type() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = build_ctx(dir.path());
    let cases: &[(&str, &str, &str, bool)] = &[
        (
            "http",
            "url = \"https://api.example.com/readyz\"",
            "component",
            false,
        ),
        (
            "tcp",
            "host = \"127.0.0.1\"\nport = 5432",
            "component",
            false,
        ),
        ("dns", "host = \"localhost\"", "component", false),
        ("sqlite", "path = \"app.db\"", "datastore", false),
        ("redis", "host = \"127.0.0.1\"", "datastore", false),
        ("disk", "path = \".\"\nmin_free_percent = 5", "system", true),
        ("path", "path = \"state\"\ncreate = true", "system", true),
        ("state", "path = \".runward\"", "datastore", true),
        (
            "freshness",
            "path = \"hb\"\nmax_file_age_ms = 1000",
            "system",
            true,
        ),
        (
            "tls",
            "host = \"localhost\"\ninsecure_skip_verify = true",
            "component",
            false,
        ),
        ("command", "argv = [\"true\"]", "component", false),
        ("config", "required = [\"PATH\"]", "component", true),
        (
            "counter",
            "counter = \"jobs\"\nwarn_above = 10",
            "component",
            true,
        ),
    ];
    assert_eq!(cases.len(), probes::KINDS.len());
    for (kind, params, component, local) in cases {
        let built =
            probes::build(kind, table(params), &ctx).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(built.probe.component_type(), *component, "{kind}");
        assert_eq!(built.probe.is_local(), *local, "{kind}");
        assert_eq!(built.fixer.is_some(), *kind == "path", "{kind}");
    }
    let err = probes::build("disk", table("path = \".\"\nmin_free_percnt = 5"), &ctx)
        .err()
        .unwrap();
    assert!(err.to_string().contains("min_free_percnt"), "{err}");
}

#[tokio::test]
async fn a_registry_from_config_runs_real_probes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_http(api).await;
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 7;")
        .unwrap();
    std::fs::write(dir.path().join("worker.heartbeat"), "").unwrap();
    let text = format!(
        r#"
        [service]
        id = "probe-test"

        [[checks]]
        name = "api"
        kind = "http"
        url = "{url}"
        version_contract = {{ pointer = "/contract_version", range = ">=1.2, <2" }}
        probes = ["readiness"]

        [[checks]]
        name = "db"
        kind = "sqlite"
        path = "app.db"
        user_version = 7
        probes = ["readiness"]

        [[checks]]
        name = "heartbeat"
        kind = "freshness"
        path = "worker.heartbeat"
        max_file_age_ms = 60000
        probes = ["liveness"]

        [[checks]]
        name = "jobs"
        kind = "counter"
        counter = "jobs_pending"
        fail_above = 100
        missing = "pass"
        probes = ["readiness"]
        "#,
        url = server.url("/ok")
    );
    let config = Config::parse(&text, None, dir.path()).unwrap();
    let registry = config.registry().unwrap();
    registry.refresh_all().await;
    assert_eq!(registry.evaluate(ProbeKind::Readiness).status, Status::Pass);
    assert_eq!(registry.evaluate(ProbeKind::Liveness).status, Status::Pass);
    registry.set_value("jobs_pending", 250.0);
    let jobs = registry.refresh("jobs").await.unwrap();
    assert_eq!(jobs.status, Status::Fail);
    assert_eq!(
        jobs.outcome
            .as_ref()
            .unwrap()
            .observed
            .as_ref()
            .unwrap()
            .value,
        serde_json::json!(250)
    );
    assert_eq!(registry.evaluate(ProbeKind::Readiness).status, Status::Fail);
}
