//! Command-line arguments (clap types only; the work lives in `commands`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Operations runbooks as code: health checks, doctor and the probe server.
#[derive(Debug, Parser)]
#[command(name = "runward", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The configuration file (default: ./runward.toml if present, else embedded defaults).
    #[arg(long, short = 'c', global = true, env = "RUNWARD_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the health checks once and print the result.
    ///
    /// Exit codes: 0 pass, 1 fail, 2 bad configuration or usage, 3 warn.
    Check(CheckArgs),
    /// Serve /livez, /readyz, /startupz, /healthz, /readyz/<check> and /metrics.
    ///
    /// On SIGTERM or Ctrl-C, readiness fails at once while liveness keeps passing; the server
    /// exits after the drain period (`server.drain_ms`).
    Serve(ServeArgs),
    /// Run every check, explain failures with remediation hints, and optionally fix them.
    ///
    /// Exit codes: 0 pass, 1 fail, 2 bad configuration or usage, 3 warn.
    Doctor(DoctorArgs),
    /// Runbooks: plan what a run would do.
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    Startup,
    Readiness,
    Liveness,
}

impl From<KindArg> for runward::health::ProbeKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Startup => runward::health::ProbeKind::Startup,
            KindArg::Readiness => runward::health::ProbeKind::Readiness,
            KindArg::Liveness => runward::health::ProbeKind::Liveness,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Only the checks of this probe kind (default: every check).
    #[arg(long, value_enum)]
    pub(crate) kind: Option<KindArg>,
    /// Print application/health+json instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run the checks again every interval and reprint, until interrupted.
    #[arg(long)]
    pub(crate) watch: bool,
    /// The interval of --watch, in milliseconds.
    #[arg(long, default_value_t = 2000, requires = "watch")]
    pub(crate) interval_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The listen address (default: server.addr from the configuration, else 127.0.0.1:8080).
    #[arg(long)]
    pub(crate) addr: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Apply the fixers of failing checks, then check again.
    #[arg(long)]
    pub(crate) fix: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunbookCommand {
    /// Render every effect of a run with its parameters resolved; executes nothing.
    ///
    /// Exit codes: 0 the plan is valid, 2 the runbook or its parameters are invalid.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The runbook file.
    pub(crate) file: PathBuf,
    /// A parameter, as NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
