//! Timeouts and limits of the probe server's connections (`[server.limits]`).
//!
//! A probe server must answer the kubelet while any other client misbehaves: slow senders
//! are cut off after [`ServerLimits::header_read_timeout_ms`], idle keep-alive connections
//! after [`ServerLimits::idle_timeout_ms`], and at [`ServerLimits::max_connections`] the
//! oldest connection without a request in flight is closed so that a new one is always
//! accepted.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// File descriptors kept free for everything but client connections: the listener, the
/// state database, check connections and child processes.
pub const FD_HEADROOM: u64 = 64;

/// The most connections a server keeps open when the open-files limit does not bound it.
pub const MAX_CONNECTIONS_CEILING: usize = 65_536;

/// Connection timeouts and request size limits of the probe server.
///
/// Every field has a default; the bindings and `runward.toml` override single fields with
/// [`ServerLimits::overridden`]. Out-of-range values are refused by [`ServerLimits::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// How long a client may take to send a request's line and headers once it started
    /// sending them, in milliseconds (100 to 300000; default 5000).
    pub header_read_timeout_ms: u64,
    /// How long a connection may stay open with no request in flight and nothing sent, in
    /// milliseconds (100 to 3600000; default 30000). A new connection that sends nothing is
    /// closed after this long too.
    pub idle_timeout_ms: u64,
    /// The most connections open at once. `None` (the default) sizes it from the open-files
    /// limit: that limit less [`FD_HEADROOM`], at most [`MAX_CONNECTIONS_CEILING`].
    pub max_connections: Option<usize>,
    /// The most bytes of request line and headers (8192 to 1048576; default 16384). A larger
    /// request gets 431 and the connection is closed.
    pub max_header_bytes: usize,
    /// The most bytes of request body (0 to 67108864; default 65536). A larger body gets 413.
    pub max_body_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            max_connections: None,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Single-field overrides of [`ServerLimits`], as the bindings' `serve` options give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLimitsOverrides {
    /// See [`ServerLimits::header_read_timeout_ms`].
    pub header_read_timeout_ms: Option<u64>,
    /// See [`ServerLimits::idle_timeout_ms`].
    pub idle_timeout_ms: Option<u64>,
    /// See [`ServerLimits::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`ServerLimits::max_header_bytes`].
    pub max_header_bytes: Option<usize>,
    /// See [`ServerLimits::max_body_bytes`].
    pub max_body_bytes: Option<usize>,
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(format!(
            "server limit `{field}` is {value}; it must be between {min} and {max}"
        )));
    }
    Ok(())
}

impl ServerLimits {
    /// These limits with the given overrides; each `None` keeps the current value.
    pub fn overridden(&self, overrides: &ServerLimitsOverrides) -> ServerLimits {
        ServerLimits {
            header_read_timeout_ms: overrides
                .header_read_timeout_ms
                .unwrap_or(self.header_read_timeout_ms),
            idle_timeout_ms: overrides.idle_timeout_ms.unwrap_or(self.idle_timeout_ms),
            max_connections: overrides.max_connections.or(self.max_connections),
            max_header_bytes: overrides.max_header_bytes.unwrap_or(self.max_header_bytes),
            max_body_bytes: overrides.max_body_bytes.unwrap_or(self.max_body_bytes),
        }
    }

    /// Refuses values outside the documented ranges, naming the field.
    pub fn validate(&self) -> Result<()> {
        in_range(
            "header_read_timeout_ms",
            self.header_read_timeout_ms,
            100,
            300_000,
        )?;
        in_range("idle_timeout_ms", self.idle_timeout_ms, 100, 3_600_000)?;
        in_range("max_header_bytes", self.max_header_bytes, 8_192, 1_048_576)?;
        in_range("max_body_bytes", self.max_body_bytes, 0, 67_108_864)?;
        if let Some(max) = self.max_connections {
            in_range("max_connections", max, 1, MAX_CONNECTIONS_CEILING)?;
        }
        Ok(())
    }

    /// The header read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The connection limit in force under the soft open-files limit `open_files` (`None`:
    /// unlimited). A configured `max_connections` that would leave fewer than
    /// [`FD_HEADROOM`] descriptors free is refused, with what to change.
    pub fn connection_limit(&self, open_files: Option<u64>) -> Result<usize> {
        self.validate()?;
        let room = open_files.map(|n| n.saturating_sub(FD_HEADROOM));
        match (self.max_connections, room) {
            (Some(max), Some(room)) if max as u64 > room => Err(Error::invalid(format!(
                "server limit `max_connections` is {max}, but the open-files limit of {} leaves room \
                 for {room} connections; raise the limit (`ulimit -n`) or lower max_connections",
                open_files.unwrap_or_default()
            ))),
            (Some(max), _) => Ok(max),
            (None, Some(0)) => Err(Error::invalid(format!(
                "the open-files limit of {} leaves no room for connections; raise it (`ulimit -n`) \
                 above {FD_HEADROOM}",
                open_files.unwrap_or_default()
            ))),
            (None, Some(room)) => Ok((room as usize).min(MAX_CONNECTIONS_CEILING)),
            (None, None) => Ok(MAX_CONNECTIONS_CEILING),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_headroom_under_the_open_files_limit() {
        let limits = ServerLimits::default();
        assert_eq!(limits.connection_limit(Some(256)).unwrap(), 192);
        assert_eq!(
            limits.connection_limit(Some(1 << 20)).unwrap(),
            MAX_CONNECTIONS_CEILING
        );
        assert_eq!(
            limits.connection_limit(None).unwrap(),
            MAX_CONNECTIONS_CEILING
        );
        let err = limits.connection_limit(Some(40)).unwrap_err();
        assert!(err.message().contains("ulimit -n"), "{err}");
    }

    #[test]
    fn a_configured_limit_must_fit_under_the_open_files_limit() {
        let limits = ServerLimits {
            max_connections: Some(500),
            ..ServerLimits::default()
        };
        assert_eq!(limits.connection_limit(Some(10_000)).unwrap(), 500);
        let err = limits.connection_limit(Some(256)).unwrap_err();
        assert!(err.message().contains("room for 192"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        for (limits, field) in [
            (
                ServerLimits {
                    header_read_timeout_ms: 0,
                    ..ServerLimits::default()
                },
                "header_read_timeout_ms",
            ),
            (
                ServerLimits {
                    idle_timeout_ms: 99,
                    ..ServerLimits::default()
                },
                "idle_timeout_ms",
            ),
            (
                ServerLimits {
                    max_header_bytes: 1024,
                    ..ServerLimits::default()
                },
                "max_header_bytes",
            ),
            (
                ServerLimits {
                    max_connections: Some(0),
                    ..ServerLimits::default()
                },
                "max_connections",
            ),
        ] {
            let err = limits.validate().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.message().contains(field), "{err}");
        }
    }

    #[test]
    fn overrides_replace_single_fields() {
        let base = ServerLimits::default();
        let limits = base.overridden(&ServerLimitsOverrides {
            idle_timeout_ms: Some(1_000),
            ..ServerLimitsOverrides::default()
        });
        assert_eq!(limits.idle_timeout_ms, 1_000);
        assert_eq!(limits.header_read_timeout_ms, base.header_read_timeout_ms);
    }
}
