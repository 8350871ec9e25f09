//! `runward check`: run the checks once (or on a loop) and print the result.

use crate::cli::CheckArgs;
use anyhow::Result;
use runward::config::Config;
use runward::health::doctor::exit_code;
use runward::health::render::{self, Detail};
use runward::health::{ProbeKind, Registry, Report};
use std::io::{IsTerminal, Write};
use std::time::Duration;

pub(crate) async fn run(config: &Config, args: CheckArgs) -> Result<i32> {
    let registry = config.registry()?;
    let kind: Option<ProbeKind> = args.kind.map(Into::into);
    loop {
        let report = refresh(&registry, kind).await;
        let mut out = std::io::stdout().lock();
        if args.watch && out.is_terminal() {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&render::health_json(&report, Detail::Full))?
            )?;
        } else {
            write!(out, "{}", render::table(&report))?;
        }
        out.flush()?;
        if !args.watch {
            return Ok(exit_code(report.status));
        }
        drop(out);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.interval_ms)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit_code(report.status)),
        }
    }
}

async fn refresh(registry: &Registry, kind: Option<ProbeKind>) -> Report {
    match kind {
        Some(kind) => {
            registry.refresh_kind(kind).await;
            registry.evaluate(kind)
        }
        None => {
            registry.refresh_all().await;
            registry.evaluate_all()
        }
    }
}
