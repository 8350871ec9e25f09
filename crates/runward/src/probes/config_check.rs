//! `config`: checks an application's settings without ever showing their values.
//!
//! Keys are read from a dotenv-style file and/or the process environment. The probe fails
//! (outage `misconfigured`) when a required key is missing or empty, a value is a placeholder
//! (`changeme`, `your-api-key`, `<...>`), a URL key is not HTTPS, or an allowlist is empty.
//! Outputs name keys only.

use super::BuildContext;
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Placeholder values flagged when the check does not list its own.
pub const DEFAULT_PLACEHOLDERS: &[&str] = &[
    "changeme",
    "your-api-key",
    "xxx",
    "todo",
    "replace-me",
    "<...>",
];

/// The parameters of a `config` check.
///
/// ```toml
/// [[checks]]
/// name = "settings"
/// kind = "config"
/// env_file = ".env"
/// required = ["DATABASE_URL", "WEBHOOK_SECRET"]
/// https_keys = ["PUBLIC_API_URL"]
/// allowlist_keys = ["ALLOWED_ORIGINS"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A dotenv-style file (`KEY=VALUE` lines, `#` comments, optional `export` and quotes).
    /// Its values win over the process environment. Relative to the configuration file.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    /// Also look keys up in the process environment (default true).
    #[serde(default = "default_true")]
    pub process_env: bool,
    /// Keys that must be present and non-empty.
    #[serde(default)]
    pub required: Vec<String>,
    /// Values treated as placeholders, compared case-insensitively as whole words; `<...>`
    /// matches any value in angle brackets. Defaults to [`DEFAULT_PLACEHOLDERS`].
    #[serde(default)]
    pub placeholders: Option<Vec<String>>,
    /// Keys whose values must be `https://` URLs (plain `http://` is allowed on loopback).
    #[serde(default)]
    pub https_keys: Vec<String>,
    /// Keys holding allowlists (comma or space separated) that must not be empty.
    #[serde(default)]
    pub allowlist_keys: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// Checks settings for missing keys, placeholders, non-HTTPS URLs and empty allowlists.
#[derive(Debug, Clone)]
pub struct ConfigProbe {
    env_file: Option<PathBuf>,
    process_env: bool,
    required: Vec<String>,
    placeholders: Vec<String>,
    https_keys: Vec<String>,
    allowlist_keys: Vec<String>,
}

impl Default for ConfigProbe {
    fn default() -> Self {
        ConfigProbe::new()
    }
}

impl ConfigProbe {
    /// A probe over the process environment with the default placeholders and no keys yet.
    pub fn new() -> Self {
        ConfigProbe {
            env_file: None,
            process_env: true,
            required: Vec::new(),
            placeholders: DEFAULT_PLACEHOLDERS.iter().map(|s| s.to_string()).collect(),
            https_keys: Vec::new(),
            allowlist_keys: Vec::new(),
        }
    }

