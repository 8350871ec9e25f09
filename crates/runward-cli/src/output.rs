//! Standard output and standard error for every command.
//!
//! Output goes through [`outln!`] and [`out!`], which return the write's error to the command
//! (with `?`), so a closed pipe (`runward runbook list | head`) ends the command instead of
//! panicking; `main` then exits 0 without a message, as `cat` and `rg` do. Diagnostics go
//! through [`errln!`], which never fails: a server whose log cannot be written keeps serving.

use std::fmt::Arguments;
use std::io::{self, Write};

/// Writes to standard output; the caller's `?` ends the command when stdout is closed.
pub(crate) fn write_stdout(args: Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// Writes bytes to standard output, as [`write_stdout`].
pub(crate) fn write_stdout_bytes(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Writes to standard error and drops any error: diagnostics never end a command.
pub(crate) fn write_stderr(args: Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// True when the error chain holds a write to a closed pipe.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, each cause once: a cause whose text the message
/// already carries (`cannot read x: No such file or directory`) is not repeated.
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// `println!` to standard output that returns from the command on a write error.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` to standard output that returns from the command on a write error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))?
    };
}

/// `eprintln!` that never panics and never fails.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        let err = anyhow::Error::new(io).context(format!("cannot read `x.toml`: {text}"));
        assert_eq!(error_text(&err), format!("cannot read `x.toml`: {text}"));
        let err = anyhow::anyhow!("disk full").context("cannot write the evidence");
        assert_eq!(error_text(&err), "cannot write the evidence: disk full");
    }
}
