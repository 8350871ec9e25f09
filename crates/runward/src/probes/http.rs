//! `http`: call an HTTP(S) endpoint and check its status, JSON body and version contract.
//!
//! Every request obeys the outbound policy: the URL is checked before the request, names
//! resolve through a resolver that refuses private and metadata addresses, redirects are
//! re-checked, and proxies from the environment are ignored (they would bypass the checks).
//! Each probe keeps one [`reqwest::Client`], so connections are pooled across checks.

use super::BuildContext;
use super::config_check::expand_env;
use super::tcp::{NetError, allowed_addrs, elapsed_ms, soft_deadline};
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::policy::{OutboundPolicy, redact_url};
use crate::{Error, ErrorKind, Result};
use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest response body read for JSON checks.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 5;

/// The parameters of an `http` check.
///
/// ```toml
/// [[checks]]
/// name = "search-api"
/// kind = "http"
/// url = "https://search.internal.example/readyz"
/// headers = { Authorization = "Bearer ${SEARCH_TOKEN}" }
/// json_pointer = [{ pointer = "/status", equals = "ok" }]
/// version_contract = { pointer = "/contract_version", range = "^1.2" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The URL to call (`https://`, or `http://` on loopback unless the policy allows it).
    pub url: String,
    /// The HTTP method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Statuses that mean healthy: one code or a list. Default: any 2xx.
    #[serde(default)]
    pub expect_status: Option<StatusList>,
    /// Request headers. Values may reference `${ENV_NAME}`; they are never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A request body (sent as is).
    #[serde(default)]
    pub body: Option<String>,
    /// Checks on the JSON response body, each `{ pointer, equals }` or `{ pointer, exists }`.
    #[serde(default)]
    pub json_pointer: Vec<JsonCheck>,
    /// A version the body must carry, within a semver range.
    #[serde(default)]
    pub version_contract: Option<VersionContract>,
    /// A PEM file of root certificates to trust instead of the platform's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// One status code or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum StatusList {
    /// A single code.
    One(u16),
    /// Any of these codes.
    Many(Vec<u16>),
}

impl StatusList {
    fn codes(&self) -> Vec<u16> {
        match self {
            StatusList::One(code) => vec![*code],
            StatusList::Many(codes) => codes.clone(),
        }
    }
}

/// A check on one value of the JSON body, addressed by an RFC 6901 pointer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonCheck {
    /// The JSON pointer, e.g. `/status` or `/checks/0/ok`.
    pub pointer: String,
    /// The value must equal this (numbers compare by value).
    #[serde(default)]
    pub equals: Option<toml::Value>,
    /// The value must exist (`true`, the default without `equals`) or be absent (`false`).
    #[serde(default)]
    pub exists: Option<bool>,
}

/// The body must carry a version inside a semver range.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VersionContract {
    /// The JSON pointer to the version, e.g. `/contract_version`.
    pub pointer: String,
    /// The accepted range, e.g. `^1.2` or `>=1.4, <3`.
    pub range: String,
}

#[derive(Debug, Clone)]
enum Expectation {
    Equals(Value),
    Exists(bool),
}

#[derive(Debug, Clone)]
struct PointerRule {
    pointer: String,
    expectation: Expectation,
}

#[derive(Debug, Clone)]
struct Contract {
    pointer: String,
    range: semver::VersionReq,
}

/// Calls an HTTP(S) endpoint; observes the call's duration as `responseTime`.
pub struct HttpProbe {
    client: reqwest::Client,
    url: Url,
    method: Method,
    expect_status: Option<Vec<u16>>,
    headers: Vec<(HeaderName, String)>,
    body: Option<String>,
    rules: Vec<PointerRule>,
    contract: Option<Contract>,
    policy: Arc<OutboundPolicy>,
}