    /// Reads keys from this dotenv file; its values win over the process environment.
    pub fn env_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.env_file = Some(path.into());
        self
    }

    /// Whether to look keys up in the process environment too.
    pub fn process_env(mut self, on: bool) -> Self {
        self.process_env = on;
        self
    }

    /// Keys that must be present and non-empty.
    pub fn required<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.required.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Replaces the placeholder list.
    pub fn placeholders<S: Into<String>>(mut self, values: impl IntoIterator<Item = S>) -> Self {
        self.placeholders = values.into_iter().map(Into::into).collect();
        self
    }

    /// Keys whose values must be HTTPS URLs.
    pub fn https_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.https_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Keys holding allowlists that must not be empty.
    pub fn allowlist_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.allowlist_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.env_file.is_none() && !params.process_env {
            return Err(Error::config(
                "`process_env` is false and no `env_file` is set: there is nothing to check",
            ));
        }
        for key in params
            .required
            .iter()
            .chain(&params.https_keys)
            .chain(&params.allowlist_keys)
        {
            if key.is_empty() || key.contains('=') {
                return Err(Error::config(format!(
                    "`required` lists an invalid key name `{key}`"
                )));
            }
        }
        let mut probe = ConfigProbe::new()
            .process_env(params.process_env)
            .required(params.required)
            .https_keys(params.https_keys)
            .allowlist_keys(params.allowlist_keys);
        if let Some(path) = params.env_file {
            probe = probe.env_file(ctx.resolve(&path));
        }
        if let Some(list) = params.placeholders {
            probe = probe.placeholders(list);
        }
        Ok(probe)
    }

    /// Assesses settings given the env file's entries (when there is one).
    fn assess(&self, file: Option<&EnvFile>) -> Outcome {
        let lookup = |key: &str| -> Option<String> {
            if let Some(value) = file.and_then(|f| f.values.get(key)) {
                return Some(value.clone());
            }
            if self.process_env {
                std::env::var(key).ok()
            } else {
                None
            }
        };
        let mut missing = Vec::new();
        let mut placeholder = Vec::new();
        let mut not_https = Vec::new();
        let mut empty_allowlist = Vec::new();

        let mut named: Vec<&String> = Vec::new();
        for key in self
            .required
            .iter()
            .chain(&self.https_keys)
            .chain(&self.allowlist_keys)
        {
            if !named.contains(&key) {
                named.push(key);
            }
        }
        for key in &self.required {
            if lookup(key).is_none_or(|v| v.trim().is_empty()) {
                missing.push(key.as_str());
            }
        }
        for key in &self.https_keys {
            match lookup(key) {
                None => {
                    if !missing.contains(&key.as_str()) {
                        missing.push(key);
                    }
                }
                Some(value) if !is_https_or_loopback(&value) => not_https.push(key.as_str()),
                Some(_) => {}
            }
        }
        for key in &self.allowlist_keys {
            let empty = lookup(key).is_none_or(|v| {
                !v.split([',', ' ', '\t'])
                    .any(|item| !item.trim().is_empty())
            });
            if empty {
                empty_allowlist.push(key.as_str());
            }
        }
        let mut keys: Vec<&str> = named.iter().map(|k| k.as_str()).collect();
        if let Some(file) = file {
            for key in file.values.keys() {
                if !keys.contains(&key.as_str()) {
                    keys.push(key);
                }
            }
        }
        for key in &keys {
            if lookup(key).is_some_and(|v| is_placeholder(&v, &self.placeholders)) {
                placeholder.push(*key);
            }
        }

        let mut problems = Vec::new();
        if let Some(file) = file {
            if !file.bad_lines.is_empty() {
                let lines: Vec<String> = file.bad_lines.iter().map(|n| n.to_string()).collect();
                problems.push(format!("lines not in KEY=VALUE form: {}", lines.join(", ")));
            }
        }
        for (label, list) in [
            ("missing or empty", &missing),
            ("placeholder values", &placeholder),
            ("not https", &not_https),
            ("empty allowlists", &empty_allowlist),
        ] {
            if !list.is_empty() {
                problems.push(format!("{label}: {}", list.join(", ")));
            }
        }
        let checked = keys.len();
        if problems.is_empty() {
            return Outcome::pass()
                .with_observed("keys", checked, None)
                .with_state(DependencyState::Ready);
        }
        let place = match &self.env_file {
            Some(path) => format!("in {} or the environment", path.display()),
            None => "in the environment".to_owned(),
        };
        Outcome::outage(OutageClass::Misconfigured, problems.join("; "))
            .with_observed("keys", checked, None)
            .with_remediation(format!(
                "set real values for these keys {place} (values are never shown)"
            ))
            .with_detail("missing", missing)
            .with_detail("placeholders", placeholder)
            .with_detail("notHttps", not_https)
            .with_detail("emptyAllowlists", empty_allowlist)
    }
}

#[async_trait]
impl Probe for ConfigProbe {
    async fn check(&self, _ctx: &CheckContext) -> Outcome {
        let file = match &self.env_file {
            None => None,
            Some(path) => match tokio::fs::read_to_string(path).await {
                Ok(text) => Some(parse_env_file(&text)),
                Err(err) => {
                    return Outcome::outage(
                        OutageClass::Misconfigured,
                        format!("cannot read env file {}: {err}", path.display()),
                    )
                    .with_remediation(format!("create {} or fix `env_file`", path.display()));
                }
            },
        };
        self.assess(file.as_ref())
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// The entries of a dotenv file, and the 1-based numbers of lines that are not entries.
#[derive(Debug, Default)]
struct EnvFile {
    values: BTreeMap<String, String>,
    bad_lines: Vec<usize>,
}

/// Parses `KEY=VALUE` lines: `#` comments, an optional `export ` prefix, single or double
/// quotes, and ` #` comments after unquoted values.
fn parse_env_file(text: &str) -> EnvFile {
    let mut file = EnvFile::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            file.bad_lines.push(index + 1);
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            file.bad_lines.push(index + 1);
            continue;
        }
        file.values
            .insert(key.to_owned(), parse_value(raw.trim_start()));
    }
    file
}

fn parse_value(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        out
    } else if let Some(rest) = raw.strip_prefix('\'') {
        rest.split('\'').next().unwrap_or("").to_owned()
    } else {
        let cut = raw.find(" #").unwrap_or(raw.len());
        raw[..cut].trim_end().to_owned()
    }
}

