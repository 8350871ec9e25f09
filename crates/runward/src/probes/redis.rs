//! `redis`: connect, authenticate when a password is given, send `PING`, expect `+PONG`.
//!
//! Speaks the few RESP frames it needs by hand. Passwords never appear in outputs.

use super::BuildContext;
use super::config_check::expand_env;
use super::tcp::{connect, elapsed_ms, soft_deadline};
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::policy::OutboundPolicy;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The default Redis port.
pub const DEFAULT_PORT: u16 = 6379;

/// The parameters of a `redis` check: either `url`, or `host` (and `port`).
///
/// ```toml
/// [[checks]]
/// name = "cache"
/// kind = "redis"
/// url = "redis://:${REDIS_PASSWORD}@127.0.0.1:6379"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `redis://[[user]:password@]host[:port]`; `${ENV_NAME}` references expand when the
    /// check runs, so the password can stay out of the file.
    #[serde(default)]
    pub url: Option<String>,
    /// Host name or address (instead of `url`).
    #[serde(default)]
    pub host: Option<String>,
    /// Port (default 6379).
    #[serde(default)]
    pub port: Option<u16>,
    /// The environment variable holding the password (instead of one in `url`).
    #[serde(default)]
    pub password_env: Option<String>,
}

/// Where to connect and how to authenticate.
#[derive(Clone)]
enum Target {
    /// A URL template, expanded from the environment on every check.
    Url(String),
    /// A host and port, with an optional password variable.
    Host {
        host: String,
        port: u16,
        password_env: Option<String>,
    },
}

struct Resolved {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
}

/// Pings a Redis server; observes the round trip as `responseTime`.
pub struct RedisProbe {
    target: Target,
    policy: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for RedisProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Url(_) => "url".to_owned(),
            Target::Host { host, port, .. } => format!("{host}:{port}"),
        };
        f.debug_struct("RedisProbe")
            .field("target", &target)
            .finish()
    }
}

impl RedisProbe {
    /// A probe for `host:port` without authentication.
    pub fn new(host: impl Into<String>, port: u16, policy: Arc<OutboundPolicy>) -> Result<Self> {
        let host = host.into();
        if host.is_empty() {
            return Err(Error::config("`host` is empty"));
        }
        policy.check_host(&host)?;
        Ok(RedisProbe {
            target: Target::Host {
                host,
                port,
                password_env: None,
            },
            policy,
        })
    }

    /// A probe for a `redis://` URL, which may reference `${ENV_NAME}` variables.
    pub fn from_url(url: impl Into<String>, policy: Arc<OutboundPolicy>) -> Result<Self> {
        let url = url.into();
        if !url.starts_with("redis://") {
            let scheme = url.split("://").next().unwrap_or("");
            return Err(Error::config(format!(
                "`url` must start with redis:// (got scheme `{scheme}`)"
            )));
        }
        Ok(RedisProbe {
            target: Target::Url(url),
            policy,
        })
    }

    /// Authenticates with the password held in the environment variable `name`.
    pub fn password_env(mut self, name: impl Into<String>) -> Self {
        if let Target::Host { password_env, .. } = &mut self.target {
            *password_env = Some(name.into());
        }
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        match (params.url, params.host) {
            (Some(_), Some(_)) => Err(Error::config("`url` and `host` are both set: keep one")),
            (None, None) => Err(Error::config("`url` or `host` is required")),
            (Some(url), None) => {
                if params.port.is_some() || params.password_env.is_some() {
                    return Err(Error::config(
                        "`port` and `password_env` go with `host`, not with `url`",
                    ));
                }
                RedisProbe::from_url(url, ctx.outbound.clone())
            }
            (None, Some(host)) => {
                let probe = RedisProbe::new(
                    host,
                    params.port.unwrap_or(DEFAULT_PORT),
                    ctx.outbound.clone(),
                )?;
                Ok(match params.password_env {
                    Some(name) => probe.password_env(name),
                    None => probe,
                })
            }
        }
    }

