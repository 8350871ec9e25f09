//! `runward runbook`: plan runbooks; list, show and export runs.

use super::run;
use crate::cli::{
    EvidenceFormat, PlanArgs, RunExportArgs, RunListArgs, RunShowArgs, RunbookCommand,
};
use crate::output::{out, outln};
use anyhow::Result;
use runward::config::Config;
use runward::runbook::{Evidence, Runbook};
use runward::store::{ApprovalStatus, RunFilter, RunId, RunStatus, Store, Timestamp};
use serde_json::Value;
use std::collections::BTreeMap;

/// `runward runbook plan`.
pub(crate) fn plan(args: &PlanArgs) -> Result<i32> {
    let runbook = Runbook::load(&args.file)?;
    let params = parse_params(&args.params)?;
    let plan = runward::runbook::plan(&runbook, &params)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        out!("{}", plan.to_text());
    }
    Ok(0)
}

/// The run commands, over the state store.
pub(crate) async fn runs(config: &Config, command: RunbookCommand) -> Result<i32> {
    match command {
        RunbookCommand::Plan(args) => plan(&args),
        RunbookCommand::List(args) => list(&config.open_store_for_reading().await?, args).await,
        RunbookCommand::Show(args) => show(&config.open_store_for_reading().await?, args).await,
        RunbookCommand::Export(args) => export(&config.open_store_for_reading().await?, args).await,
        RunbookCommand::Run(args) => run::run(config, args).await,
        RunbookCommand::Resume(args) => run::resume(config, args).await,
        RunbookCommand::Retry(args) => run::retry(config, args).await,
        RunbookCommand::Skip(args) => run::skip(config, args).await,
        RunbookCommand::Approve(args) => run::decide(config, args, true).await,
        RunbookCommand::Deny(args) => run::decide(config, args, false).await,
        RunbookCommand::Cancel(args) => run::cancel(config, args).await,
        RunbookCommand::Sweep(args) => run::sweep(config, args).await,
    }
}

async fn list(store: &dyn Store, args: RunListArgs) -> Result<i32> {
    let statuses = args
        .statuses
        .iter()
        .map(|s| s.parse::<RunStatus>())
        .collect::<runward::Result<Vec<_>>>()?;
    let filter = RunFilter {
        statuses,
        runbook: args.runbook,
        updated_after: args.since.map(|d| Timestamp::now() - d),
        limit: Some(args.limit),
        ..RunFilter::default()
    };
    let runs = store.list_runs(&filter).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(0);
    }
    if runs.is_empty() {
        outln!("no runs match");
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|run| {
            [
                run.id.to_string(),
                run.runbook.clone(),
                run.status.to_string(),
                run.updated_at.to_string(),
                run.started_by.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out!(
        "{}",
        runward::table::render(
            &["RUN", "RUNBOOK", "STATUS", "UPDATED", "STARTED BY"],
            &rows
        )
    );
    Ok(0)
}

async fn show(store: &dyn Store, args: RunShowArgs) -> Result<i32> {
    let details = store.run_details(&RunId::from(args.id.as_str())).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&details)?);
        return Ok(0);
    }
    let run = &details.run;
    outln!("run {} ({})", run.id, run.runbook);
    outln!("status: {}", run.status);
    outln!("created: {}  updated: {}", run.created_at, run.updated_at);
    if let Some(by) = &run.started_by {
        outln!("started by: {by}");
    }
    if let Some(error) = &run.error {
        let label = if run.status.is_terminal() {
            "error"
        } else {
            "reason"
        };
        outln!("{label}: {error}");
    }
    if run.status == RunStatus::WaitingApproval {
        let approvals = store.list_approvals(&run.id).await?;
        if let Some(a) = approvals
            .iter()
            .rev()
            .find(|a| matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Approved))
        {
            let given: Vec<&str> = a.approvals.iter().map(|v| v.who.as_str()).collect();
            outln!(
                "waiting for approval {} ({}): {} of {} given{}; expires {}",
                a.id,
                a.status,
                given.len(),
                a.quorum,
                if given.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", given.join(", "))
                },
                a.expires_at
            );
            if !a.approvers.is_empty() {
                outln!("approvers: {}", a.approvers.join(", "));
            }
            outln!(
                "decide with: runward runbook approve {} --as WHO  (or deny)",
                run.id
            );
        }
    }
    if details.attempts.is_empty() {
        outln!("no step has started");
    }
    for a in &details.attempts {
        let error = a
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        outln!(
            "  step {} `{}` attempt {}: {}{error}",
            a.step_index + 1,
            a.step_id,
            a.attempt,
            a.status
        );
    }
    for e in &details.events {
        outln!("  event {} {} {}", e.seq, e.at, e.kind);
    }
    Ok(0)
}

async fn export(store: &dyn Store, args: RunExportArgs) -> Result<i32> {
    let evidence = Evidence::collect(store, &RunId::from(args.id.as_str())).await?;
    let text = match args.format {
        EvidenceFormat::Markdown => evidence.to_markdown(),
        EvidenceFormat::Json => evidence.to_json(),
    };
    match args.output {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?,
        None => out!("{text}"),
    }
    // A chain that does not verify is reported in the document and by the exit code.
    Ok(if evidence.chain.first_bad.is_none() {
        0
    } else {
        1
    })
}

/// `NAME=VALUE` pairs; values stay strings and the core converts them to the declared types.
pub(crate) fn parse_params(pairs: &[String]) -> runward::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(runward::Error::new(
                runward::ErrorKind::InvalidInput,
                format!("`--param {pair}` needs the form NAME=VALUE"),
            ));
        };
        out.insert(name.trim().to_owned(), Value::String(value.to_owned()));
    }
    Ok(out)
}