impl fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProbe")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HttpProbe {
    /// A `GET` probe for `url` that passes on any 2xx answer, under `policy`.
    pub fn new(url: &str, policy: Arc<OutboundPolicy>) -> Result<Self> {
        HttpProbe::build(
            Params {
                url: url.to_owned(),
                method: default_method(),
                expect_status: None,
                headers: BTreeMap::new(),
                body: None,
                json_pointer: Vec::new(),
                version_contract: None,
                ca_file: None,
            },
            policy,
            None,
        )
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        let ca_file = params.ca_file.as_ref().map(|p| ctx.resolve(p));
        HttpProbe::build(params, ctx.outbound.clone(), ca_file)
    }

    /// Accepts only these status codes.
    pub fn expect_status(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.expect_status = Some(codes.into_iter().collect());
        self
    }

    /// Adds a header; the value may reference `${ENV_NAME}` and is never shown.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(format!("`headers` has an invalid header name `{name}`")))?;
        self.headers.push((name, value.into()));
        Ok(self)
    }

    /// Requires the JSON value at `pointer` to equal `value`.
    pub fn json_equals(mut self, pointer: &str, value: Value) -> Result<Self> {
        check_pointer(pointer)?;
        self.rules.push(PointerRule {
            pointer: pointer.to_owned(),
            expectation: Expectation::Equals(value),
        });
        Ok(self)
    }

    /// Requires the JSON value at `pointer` to exist (or, with `false`, to be absent).
    pub fn json_exists(mut self, pointer: &str, exists: bool) -> Result<Self> {
        check_pointer(pointer)?;
        self.rules.push(PointerRule {
            pointer: pointer.to_owned(),
            expectation: Expectation::Exists(exists),
        });
        Ok(self)
    }

    /// Requires the version at `pointer` to be inside the semver `range`.
    pub fn version_contract(mut self, pointer: &str, range: &str) -> Result<Self> {
        check_pointer(pointer)?;
        let range = semver::VersionReq::parse(range).map_err(|e| {
            Error::config(format!(
                "`version_contract.range` `{range}` is not a semver range: {e}"
            ))
        })?;
        self.contract = Some(Contract {
            pointer: pointer.to_owned(),
            range,
        });
        Ok(self)
    }

    fn build(
        params: Params,
        policy: Arc<OutboundPolicy>,
        ca_file: Option<PathBuf>,
    ) -> Result<Self> {
        let url = Url::parse(&params.url)
            .map_err(|e| Error::config(format!("`url` is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "`url` has scheme `{}`: expected http or https",
                url.scheme()
            )));
        }
        if url.host_str().is_none() {
            return Err(Error::config("`url` has no host"));
        }
        let method =
            Method::from_bytes(params.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                Error::config(format!(
                    "`method` `{}` is not an HTTP method",
                    params.method
                ))
            })?;
        let expect_status = match params.expect_status {
            Some(list) => {
                let codes = list.codes();
                if codes.is_empty() || codes.iter().any(|c| StatusCode::from_u16(*c).is_err()) {
                    return Err(Error::config(
                        "`expect_status` must hold status codes from 100 to 999",
                    ));
                }
                Some(codes)
            }
            None => None,
        };
        let client = client(&policy, ca_file.as_deref())?;
        let mut probe = HttpProbe {
            client,
            url,
            method,
            expect_status,
            headers: Vec::new(),
            body: params.body,
            rules: Vec::new(),
            contract: None,
            policy,
        };
        for (name, value) in params.headers {
            probe = probe.header(&name, value)?;
        }
        for check in params.json_pointer {
            probe = match (check.equals, check.exists) {
                (Some(_), Some(_)) => {
                    return Err(Error::config(format!(
                        "`json_pointer` `{}` sets both `equals` and `exists`: keep one",
                        check.pointer
                    )));
                }
                (Some(value), None) => probe.json_equals(&check.pointer, toml_to_json(value))?,
                (None, exists) => probe.json_exists(&check.pointer, exists.unwrap_or(true))?,
            };
        }
        if let Some(contract) = params.version_contract {
            probe = probe.version_contract(&contract.pointer, &contract.range)?;
        }
        Ok(probe)
    }

    fn needs_body(&self) -> bool {
        !self.rules.is_empty() || self.contract.is_some()
    }

    fn target(&self) -> String {
        format!("{} {}", self.method, redact_url(&self.url))
    }

    async fn call(&self, deadline: Instant) -> Outcome {
        let started = Instant::now();
        if let Err(err) = self.policy.check_url(&self.url) {
            return policy_outcome(&err);
        }
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .timeout(timeout);
        for (name, template) in &self.headers {
            let value = match expand_env(template) {
                Ok(value) => value,
                Err(why) => {
                    return Outcome::outage(
                        OutageClass::Misconfigured,
                        format!("header `{name}` references {why}"),
                    )
                    .with_remediation("set the variable in the service's environment");
                }
            };
            let Ok(mut value) = HeaderValue::from_str(&value) else {
                return Outcome::outage(
                    OutageClass::Misconfigured,
                    format!(
                        "header `{name}` has a value that is not valid in a header (e.g. a newline)"
                    ),
                );
            };
            value.set_sensitive(true);
            request = request.header(name.clone(), value);
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return error_outcome(&self.target(), err.without_url()),
        };
        let status = response.status();
        let status_ok = match &self.expect_status {
            Some(codes) => codes.contains(&status.as_u16()),
            None => status.is_success(),
        };
        if !status_ok {
            return status_outcome(&self.target(), status, self.expect_status.as_deref())
                .with_observed("responseTime", elapsed_ms(started), Some("ms"))
                .with_detail("statusCode", status.as_u16());
        }
        let mut contract_version = None;
        if self.needs_body() {
            let body = match read_capped(&mut response).await {
                Ok(body) => body,
                Err(BodyError::TooLarge) => {
                    return Outcome::outage(
                        OutageClass::MalformedPayload,
                        format!(
                            "{} answered with a body larger than {} bytes",
                            self.target(),
                            MAX_BODY
                        ),
                    );
                }
                Err(BodyError::Read(err)) => {
                    return error_outcome(&self.target(), err.without_url());
                }
            };
            let json: Value = match serde_json::from_slice(&body) {
                Ok(json) => json,
                Err(err) => {
                    return Outcome::outage(
                        OutageClass::MalformedPayload,
                        format!(
                            "{} answered with a body that is not JSON: {err}",
                            self.target()
                        ),
                    )
                    .with_detail("statusCode", status.as_u16());
                }
            };
            if let Some(outcome) = self.check_rules(&json) {
                return outcome
                    .with_observed("responseTime", elapsed_ms(started), Some("ms"))
                    .with_detail("statusCode", status.as_u16());
            }
            if let Some(contract) = &self.contract {
                match check_contract(contract, &json) {
                    Ok(version) => contract_version = Some(version),
                    Err(outcome) => {
                        return (*outcome)
                            .with_observed("responseTime", elapsed_ms(started), Some("ms"))
                            .with_detail("statusCode", status.as_u16());
                    }
                }
            }
        }
        let mut outcome = Outcome::pass()
            .with_observed("responseTime", elapsed_ms(started), Some("ms"))
            .with_state(DependencyState::Ready)
            .with_detail("statusCode", status.as_u16());
        if let Some(version) = contract_version {
            outcome = outcome.with_detail("contractVersion", version.to_string());
        }
        outcome
    }

    /// The first failing JSON pointer rule, as an outcome.
    fn check_rules(&self, json: &Value) -> Option<Outcome> {
        for rule in &self.rules {
            let found = json.pointer(&rule.pointer);
            match (&rule.expectation, found) {
                (Expectation::Exists(true), None) => {
                    return Some(
                        Outcome::fail(format!("`{}` is missing from the body", rule.pointer))
                            .with_state(DependencyState::Degraded),
                    );
                }
                (Expectation::Exists(false), Some(_)) => {
                    return Some(
                        Outcome::fail(format!("`{}` is present in the body", rule.pointer))
                            .with_state(DependencyState::Degraded),
                    );
                }
                (Expectation::Equals(want), found)
                    if !found.is_some_and(|v| json_equal(v, want)) =>
                {
                    let got = found
                        .map(short_json)
                        .unwrap_or_else(|| "missing".to_owned());
                    return Some(
                        Outcome::fail(format!(
                            "`{}` is {got}, expected {}",
                            rule.pointer,
                            short_json(want)
                        ))
                        .with_state(DependencyState::Degraded),
                    );
                }
                _ => {}
            }
        }
        None
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let deadline = soft_deadline(ctx);
        match tokio::time::timeout_at(deadline.into(), self.call(deadline)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::outage(
                OutageClass::Timeout,
                format!("{} did not answer before the deadline", self.target()),
            ),
        }
    }
}