/// Whether `value` is a placeholder: equal to one (case-insensitively), containing one as a
/// whole word, or wrapped in angle brackets when the list holds `<...>`.
fn is_placeholder(value: &str, placeholders: &[String]) -> bool {
    let value = value.trim().to_lowercase();
    if value.is_empty() {
        return false;
    }
    placeholders.iter().any(|p| {
        let p = p.trim().to_lowercase();
        if p.is_empty() {
            return false;
        }
        if p == "<...>" {
            return value.starts_with('<') && value.ends_with('>');
        }
        value.match_indices(&p).any(|(at, _)| {
            let before = value[..at].chars().next_back();
            let after = value[at + p.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

fn is_https_or_loopback(value: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(value.trim()) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => url.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// Replaces every `${NAME}` in `text` with the environment variable `NAME`.
///
/// Errors with the name of the first variable that is unset, or with a note about an
/// unterminated reference. The error never holds a value.
pub(crate) fn expand_env(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("an unterminated `${` reference".to_owned());
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("an invalid variable reference `${{{name}}}`"));
        }
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => return Err(format!("the unset environment variable `{name}`")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    #[test]
    fn parses_dotenv_lines() {
        let file = parse_env_file(
            "# comment\nexport A=1\nB = \"two words\" \nC='single # kept'\nD=plain # trailing\nnot a line\nE=\n",
        );
        assert_eq!(file.values["A"], "1");
        assert_eq!(file.values["B"], "two words");
        assert_eq!(file.values["C"], "single # kept");
        assert_eq!(file.values["D"], "plain");
        assert_eq!(file.values["E"], "");
        assert_eq!(file.bad_lines, vec![6]);
    }

    #[test]
    fn placeholders_match_whole_words() {
        let list: Vec<String> = DEFAULT_PLACEHOLDERS.iter().map(|s| s.to_string()).collect();
        for bad in [
            "changeme",
            "CHANGEME",
            "your-api-key-here",
            "sk-xxx",
            "<your token>",
            "TODO",
        ] {
            assert!(is_placeholder(bad, &list), "{bad}");
        }
        for good in ["changemeplease", "todolist-service", "s3cr3t-value", "xxxy"] {
            assert!(!is_placeholder(good, &list), "{good}");
        }
    }

    #[test]
    fn https_rule_allows_loopback_http_only() {
        assert!(is_https_or_loopback("https://api.example.com/v1"));
        assert!(is_https_or_loopback("http://127.0.0.1:8080"));
        assert!(is_https_or_loopback("http://localhost/x"));
        assert!(!is_https_or_loopback("http://api.example.com"));
        assert!(!is_https_or_loopback("not a url"));
    }

    #[test]
    fn assess_names_keys_and_never_values() {
        let file = parse_env_file(
            "API_KEY=changeme\nSECRET=hunter2-real-value\nPUBLIC_URL=http://api.example.com\nORIGINS= , \n",
        );
        let probe = ConfigProbe::new()
            .process_env(false)
            .required(["API_KEY", "SECRET", "MISSING_ONE"])
            .https_keys(["PUBLIC_URL"])
            .allowlist_keys(["ORIGINS"]);
        let outcome = probe.assess(Some(&file));
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.outage, Some(OutageClass::Misconfigured));
        let out = outcome.output.clone().unwrap();
        assert!(out.contains("missing or empty: MISSING_ONE"), "{out}");
        assert!(out.contains("placeholder values: API_KEY"), "{out}");
        assert!(out.contains("not https: PUBLIC_URL"), "{out}");
        assert!(out.contains("empty allowlists: ORIGINS"), "{out}");
        let all = serde_json::to_string(&outcome).unwrap();
        for value in ["changeme", "hunter2", "api.example.com"] {
            assert!(!all.contains(value), "value `{value}` leaked: {all}");
        }
    }

    #[test]
    fn assess_passes_on_good_settings() {
        let file = parse_env_file(
            "API_KEY=sk-live-1234\nPUBLIC_URL=https://x.example\nORIGINS=a.example,b.example\n",
        );
        let probe = ConfigProbe::new()
            .process_env(false)
            .required(["API_KEY"])
            .https_keys(["PUBLIC_URL"])
            .allowlist_keys(["ORIGINS"]);
        let outcome = probe.assess(Some(&file));
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.observed.unwrap().value, serde_json::json!(3));
    }

    #[test]
    fn expands_env_references_without_echoing_values() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("p=${PATH};").unwrap(), format!("p={path};"));
        assert_eq!(expand_env("no refs").unwrap(), "no refs");
        let err = expand_env("Bearer ${RUNWARD_SURELY_UNSET_VARIABLE_42}").unwrap_err();
        assert!(err.contains("RUNWARD_SURELY_UNSET_VARIABLE_42"), "{err}");
        assert!(expand_env("${unterminated").is_err());
    }

    #[test]
    fn nothing_to_check_is_a_config_error() {
        let params: Params = toml::from_str("process_env = false").unwrap();
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        assert!(ConfigProbe::from_params(params, &ctx).is_err());
    }
}
