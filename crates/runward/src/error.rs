//! The one error type of runward, with a stable [`ErrorKind`] that bindings switch on.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, in a form that bindings and exit codes can switch on.
///
/// New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration file or value is invalid. The message names the file, line and key.
    Config,
    /// A file or named item does not exist.
    NotFound,
    /// An argument passed to an API call is invalid.
    InvalidInput,
    /// A policy (outbound hosts, paths) refused the operation.
    PolicyDenied,
    /// An operation did not finish before its deadline.
    Timeout,
    /// Reading or writing a file or socket failed.
    Io,
    /// A SQLite or other storage call failed.
    Storage,
    /// The registry or server has been shut down.
    Shutdown,
    /// The item is held by someone else or its state forbids the change (a lease held by
    /// another owner, a flag owned by another run, an approval already decided or used).
    Conflict,
    /// The caller's lease fencing epoch is no longer current: stop working on the run, another
    /// owner may have taken it over.
    LeaseLost,
    /// The state database stayed locked by another process past the retry deadline.
    Busy,
    /// An unexpected internal failure; please report it.
    Internal,
}

impl ErrorKind {
    /// A stable snake_case name, used as the `code` in Node and the exception name in Python.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Storage => "storage",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Conflict => "conflict",
            ErrorKind::LeaseLost => "lease_lost",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a configuration file an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, when the configuration came from one.
    pub file: Option<PathBuf>,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file.display(), self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

/// The error type of every fallible runward call.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    location: Option<Location>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with runward's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`; the message should say what to do about it.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            location: None,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches a configuration location; the message is prefixed with it when displayed.
    pub fn with_location(mut self, location: Location) -> Self {
        self.message = format!("{location}: {}", self.message);
        self.location = Some(location);
        self
    }

    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The configuration location, for [`ErrorKind::Config`] errors that have one.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("{context}: {err}")).with_source(err)
    }
}