fn check_pointer(pointer: &str) -> Result<()> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(Error::config(format!(
            "JSON pointer `{pointer}` must start with `/` (e.g. `/status`)"
        )))
    }
}

/// Builds the one client of a probe (or of an `http` step): preconfigured rustls, the policy
/// resolver, policy-checked redirects, no proxies.
pub(crate) fn client(
    policy: &Arc<OutboundPolicy>,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client> {
    let mut tls = match ca_file {
        Some(path) => crate::tls::config_with_verifier(crate::tls::verifier_from_ca_file(path)?),
        None => (*crate::tls::client_config()?).clone(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let redirect_policy = policy.clone();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(PolicyResolver {
            policy: policy.clone(),
        })
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                let err = Error::new(
                    ErrorKind::PolicyDenied,
                    format!("more than {MAX_REDIRECTS} redirects"),
                );
                return attempt.error(err);
            }
            match redirect_policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(err) => attempt.error(err),
            }
        }))
        .no_proxy()
        .user_agent(concat!("runward/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })
}

/// Resolves names with tokio and drops the addresses the outbound policy refuses.
struct PolicyResolver {
    policy: Arc<OutboundPolicy>,
}

/// A resolver failure, found again in the error chain to classify it.
#[derive(Debug)]
enum ResolveError {
    Lookup {
        host: String,
        source: std::io::Error,
    },
    Refused(Error),
    Empty {
        host: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Lookup { host, source } => write!(f, "cannot resolve {host}: {source}"),
            ResolveError::Refused(err) => f.write_str(err.message()),
            ResolveError::Empty { host } => write!(f, "{host} resolved to no address"),
        }
    }
}

