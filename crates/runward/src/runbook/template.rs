//! `{{ params.name }}` and `{{ run.id }}` substitution in step fields.
//!
//! Templates are deliberately small: a placeholder is a dotted path in double braces. An
//! unknown path is an error that lists what is known; nothing is rendered as empty.

use crate::{Error, Result};
use std::collections::BTreeMap;

/// The values templates can refer to.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// An empty set.
    pub fn new() -> Self {
        Vars::default()
    }

    /// Sets `path` (e.g. `params.service_url`) to `value`.
    pub fn set(&mut self, path: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(path.into(), value.into());
        self
    }

    /// Whether `path` is known.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// Replaces every `{{ path }}` in `text`.
    pub fn render(&self, text: &str) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                Error::invalid(format!(
                    "unclosed `{{{{` in template `{text}`: close it with `}}}}`"
                ))
            })?;
            let path = after[..end].trim();
            let value = self.values.get(path).ok_or_else(|| {
                let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
                Error::invalid(format!(
                    "template refers to `{path}`, which is not defined; known: {}",
                    if known.is_empty() {
                        "nothing".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The placeholder paths used in `text`, in order.
pub(crate) fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses_unknown_paths() {
        let mut vars = Vars::new();
        vars.set("params.url", "http://127.0.0.1:8000")
            .set("run.id", "r1");
        assert_eq!(
            vars.render("{{ params.url }}/readyz?run={{run.id}}")
                .unwrap(),
            "http://127.0.0.1:8000/readyz?run=r1"
        );
        let err = vars.render("{{ params.nope }}").unwrap_err();
        assert!(err.to_string().contains("`params.nope`"), "{err}");
        assert!(err.to_string().contains("params.url"), "{err}");
        assert!(vars.render("{{ params.url").is_err());
        assert_eq!(
            references("a {{ params.a }} b {{run.id}}"),
            vec!["params.a", "run.id"]
        );
    }
}
