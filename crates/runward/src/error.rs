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

/// The longest quoted value kept whole in a message, in characters.
const MAX_QUOTED: usize = 80;
/// The longest message kept, in characters.
const MAX_MESSAGE: usize = 2000;

/// Shortens quoted values longer than [`MAX_QUOTED`] and the message to [`MAX_MESSAGE`].
fn bounded(message: String) -> String {
    if message.len() <= MAX_QUOTED {
        return message;
    }
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 8));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd parts sit between backticks.
        if i % 2 == 1 && part.chars().nth(MAX_QUOTED).is_some() {
            out.extend(part.chars().take(MAX_QUOTED / 2));
            out.push_str(&format!("… ({} characters)", part.chars().count()));
        } else {
            out.push_str(part);
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX_MESSAGE) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// `Result` with runward's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`; the message should say what to do about it. A value quoted in
    /// backticks longer than 80 characters is shortened to its start, and the whole message
    /// to 2000 characters, so an error about a huge input stays readable.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: bounded(message.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_quoted_values_are_shortened_and_short_messages_kept() {
        let short = "`name`: check name `db` is taken";
        assert_eq!(Error::invalid(short).message(), short);
        let huge = "x".repeat(1 << 20);
        let err = Error::config(format!("`on_failure` is `{huge}`: expected abort"));
        assert!(err.message().starts_with("`on_failure` is `xxxx"), "{err}");
        assert!(
            err.message()
                .contains("… (1048576 characters)`: expected abort")
        );
        assert!(err.message().len() < 200);
        let err = Error::invalid("y".repeat(5000));
        assert_eq!(err.message().chars().count(), MAX_MESSAGE + 1);
    }
}