impl StdError for ResolveError {}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    host: host.clone(),
                    source,
                })?
                .collect();
            match allowed_addrs(&policy, addrs) {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(NetError::Policy(err)) => Err(Box::new(ResolveError::Refused(err)) as _),
                Err(_) => Err(Box::new(ResolveError::Empty { host }) as _),
            }
        })
    }
}

fn policy_outcome(err: &Error) -> Outcome {
    Outcome::outage(OutageClass::Misconfigured, err.message().to_owned()).with_remediation(
        "point the check at an allowed URL, or widen [policy.outbound] deliberately",
    )
}

/// Classifies a request error by walking its chain: resolver and policy refusals first,
/// then TLS, timeouts and socket errors.
fn error_outcome(target: &str, err: reqwest::Error) -> Outcome {
    let mut io_class = None;
    let mut messages: Vec<String> = Vec::new();
    let mut class = None;
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(current) = source {
        let text = current.to_string();
        if !messages.iter().any(|m| m.contains(&text)) {
            messages.push(text);
        }
        if class.is_none() {
            class = classify_one(current, &mut io_class);
        }
        source = current.source();
    }
    let class = class
        .or(if err.is_timeout() {
            Some(OutageClass::Timeout)
        } else {
            None
        })
        .or(io_class)
        .unwrap_or(OutageClass::ProviderUnavailable);
    let detail = messages.join(": ");
    let outcome = Outcome::outage(class, format!("{target}: {detail}"));
    match class {
        OutageClass::Misconfigured => outcome.with_remediation(
            "point the check at an allowed URL, or widen [policy.outbound] deliberately",
        ),
        OutageClass::Tls => outcome
            .with_remediation("check the server's certificate chain and name, or set `ca_file`"),
        _ => outcome,
    }
}

/// The outbound policy's refusal found in a request error's chain (a refused address or a
/// refused redirect), if that is why the request failed.
pub(crate) fn policy_refusal(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    let mut io_class = None;
    while let Some(current) = source {
        if classify_one(current, &mut io_class) == Some(OutageClass::Misconfigured) {
            return Some(current.to_string());
        }
        source = current.source();
    }
    None
}

