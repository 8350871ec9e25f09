//! Locating errors in TOML text: byte offsets to `file:line:column`, and the line of a key.

use crate::error::Location;
use crate::{Error, Result};
use std::path::Path;

/// Reads a UTF-8 text file; `what` names it in errors (`configuration`, `runbook`). Bytes
/// that are not UTF-8 are a [`Config`](crate::ErrorKind::Config) error located at the first
/// of them.
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String> {
    if path.is_dir() {
        return Err(Error::invalid(format!(
            "`{}` is a directory: name the {what} file (a .toml file) instead",
            path.display()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read {what} `{}`", path.display()), e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]);
        Error::config(format!(
            "the {what} is not UTF-8 text: byte 0x{:02x} at offset {valid}; save the file as UTF-8",
            e.as_bytes()[valid]
        ))
        .with_location(location(&text, Some(path), valid))
    })
}

/// The location of byte `offset` in `text` (a position inside a character counts as the
/// character's start).
pub(crate) fn location(text: &str, file: Option<&Path>, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    Location {
        file: file.map(Path::to_path_buf),
        line,
        column,
    }
}

/// The byte offset of `key = ...` in the table starting at `start`, up to the next header.
pub(crate) fn key_offset(text: &str, start: usize, key: &str) -> Option<usize> {
    let region = text.get(start..)?;
    let mut offset = start;
    for (i, line) in region.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            return None;
        }
        if let Some(rest) = trimmed.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(offset + (line.len() - trimmed.len()));
            }
        }
        offset += line.len();
    }
    None
}
