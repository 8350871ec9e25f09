//! Command-line arguments (clap types only; the work lives in `commands`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Operations runbooks as code: health checks and the probe server, durable runbook runs with
/// approvals and evidence, schedules, flags and lockdown.
#[derive(Debug, Parser)]
#[command(name = "runward", version, long_about = None)]
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
    /// Serve /livez, /readyz, /startupz, /healthz, /readyz/<check> and /metrics; tick the
    /// schedules and drive the runs they queue; sweep dead runs and expired approvals every 5 s.
    ///
    /// With a token in $RUNWARD_ADMIN_TOKEN (see --admin-token-env), also serve the admin API,
    /// JSON behind `Authorization: Bearer <token>`: POST /admin/runs {"runbook", "params",
    /// "started_by"} (runbook path relative to the configuration directory), GET
    /// /admin/runs?status=&since=&limit=, GET /admin/runs/{id}, POST
    /// /admin/runs/{id}/approve|deny {"who", "comment"}, POST /admin/runs/{id}/cancel {"who",
    /// "reason"}.
    ///
    /// On SIGTERM or Ctrl-C, readiness fails at once while liveness keeps passing; the server
    /// exits after the drain period (`server.drain_ms`).
    Serve(ServeArgs),
    /// Run every check, explain failures with remediation hints, and optionally fix them.
    ///
    /// Exit codes: 0 pass, 1 fail, 2 bad configuration or usage, 3 warn.
    Doctor(DoctorArgs),
    /// Runbooks: plan, run and operate durable runs; list, show and export them.
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// Schedules: list them, or tick once (claim due runs, record skipped and missed ones).
    ///
    /// Exit codes: 0 ok, 1 a schedule could not be ticked, 2 bad configuration or usage.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Flags: set, clear and list TTL'd flags such as `restarting`.
    ///
    /// Exit codes: 0 ok, 1 refused (the flag is held by another owner), 2 bad input.
    #[command(subcommand)]
    Flag(FlagCommand),
    /// Turn lockdown on and print its unlock code, shown only once.
    ///
    /// Exit codes: 0 ok, 1 refused (lockdown is already on), 2 bad input.
    Lockdown(LockdownArgs),
    /// End lockdown with its unlock code, or replace the code with --rotate.
    ///
    /// `unlock CODE` ends lockdown. `unlock --rotate CODE` prints a new code in exchange for
    /// the current one (even expired). Without the current code, `unlock --rotate --override
    /// --reason TEXT --as WHO` issues one and records who did it and why with the new code.
    ///
    /// Exit codes: 0 ok, 1 refused (wrong or expired code, no lockdown), 2 bad input.
    Unlock(UnlockArgs),
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
    /// The environment variable holding the bearer token of the admin API under /admin/
    /// (default: server.admin_token_env from the configuration, else RUNWARD_ADMIN_TOKEN);
    /// without a token the admin API is off.
    #[arg(long, value_name = "VAR")]
    pub(crate) admin_token_env: Option<String>,
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
    /// List runs, newest first, e.g. `--status failed --since 1d`.
    List(RunListArgs),
    /// Show one run: its lifecycle, step attempts and errors.
    Show(RunShowArgs),
    /// Export one run's evidence (attempts, hash-chained events, chain verification).
    Export(RunExportArgs),
    /// Run a runbook: create a durable run and drive it until it ends or waits for a decision.
    ///
    /// Progress goes to standard error, one line per event; the result to standard output.
    ///
    /// Exit codes: 0 succeeded; 1 failed, compensated, compensation_failed or cancelled;
    /// 2 bad runbook, bad parameters or a flag requirement refused it (no run is created);
    /// 4 the run waits for a decision (waiting_approval, waiting_operator).
    Run(RunArgs),
    /// Continue a failed, orphaned or waiting run from where it stopped.
    ///
    /// Exit codes: 0 succeeded; 1 failed, compensated, compensation_failed, cancelled, or
    /// refused (the lease is held, the definition changed); 2 bad input; 4 the run waits for a
    /// decision.
    Resume(ResumeArgs),
    /// Run the step a run stopped at again (the same attempt when its outcome is unknown).
    ///
    /// Exit codes: as for `resume`.
    Retry(RetryArgs),
    /// Record the step a run stopped at as skipped, with a reason, and go on.
    ///
    /// Exit codes: as for `resume`.
    Skip(SkipArgs),
    /// Approve the request a run waits for; once approved, resume the run.
    ///
    /// Exit codes: where the run is when the command returns: 0 succeeded; 1 failed,
    /// compensated, compensation_failed, cancelled, or refused (not an approver, the starter,
    /// no open request); 2 bad input; 4 still waiting (quorum not reached, --no-resume).
    Approve(DecideArgs),
    /// Deny the request a run waits for, then resume it so the step fails and its failure
    /// path runs.
    ///
    /// Exit codes: as for `approve` (a denied run usually ends failed: 1).
    Deny(DecideArgs),
    /// Cancel a run: a waiting or stopped run runs its cancel path here; a run driven by
    /// another process is cancelled by that process within a second or so.
    ///
    /// Exit codes: 0 cancelled (or the request was handed to the driving process); 1 the
    /// cancel path failed or the run is already closed; 2 bad input.
    Cancel(CancelArgs),
    /// Mark runs whose driver died `orphaned` and expired approvals `timed_out`.
    ///
    /// `runward serve` does this every few seconds. Exit codes: 0 ok.
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The runbook file.
    pub(crate) file: PathBuf,
    /// A parameter, as NAME=VALUE (repeatable).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Who starts the run, for the evidence and approval rules.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: Option<String>,
    /// Print the outcome (run and open approval) as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The run id.
    pub(crate) run: String,
    /// The runbook file (default: the file the run was started from).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Resume even though the runbook changed since the run started; the override is recorded.
    #[arg(long)]
    pub(crate) override_definition: bool,
    /// Who resumes, for the evidence.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: Option<String>,
    /// Why, for the evidence.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The run id.
    pub(crate) run: String,
    /// The runbook file (default: the file the run was started from).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Who decides, for the evidence.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: String,
    /// Why, for the evidence.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SkipArgs {
    /// The run id.
    pub(crate) run: String,
    /// Why the step is skipped (required), for the evidence.
    #[arg(long)]
    pub(crate) reason: String,
    /// The runbook file (default: the file the run was started from).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Who decides, for the evidence.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DecideArgs {
    /// The run id.
    pub(crate) run: String,
    /// Who decides; checked against the step's approvers.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: String,
    /// A comment, recorded with the decision.
    #[arg(long)]
    pub(crate) comment: Option<String>,
    /// Record the decision only; do not resume the run.
    #[arg(long)]
    pub(crate) no_resume: bool,
    /// The runbook file to resume with (default: the file the run was started from).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The run id.
    pub(crate) run: String,
    /// Who cancels, for the evidence.
    #[arg(long = "as", value_name = "WHO", env = "USER")]
    pub(crate) who: String,
    /// Why, for the evidence.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// The runbook file whose cancel path runs (default: the file the run was started from).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunListArgs {
    /// Only runs in this status (repeatable): queued, running, waiting_approval,
    /// waiting_operator, succeeded, failed, cancelled, compensating, compensated,
    /// compensation_failed, orphaned.
    #[arg(long = "status")]
    pub(crate) statuses: Vec<String>,
    /// Only runs changed within this long, e.g. `1d`, `6h`.
    #[arg(long, value_parser = ttl)]
    pub(crate) since: Option<std::time::Duration>,
    /// Only runs of this runbook.
    #[arg(long)]
    pub(crate) runbook: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunShowArgs {
    /// The run id.
    pub(crate) id: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum EvidenceFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct RunExportArgs {
    /// The run id.
    pub(crate) id: String,
    /// The document format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub(crate) format: EvidenceFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub(crate) output: Option<PathBuf>,
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

/// Parses a TTL such as `30s`, `10m` or `1h`; a bad value is a usage error (exit 2).
fn ttl(text: &str) -> Result<std::time::Duration, String> {
    runward::flags::parse_ttl(text).map_err(|e| e.message().to_owned())
}

#[derive(Debug, Subcommand)]
pub(crate) enum FlagCommand {
    /// Set a flag for an owner until its TTL runs out; the same owner renews it.
    Set(FlagSetArgs),
    /// Clear a flag (with --owner, only when that owner holds it).
    Clear(FlagClearArgs),
    /// List the flags that are set; expired flags are not shown.
    List(FlagListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FlagSetArgs {
    /// The flag's name, e.g. `restarting`.
    pub(crate) name: String,
    /// How long the flag holds unless renewed, e.g. 10m or 1h.
    #[arg(long, value_parser = ttl)]
    pub(crate) ttl: std::time::Duration,
    /// Why the flag is set.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Who holds the flag.
    #[arg(long, default_value = "operator")]
    pub(crate) owner: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FlagClearArgs {
    /// The flag's name.
    pub(crate) name: String,
    /// Clear only if this owner holds the flag (default: whoever holds it).
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct FlagListArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LockdownArgs {
    /// Why lockdown is on.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// How long lockdown lasts unless unlocked.
    #[arg(long, value_parser = ttl, default_value = "1h")]
    pub(crate) ttl: std::time::Duration,
    /// How long the unlock code stays valid.
    #[arg(long, value_parser = ttl, default_value = "1h")]
    pub(crate) code_ttl: std::time::Duration,
    /// Who holds the lockdown.
    #[arg(long, default_value = "operator")]
    pub(crate) owner: String,
    /// Print JSON (it carries the unlock code).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// The unlock code printed by `runward lockdown` or `runward unlock --rotate` (with
    /// --rotate: the current code, which it replaces).
    #[arg(required_unless_present = "override_code")]
    pub(crate) code: Option<String>,
    /// Replace the unlock code and print the new one; the old code stops working.
    #[arg(long)]
    pub(crate) rotate: bool,
    /// With --rotate: issue a new code without the current one. Needs --reason; who and why
    /// are recorded with the new code.
    #[arg(
        long = "override",
        id = "override_code",
        requires_all = ["rotate", "reason"],
        conflicts_with = "code"
    )]
    pub(crate) override_code: bool,
    /// With --override: why the current code cannot be presented.
    #[arg(long, requires = "override_code")]
    pub(crate) reason: Option<String>,
    /// With --override: who overrides (default: $USER).
    #[arg(
        long = "as",
        value_name = "WHO",
        env = "USER",
        default_value = "operator"
    )]
    pub(crate) who: String,
    /// With --rotate: how long the new code stays valid (default: as long as the old one).
    #[arg(long, value_parser = ttl, requires = "rotate")]
    pub(crate) code_ttl: Option<std::time::Duration>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// List the schedules with their next due time and last fire.
    List(ScheduleListArgs),
    /// Sync the schedules from the configuration into the store and tick once.
    Tick(ScheduleTickArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleListArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleTickArgs {
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Evaluate at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub(crate) now: Option<String>,
}
