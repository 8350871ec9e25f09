//! The one rule for names: checks, steps, runbooks, schedules and flags.
//!
//! A name is 1 to [`MAX_NAME_LEN`] characters, each an ASCII letter or digit, `-`, `_` or `.`
//! (`db`, `memory-kernel`, `controlled-restart.v2`). Names end up in URLs (`/readyz/<check>`),
//! metric labels, file names and tables, so the rule is checked where a name enters: when a
//! file is loaded (with its line) or a builder or binding is given one.

use crate::{Error, Result};

/// The longest name accepted, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// Checks `name` against the rule; `what` says what it names (`check name`, `step id`, ...).
/// Fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), quoting at most
/// the start of an overlong or odd name.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let rule = "names are 1 to 128 characters: letters, digits, `-`, `_` or `.`";
    if name.is_empty() {
        return Err(Error::invalid(format!("{what} is empty: {rule}")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} `{}` is {} characters long: {rule}",
            shown(name),
            name.chars().count()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
    {
        return Err(Error::invalid(format!(
            "{what} `{}` contains {}: {rule}",
            shown(name),
            if bad == ' ' {
                "a space".to_owned()
            } else {
                format!("`{}`", bad.escape_debug())
            }
        )));
    }
    Ok(())
}

/// At most the first 40 characters of `text`, escaped, with `…` when cut.
pub(crate) fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(40).flat_map(char::escape_debug).collect();
    if text.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_accepts_plain_names_and_explains_refusals() {
        for ok in ["db", "memory-kernel", "v1.2_beta", &"a".repeat(128)] {
            validate_name("check name", ok).unwrap();
        }
        let long = "x".repeat(1 << 20);
        let err = validate_name("check name", &long).unwrap_err();
        assert!(
            err.message().contains("is 1048576 characters long"),
            "{err}"
        );
        assert!(err.message().len() < 200, "the name is not echoed whole");
        let err = validate_name("flag name", "two words").unwrap_err();
        assert!(err.message().contains("contains a space"), "{err}");
        let err = validate_name("step id", "a/b").unwrap_err();
        assert!(err.message().contains("contains `/`"), "{err}");
        let err = validate_name("runbook name", "").unwrap_err();
        assert!(err.message().starts_with("runbook name is empty"), "{err}");
        assert!(validate_name("x", "é").is_err());
    }
}