fn classify_one(
    err: &(dyn StdError + 'static),
    io_class: &mut Option<OutageClass>,
) -> Option<OutageClass> {
    if let Some(resolve) = err.downcast_ref::<ResolveError>() {
        return Some(match resolve {
            ResolveError::Refused(_) => OutageClass::Misconfigured,
            _ => OutageClass::DnsResolution,
        });
    }
    if let Some(ours) = err.downcast_ref::<Error>() {
        if ours.kind() == ErrorKind::PolicyDenied {
            return Some(OutageClass::Misconfigured);
        }
    }
    if err.downcast_ref::<rustls::Error>().is_some() {
        return Some(OutageClass::Tls);
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        // `io::Error::source` skips the wrapped error itself: look inside, innermost first.
        if let Some(class) = io.get_ref().and_then(|inner| classify_one(inner, io_class)) {
            return Some(class);
        }
        if io_class.is_none() {
            *io_class = Some(OutageClass::from_io(io));
        }
    }
    None
}

fn status_outcome(target: &str, status: StatusCode, expected: Option<&[u16]>) -> Outcome {
    let wanted = match expected {
        Some(codes) => codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
        None => "2xx".to_owned(),
    };
    let text = format!("{target} answered {status}, expected {wanted}");
    match status.as_u16() {
        401 | 403 => Outcome::outage(OutageClass::Auth, text)
            .with_remediation("check the credentials the check sends (its headers)"),
        429 | 500..=599 => Outcome::outage(OutageClass::ProviderUnavailable, text),
        300..=399 => Outcome::fail(format!(
            "{text} (redirects past the limit or refused are not followed)"
        ))
        .with_state(DependencyState::Degraded),
        _ => Outcome::fail(text).with_state(DependencyState::Degraded),
    }
}

enum BodyError {
    TooLarge,
    Read(reqwest::Error),
}

async fn read_capped(response: &mut reqwest::Response) -> std::result::Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A JSON value for an output line, at most 80 characters.
fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// Parses a version leniently: a leading `v`, and missing minor or patch numbers, are accepted.
fn parse_version(text: &str) -> Option<semver::Version> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    if let Ok(version) = semver::Version::parse(text) {
        return Some(version);
    }
    let core = text.split(['-', '+']).next().unwrap_or(text);
    let padded = match core.matches('.').count() {
        0 => format!("{core}.0.0"),
        1 => format!("{core}.0"),
        _ => return None,
    };
    semver::Version::parse(&format!("{padded}{}", &text[core.len()..])).ok()
}

