//! Evidence: one run exported as a single Markdown or JSON document — the run, every step
//! attempt, the hash-chained event log, and the result of verifying that chain.
//!
//! Event data is written redacted by whoever appends it; the export adds nothing that was not
//! in the store.

use crate::Result;
use crate::store::{ChainReport, Event, Run, RunId, StepAttempt, Store, Timestamp};
use serde::Serialize;
use std::fmt::Write as _;

/// Everything recorded about one run, with the verdict on its event chain.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The run.
    pub run: Run,
    /// Its step attempts, by step then attempt.
    pub attempts: Vec<StepAttempt>,
    /// Its events, in order.
    pub events: Vec<Event>,
    /// Whether the event chain verified, and where it broke if not.
    pub chain: ChainReport,
    /// When this document was made.
    pub exported_at: Timestamp,
}

impl Evidence {
    /// Reads a run's evidence from the store and verifies its event chain.
    pub async fn collect(store: &dyn Store, run: &RunId) -> Result<Evidence> {
        let details = store.run_details(run).await?;
        let chain = store.verify_events(run).await?;
        Ok(Evidence {
            run: details.run,
            attempts: details.attempts,
            events: details.events,
            chain,
            exported_at: Timestamp::now(),
        })
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("evidence always serializes")
    }

    /// The document as Markdown.
    pub fn to_markdown(&self) -> String {
        let run = &self.run;
        let mut out = format!("# Run {} — `{}`\n\n", run.id, run.runbook);
        let _ = writeln!(out, "| field | value |\n| --- | --- |");
        let _ = writeln!(out, "| status | {} |", run.status.as_str());
        let _ = writeln!(
            out,
            "| started by | {} |",
            run.started_by.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "| created | {} |", run.created_at);
        let _ = writeln!(out, "| updated | {} |", run.updated_at);
        let _ = writeln!(out, "| definition | `{}` |", run.definition_hash);
        if let Some(fire) = &run.fire {
            let _ = writeln!(out, "| schedule | {} at {} |", fire.schedule, fire.due_at);
        }
        if let Some(error) = &run.error {
            let _ = writeln!(out, "| error | {} |", cell(error));
        }
        let params = pretty(&run.params);
        let fence = "`".repeat(longest_backtick_run(&params).max(2) + 1);
        let _ = writeln!(out, "\n## Parameters\n\n{fence}json\n{params}\n{fence}");
        out.push_str("\n## Steps\n\n");
        if self.attempts.is_empty() {
            out.push_str("No step has started.\n");
        } else {
            out.push_str(
                "| # | step | attempt | status | started | finished | idempotency key | error |\n",
            );
            out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
            for a in &self.attempts {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | `{}` | {} |",
                    a.step_index + 1,
                    a.step_id,
                    a.attempt,
                    a.status.as_str(),
                    a.started_at,
                    a.finished_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                    a.idempotency_key,
                    a.error.as_deref().map(cell).unwrap_or_else(|| "-".into()),
                );
            }
        }
        out.push_str("\n## Events\n\n");
        if self.events.is_empty() {
            out.push_str("No events.\n");
        }
        for e in &self.events {
            let _ = writeln!(
                out,
                "{}. {} `{}` {} (hash `{}`)",
                e.seq,
                e.at,
                e.kind,
                compact(&e.data),
                &e.hash[..e.hash.len().min(16)]
            );
        }
        out.push_str("\n## Integrity\n\n");
        if self.chain.first_bad.is_none() {
            let _ = writeln!(
                out,
                "The event chain verifies: {} event(s), each hash-linked to the one before.",
                self.chain.events
            );
        } else {
            let _ = writeln!(
                out,
                "The event chain does NOT verify. Last good event: {}. First fault: {}.",
                self.chain
                    .last_good_seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into()),
                self.chain
                    .first_bad
                    .as_ref()
                    .map(|b| serde_json::to_string(b).unwrap_or_default())
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out, "\nExported at {}.", self.exported_at);
        out
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(map) if map.is_empty() => String::new(),
        other => code(&other.to_string()),
    }
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as a Markdown inline code span that shows it verbatim (CommonMark): the fence is
/// one backtick longer than any run of backticks inside, with a space either side (which
/// renderers strip) when the text holds backticks or starts or ends with a space.
fn code(text: &str) -> String {
    let inner = longest_backtick_run(text);
    let fence = "`".repeat(inner + 1);
    let pad = if inner > 0 || text.starts_with(' ') || text.ends_with(' ') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The text a CommonMark renderer shows for a code span written by [`code`].
    fn rendered(span: &str) -> String {
        let fence = span.len() - span.trim_start_matches('`').len();
        let inner = &span[fence..span.len() - fence];
        match inner.strip_prefix(' ').and_then(|i| i.strip_suffix(' ')) {
            Some(stripped) if !inner.trim().is_empty() => stripped.to_owned(),
            _ => inner.to_owned(),
        }
    }

    #[test]
    fn code_spans_show_backticks_and_spaces_verbatim() {
        for text in [
            "plain",
            r#"{"cmd":"echo `date`"}"#,
            "``double`` and `single`",
            "`starts",
            "ends`",
            " spaced ",
        ] {
            let span = code(text);
            let fence = span.len() - span.trim_start_matches('`').len();
            assert!(fence > longest_backtick_run(text), "{span}");
            assert_eq!(rendered(&span), text, "{span}");
        }
        assert_eq!(compact(&json!({"a": "`x`"})), r#"`` {"a":"`x`"} ``"#);
    }
}
