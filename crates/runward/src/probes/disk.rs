//! `disk`: free space on the volume that holds a path, via `statvfs`.

use super::BuildContext;
use super::tcp::soft_deadline;
use crate::health::{CheckContext, OutageClass, Outcome, Probe};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A byte count: an integer, or a string with a unit (`"500 MB"`, `"2GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"1.5 GiB"`, `"500MB"`, `"42"`: decimal (kB, MB, GB, TB) and binary (KiB, MiB,
/// GiB, TiB) units.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 500MB or 2GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: expected B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    Ok((number * factor).round() as u64)
}

/// A byte count for people: `1.5 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Free percentage below which a `disk` check without thresholds fails.
pub const DEFAULT_MIN_FREE_PERCENT: f64 = 5.0;
/// Free percentage below which a `disk` check without thresholds warns.
pub const DEFAULT_WARN_BELOW_PERCENT: f64 = 10.0;

/// The parameters of a `disk` check. Without any threshold, the defaults apply.
///
/// ```toml
/// [[checks]]
/// name = "data-disk"
/// kind = "disk"
/// path = "data"
/// min_free_percent = 5
/// warn_below_percent = 15
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Any path on the volume to measure; relative to the configuration file.
    pub path: PathBuf,
    /// Fail when fewer bytes than this are available (integer or `"2GiB"`).
    #[serde(default)]
    pub min_free_bytes: Option<ByteSize>,
    /// Fail when less than this percentage of the volume is available.
    #[serde(default)]
    pub min_free_percent: Option<f64>,
    /// Warn when less than this percentage of the volume is available.
    #[serde(default)]
    pub warn_below_percent: Option<f64>,
    /// Warn when fewer bytes than this are available.
    #[serde(default)]
    pub warn_below_bytes: Option<ByteSize>,
}

/// Free space on a volume; observes `utilization` (used percent).
#[derive(Debug, Clone)]
pub struct DiskProbe {
    path: PathBuf,
    min_free_bytes: Option<u64>,
    min_free_percent: Option<f64>,
    warn_below_percent: Option<f64>,
    warn_below_bytes: Option<u64>,
}

/// One measurement of a volume.
#[derive(Debug, Clone, Copy)]
struct Usage {
    total: u64,
    available: u64,
    used: u64,
}

impl Usage {
    /// Used percent, as `df` computes it: used / (used + available).
    fn utilization(&self) -> f64 {
        let base = self.used + self.available;
        if base == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / base as f64
        }
    }
}

impl DiskProbe {
    /// A probe failing when less than `min_free_percent` of the volume holding `path` is free.
    pub fn new(path: impl Into<PathBuf>, min_free_percent: f64) -> Self {
        DiskProbe {
            path: path.into(),
            min_free_bytes: None,
            min_free_percent: Some(min_free_percent),
            warn_below_percent: None,
            warn_below_bytes: None,
        }
    }

    /// Also fails when fewer than `bytes` are available.
    pub fn min_free_bytes(mut self, bytes: u64) -> Self {
        self.min_free_bytes = Some(bytes);
        self
    }

    /// Warns when less than `percent` is free.
    pub fn warn_below_percent(mut self, percent: f64) -> Self {
        self.warn_below_percent = Some(percent);
        self
    }

    /// Builds the probe from a check table. Without any threshold it fails below
    /// [`DEFAULT_MIN_FREE_PERCENT`] and warns below [`DEFAULT_WARN_BELOW_PERCENT`]. Errors when
    /// a percentage is out of range.
    pub fn from_params(mut params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.min_free_bytes.is_none()
            && params.min_free_percent.is_none()
            && params.warn_below_percent.is_none()
            && params.warn_below_bytes.is_none()
        {
            params.min_free_percent = Some(DEFAULT_MIN_FREE_PERCENT);
            params.warn_below_percent = Some(DEFAULT_WARN_BELOW_PERCENT);
        }
        for (key, value) in [
            ("min_free_percent", params.min_free_percent),
            ("warn_below_percent", params.warn_below_percent),
        ] {
            if let Some(v) = value {
                if !(0.0..=100.0).contains(&v) {
                    return Err(Error::config(format!(
                        "`{key}` is {v}: expected a percentage from 0 to 100"
                    )));
                }
            }
        }
        Ok(DiskProbe {
            path: ctx.resolve(&params.path),
            min_free_bytes: params.min_free_bytes.map(|b| b.0),
            min_free_percent: params.min_free_percent,
            warn_below_percent: params.warn_below_percent,
            warn_below_bytes: params.warn_below_bytes.map(|b| b.0),
        })
    }

    fn assess(&self, usage: Usage) -> Outcome {
        let utilization = usage.utilization();
        let free_percent = 100.0 - utilization;
        let summary = format!(
            "{free_percent:.1}% free ({} of {}) on the volume of {}",
            human_bytes(usage.available),
            human_bytes(usage.total),
            self.path.display()
        );
        let mut fails = Vec::new();
        let mut warns = Vec::new();
        if let Some(min) = self.min_free_percent.filter(|min| free_percent < *min) {
            fails.push(format!("below the minimum of {min}%"));
        }
        if let Some(min) = self.min_free_bytes.filter(|min| usage.available < *min) {
            fails.push(format!("below the minimum of {}", human_bytes(min)));
        }
        if let Some(min) = self.warn_below_percent.filter(|min| free_percent < *min) {
            warns.push(format!("below the warning level of {min}%"));
        }
        if let Some(min) = self.warn_below_bytes.filter(|min| usage.available < *min) {
            warns.push(format!("below the warning level of {}", human_bytes(min)));
        }
        let outcome = if !fails.is_empty() {
            Outcome::fail(format!("{summary}: {}", fails.join(", "))).with_remediation(format!(
                "free space on the volume that holds {}",
                self.path.display()
            ))
        } else if !warns.is_empty() {
            Outcome::warn(format!("{summary}: {}", warns.join(", ")))
        } else {
            Outcome::pass()
        };
        outcome
            .with_observed(
                "utilization",
                (utilization * 100.0).round() / 100.0,
                Some("percent"),
            )
            .with_detail("freeBytes", usage.available)
            .with_detail("totalBytes", usage.total)
    }
}

