//! Locating errors in TOML text: byte offsets to `file:line:column`, and the line of a key.

use crate::error::Location;
use std::path::Path;

/// The location of byte `offset` in `text`.
pub(crate) fn location(text: &str, file: Option<&Path>, offset: usize) -> Location {
    let offset = offset.min(text.len());
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
