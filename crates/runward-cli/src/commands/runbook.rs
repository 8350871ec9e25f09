//! `runward runbook`: plan runbooks.

use crate::cli::{PlanArgs, RunbookCommand};
use anyhow::{Result, bail};
use runward::runbook::{Runbook, plan};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) fn run(command: &RunbookCommand) -> Result<i32> {
    match command {
        RunbookCommand::Plan(args) => plan_command(args),
    }
}

fn plan_command(args: &PlanArgs) -> Result<i32> {
    let runbook = Runbook::load(&args.file)?;
    let params = parse_params(&args.params)?;
    let plan = plan(&runbook, &params)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan.to_text());
    }
    Ok(0)
}

/// `NAME=VALUE` pairs; values stay strings and the core converts them to the declared types.
fn parse_params(pairs: &[String]) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!(runward::Error::new(
                runward::ErrorKind::InvalidInput,
                format!("`--param {pair}` needs the form NAME=VALUE")
            ));
        };
        out.insert(name.trim().to_owned(), Value::String(value.to_owned()));
    }
    Ok(out)
}