fn measure(path: &Path) -> std::io::Result<Usage> {
    let stat = rustix::fs::statvfs(path)?;
    let unit = if stat.f_frsize > 0 {
        stat.f_frsize
    } else {
        stat.f_bsize
    };
    Ok(Usage {
        total: stat.f_blocks.saturating_mul(unit),
        available: stat.f_bavail.saturating_mul(unit),
        used: stat
            .f_blocks
            .saturating_sub(stat.f_bfree)
            .saturating_mul(unit),
    })
}

#[async_trait]
impl Probe for DiskProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let path = self.path.clone();
        // statvfs can block on a hung network file system: keep it off the async threads.
        let task = tokio::task::spawn_blocking(move || measure(&path));
        match tokio::time::timeout_at(soft_deadline(ctx).into(), task).await {
            Ok(Ok(Ok(usage))) => self.assess(usage),
            Ok(Ok(Err(err))) => Outcome::fail(format!(
                "cannot measure the volume of {}: {err}",
                self.path.display()
            ))
            .with_remediation(format!(
                "check that {} exists and is readable",
                self.path.display()
            )),
            Ok(Err(join)) => Outcome::fail(format!("the disk measurement failed: {join}")),
            Err(_) => Outcome::outage(
                OutageClass::Timeout,
                format!(
                    "statvfs on {} did not return before the deadline",
                    self.path.display()
                ),
            ),
        }
    }

    fn is_local(&self) -> bool {
        true
    }

    fn component_type(&self) -> &str {
        "system"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use std::time::Duration;

    const GIB: u64 = 1 << 30;

    fn usage(free_gib: u64) -> Usage {
        Usage {
            total: 100 * GIB,
            available: free_gib * GIB,
            used: (100 - free_gib) * GIB,
        }
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("42").unwrap(), 42);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 3 * GIB / 2);
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        let params: Params =
            toml::from_str("path = \".\"\nmin_free_bytes = \"1KiB\"\nmin_free_percent = 5")
                .unwrap();
        assert_eq!(params.min_free_bytes, Some(ByteSize(1024)));
        assert_eq!(params.min_free_percent, Some(5.0));
    }

    #[test]
    fn thresholds_fail_then_warn_then_pass() {
        let probe = DiskProbe::new("/data", 10.0)
            .warn_below_percent(20.0)
            .min_free_bytes(5 * GIB);
        let fail = probe.assess(usage(8));
        assert_eq!(fail.status, Status::Fail);
        assert!(
            fail.output
                .as_deref()
                .unwrap()
                .contains("below the minimum of 10%"),
            "{fail:?}"
        );
        assert_eq!(
            fail.observed.as_ref().unwrap().value,
            serde_json::json!(92.0)
        );
        assert_eq!(probe.assess(usage(15)).status, Status::Warn);
        assert_eq!(probe.assess(usage(50)).status, Status::Pass);
        let bytes_only = DiskProbe::new("/data", 0.0).min_free_bytes(60 * GIB);
        assert_eq!(bytes_only.assess(usage(50)).status, Status::Fail);
    }

    #[test]
    fn defaults_apply_without_thresholds_and_percentages_are_checked() {
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        let params: Params = toml::from_str("path = \".\"").unwrap();
        let probe = DiskProbe::from_params(params, &ctx).unwrap();
        assert_eq!(probe.min_free_percent, Some(DEFAULT_MIN_FREE_PERCENT));
        assert_eq!(probe.assess(usage(7)).status, Status::Warn);
        assert_eq!(probe.assess(usage(3)).status, Status::Fail);
        let bad: Params = toml::from_str("path = \".\"\nmin_free_percent = 150").unwrap();
        let err = DiskProbe::from_params(bad, &ctx).unwrap_err();
        assert!(err.to_string().contains("min_free_percent"), "{err}");
    }

    #[tokio::test]
    async fn measures_a_real_volume() {
        let dir = tempfile::tempdir().unwrap();
        let probe = DiskProbe::new(dir.path(), 0.0);
        let outcome = probe
            .check(&CheckContext::new("disk", Duration::from_secs(2)))
            .await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        let used = outcome.observed.unwrap().value.as_f64().unwrap();
        assert!((0.0..=100.0).contains(&used), "{used}");
        assert!(outcome.details["totalBytes"].as_u64().unwrap() > 0);
    }

    #[tokio::test]
    async fn missing_path_fails_with_a_hint() {
        let probe = DiskProbe::new("/definitely/not/here/runward", 1.0);
        let outcome = probe
            .check(&CheckContext::new("disk", Duration::from_secs(2)))
            .await;
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.remediation.is_some());
    }
}