    fn resolve(&self) -> std::result::Result<Resolved, String> {
        match &self.target {
            Target::Host {
                host,
                port,
                password_env,
            } => {
                let password = match password_env {
                    Some(name) => {
                        Some(std::env::var(name).map_err(|_| format!("`{name}` is not set"))?)
                    }
                    None => None,
                };
                Ok(Resolved {
                    host: host.clone(),
                    port: *port,
                    username: None,
                    password,
                })
            }
            Target::Url(template) => {
                let expanded = expand_env(template).map_err(|e| format!("`url` references {e}"))?;
                let url = reqwest::Url::parse(&expanded)
                    .map_err(|e| format!("`url` is not a valid URL: {e}"))?;
                let host = url.host_str().ok_or("`url` has no host")?.to_owned();
                let decode = |s: &str| percent_decode(s);
                let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
                let password = url.password().map(decode);
                Ok(Resolved {
                    host,
                    port: url.port().unwrap_or(DEFAULT_PORT),
                    username,
                    password,
                })
            }
        }
    }
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a command as a RESP array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Longest reply line read; `PING` and `AUTH` answer with a few bytes.
const MAX_REPLY: usize = 1024;

/// Reads one simple reply line (`+OK`, `-ERR ...`), without the CRLF.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(reader, MAX_REPLY as u64);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Classifies an error reply (`-NOAUTH`, `-WRONGPASS`, `-LOADING`, ...).
fn error_reply(step: &str, reply: &str) -> Outcome {
    let text = reply.trim_start_matches('-');
    let code = text.split_whitespace().next().unwrap_or("");
    // Replies can echo arguments in some servers; show only the error code and a short text.
    let shown: String = text.chars().take(120).collect();
    match code {
        "NOAUTH" | "WRONGPASS" | "NOPERM" => {
            Outcome::outage(OutageClass::Auth, format!("{step} refused: {code}"))
                .with_remediation("check the Redis password (the check's url or password_env)")
        }
        "LOADING" | "MASTERDOWN" | "BUSY" | "TRYAGAIN" => {
            Outcome::outage(OutageClass::ProviderUnavailable, format!("{step}: {shown}"))
        }
        _ if reply.starts_with('-') => {
            if step == "AUTH" {
                Outcome::outage(OutageClass::Auth, format!("AUTH refused: {code}"))
            } else {
                Outcome::outage(OutageClass::ProviderUnavailable, format!("{step}: {shown}"))
            }
        }
        _ => Outcome::outage(
            OutageClass::MalformedPayload,
            format!("{step}: unexpected reply (not a Redis server?)"),
        ),
    }
}

#[async_trait]
impl Probe for RedisProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let target = match self.resolve() {
            Ok(target) => target,
            Err(text) => return Outcome::outage(OutageClass::Misconfigured, text),
        };
        let shown = format!("{}:{}", target.host, target.port);
        let deadline = soft_deadline(ctx);
        let started = Instant::now();
        let stream = match connect(&self.policy, &target.host, target.port, deadline).await {
            Ok(stream) => stream,
            Err(err) => return err.outcome(&shown),
        };
        let exchange = async {
            let mut stream = BufReader::new(stream);
            if let Some(password) = &target.password {
                let auth = match &target.username {
                    Some(user) => command(&["AUTH", user, password]),
                    None => command(&["AUTH", password]),
                };
                stream.get_mut().write_all(&auth).await?;
                let reply = read_reply(&mut stream).await?;
                if reply != "+OK" {
                    return Ok(Err(error_reply("AUTH", &reply)));
                }
            }
            stream.get_mut().write_all(&command(&["PING"])).await?;
            let reply = read_reply(&mut stream).await?;
            Ok::<_, std::io::Error>(if reply == "+PONG" {
                Ok(())
            } else {
                Err(error_reply("PING", &reply))
            })
        };
        match tokio::time::timeout_at(deadline.into(), exchange).await {
            Err(_) => Outcome::outage(
                OutageClass::Timeout,
                format!("{shown} did not answer PING before the deadline"),
            ),
            Ok(Err(err)) => Outcome::outage(OutageClass::from_io(&err), format!("{shown}: {err}")),
            Ok(Ok(Err(outcome))) => outcome,
            Ok(Ok(Ok(()))) => Outcome::pass()
                .with_observed("responseTime", elapsed_ms(started), Some("ms"))
                .with_state(DependencyState::Ready),
        }
    }

    fn component_type(&self) -> &str {
        "datastore"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    #[test]
    fn encodes_resp_arrays() {
        assert_eq!(command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            command(&["AUTH", "pw"]),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("plain%"), "plain%");
    }

    #[test]
    fn error_replies_are_classified() {
        assert_eq!(
            error_reply("PING", "-NOAUTH Authentication required.").outage,
            Some(OutageClass::Auth)
        );
        assert_eq!(
            error_reply("AUTH", "-ERR invalid password").outage,
            Some(OutageClass::Auth)
        );
        assert_eq!(
            error_reply("PING", "-LOADING loading").outage,
            Some(OutageClass::ProviderUnavailable)
        );
        assert_eq!(
            error_reply("PING", "HTTP/1.1 400").outage,
            Some(OutageClass::MalformedPayload)
        );
    }

    /// A one-connection fake Redis that requires `password` when given.
    async fn fake_redis(password: Option<&'static str>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut authed = password.is_none();
            let mut buf = vec![0u8; 256];
            loop {
                let n = sock.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let reply: &[u8] = if text.contains("AUTH") {
                    if password.is_some_and(|p| text.contains(&format!("\r\n{p}\r\n"))) {
                        authed = true;
                        b"+OK\r\n"
                    } else {
                        b"-WRONGPASS invalid username-password pair\r\n"
                    }
                } else if !authed {
                    b"-NOAUTH Authentication required.\r\n"
                } else {
                    b"+PONG\r\n"
                };
                sock.write_all(reply).await.unwrap();
            }
        });
        port
    }

    fn ctx() -> CheckContext {
        CheckContext::new("redis", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn ping_pong_passes() {
        let port = fake_redis(None).await;
        let outcome = RedisProbe::new("127.0.0.1", port, Arc::default())
            .unwrap()
            .check(&ctx())
            .await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.observed.unwrap().measurement, "responseTime");
    }

    #[tokio::test]
    async fn password_from_url_authenticates_and_is_never_shown() {
        let port = fake_redis(Some("s3cr3t-pw")).await;
        let probe = RedisProbe::from_url(
            format!("redis://:s3cr3t-pw@127.0.0.1:{port}"),
            Arc::default(),
        )
        .unwrap();
        assert_eq!(probe.check(&ctx()).await.status, Status::Pass);
        assert!(!format!("{probe:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn wrong_or_missing_password_is_auth() {
        let port = fake_redis(Some("right")).await;
        let probe = RedisProbe::from_url(
            format!("redis://:wrong-pw@127.0.0.1:{port}"),
            Arc::default(),
        )
        .unwrap();
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.outage, Some(OutageClass::Auth), "{outcome:?}");
        assert!(
            !serde_json::to_string(&outcome)
                .unwrap()
                .contains("wrong-pw")
        );
        let port = fake_redis(Some("right")).await;
        let outcome = RedisProbe::new("127.0.0.1", port, Arc::default())
            .unwrap()
            .check(&ctx())
            .await;
        assert_eq!(outcome.outage, Some(OutageClass::Auth));
    }

    #[test]
    fn params_need_exactly_one_target() {
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        let none: Params = toml::from_str("port = 1").unwrap();
        assert!(RedisProbe::from_params(none, &ctx).is_err());
        let https: Params = toml::from_str("url = \"https://x\"").unwrap();
        assert!(
            RedisProbe::from_params(https, &ctx)
                .unwrap_err()
                .to_string()
                .contains("redis://")
        );
    }
}