fn check_contract(
    contract: &Contract,
    json: &Value,
) -> std::result::Result<semver::Version, Box<Outcome>> {
    let malformed = |text: String| Box::new(Outcome::outage(OutageClass::MalformedPayload, text));
    let raw = match json.pointer(&contract.pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(malformed(format!(
                "`{}` is {}, not a version",
                contract.pointer,
                short_json(other)
            )));
        }
        None => {
            return Err(malformed(format!(
                "the body has no `{}` version",
                contract.pointer
            )));
        }
    };
    let Some(version) = parse_version(&raw) else {
        return Err(malformed(format!(
            "`{}` is `{}`, not a semantic version",
            contract.pointer,
            raw.chars().take(40).collect::<String>()
        )));
    };
    if contract.range.matches(&version) {
        return Ok(version);
    }
    let text = format!(
        "contract version {version} is outside the supported range {}",
        contract.range
    );
    Err(Box::new(
        Outcome::outage(OutageClass::VersionMismatch, text)
            .with_detail("contractVersion", version.to_string())
            .with_remediation("deploy matching versions of this service and the dependency"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_leniently() {
        assert_eq!(parse_version("1.2.3"), Some(semver::Version::new(1, 2, 3)));
        assert_eq!(parse_version("v1.4"), Some(semver::Version::new(1, 4, 0)));
        assert_eq!(parse_version("2"), Some(semver::Version::new(2, 0, 0)));
        assert_eq!(parse_version("1.3-beta.1").unwrap().pre.as_str(), "beta.1");
        assert_eq!(parse_version("banana"), None);
    }

    #[test]
    fn contract_checks_range_and_shape() {
        let contract = Contract {
            pointer: "/v".into(),
            range: semver::VersionReq::parse("^1.2").unwrap(),
        };
        assert!(check_contract(&contract, &serde_json::json!({"v": "1.4.0"})).is_ok());
        assert!(check_contract(&contract, &serde_json::json!({"v": 1.3})).is_ok());
        let newer = check_contract(&contract, &serde_json::json!({"v": "2.0"})).unwrap_err();
        assert_eq!(newer.outage, Some(OutageClass::VersionMismatch));
        assert_eq!(newer.state, Some(DependencyState::VersionMismatch));
        let absent = check_contract(&contract, &serde_json::json!({})).unwrap_err();
        assert_eq!(absent.outage, Some(OutageClass::MalformedPayload));
    }

    #[test]
    fn json_numbers_compare_by_value() {
        assert!(json_equal(&serde_json::json!(1), &serde_json::json!(1.0)));
        assert!(json_equal(
            &serde_json::json!({"a": [1, "x"]}),
            &serde_json::json!({"a": [1.0, "x"]})
        ));
        assert!(!json_equal(&serde_json::json!("1"), &serde_json::json!(1)));
    }

    #[test]
    fn params_parse_with_all_options() {
        let params: Params = toml::from_str(
            r#"
            url = "https://api.example.com/readyz"
            method = "post"
            expect_status = [200, 204]
            headers = { Authorization = "Bearer ${TOKEN}" }
            json_pointer = [{ pointer = "/status", equals = "ok" }, { pointer = "/error", exists = false }]
            version_contract = { pointer = "/contract_version", range = "^1.2" }
            "#,
        )
        .unwrap();
        assert_eq!(params.expect_status, Some(StatusList::Many(vec![200, 204])));
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        let probe = HttpProbe::from_params(params, &ctx).unwrap();
        assert_eq!(probe.method, Method::POST);
        assert_eq!(probe.rules.len(), 2);
        // Debug output names headers, never their values.
        assert!(!format!("{probe:?}").contains("TOKEN"));
    }

    #[test]
    fn bad_params_are_config_errors() {
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        for (text, needle) in [
            ("url = \"ftp://x/\"", "scheme"),
            ("url = \"https://x/\"\nmethod = \"GE T\"", "method"),
            (
                "url = \"https://x/\"\nversion_contract = { pointer = \"/v\", range = \"^^1\" }",
                "semver",
            ),
            (
                "url = \"https://x/\"\njson_pointer = [{ pointer = \"status\" }]",
                "must start with",
            ),
            (
                "url = \"https://x/\"\njson_pointer = [{ pointer = \"/s\", equals = 1, exists = true }]",
                "both",
            ),
        ] {
            let params: Params = toml::from_str(text).unwrap();
            let err = HttpProbe::from_params(params, &ctx).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn status_classes() {
        let t = "GET https://x/";
        assert_eq!(
            status_outcome(t, StatusCode::UNAUTHORIZED, None).outage,
            Some(OutageClass::Auth)
        );
        assert_eq!(
            status_outcome(t, StatusCode::FORBIDDEN, None).outage,
            Some(OutageClass::Auth)
        );
        assert_eq!(
            status_outcome(t, StatusCode::BAD_GATEWAY, None).outage,
            Some(OutageClass::ProviderUnavailable)
        );
        let not_found = status_outcome(t, StatusCode::NOT_FOUND, Some(&[200]));
        assert_eq!(not_found.outage, None);
        assert!(not_found.output.unwrap().contains("expected 200"));
    }

    #[test]
    fn resolver_refusals_are_found_in_the_chain() {
        let refusal = OutboundPolicy::default()
            .check_ip("169.254.169.254".parse().unwrap())
            .unwrap_err();
        let wrapped = std::io::Error::other(ResolveError::Refused(refusal));
        let mut io_class = None;
        assert_eq!(
            classify_one(&wrapped, &mut io_class),
            Some(OutageClass::Misconfigured)
        );
        let lookup = ResolveError::Lookup {
            host: "x.invalid".into(),
            source: std::io::Error::other("nope"),
        };
        assert_eq!(
            classify_one(&lookup, &mut io_class),
            Some(OutageClass::DnsResolution)
        );
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(classify_one(&tls, &mut io_class), Some(OutageClass::Tls));
    }

    #[tokio::test]
    async fn resolver_refuses_metadata_and_private_addresses() {
        use reqwest::dns::Resolve;
        let strict = PolicyResolver {
            policy: Arc::new(OutboundPolicy::default()),
        };
        let addrs: Vec<_> = strict
            .resolve("localhost".parse::<reqwest::dns::Name>().ok().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
        // A literal metadata address given as a name still goes through the address check.
        let err = strict
            .resolve(
                "169.254.169.254"
                    .parse::<reqwest::dns::Name>()
                    .ok()
                    .unwrap(),
            )
            .await
            .err()
            .expect("refused");
        let mut io_class = None;
        assert_eq!(
            classify_one(err.as_ref(), &mut io_class),
            Some(OutageClass::Misconfigured)
        );
        assert!(err.to_string().contains("metadata"), "{err}");
    }
}
