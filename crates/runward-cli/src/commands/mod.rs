//! The commands behind the CLI.

mod admin;
mod check;
mod doctor;
mod flag;
mod run;
mod runbook;
mod schedule;
mod serve;

use crate::cli::{Cli, Command, RunbookCommand};
use anyhow::Result;
use clap::CommandFactory;
use runward::config::Config;
use runward::health::doctor::EXIT_BAD_CONFIG;

/// Runs a parsed command line and returns the exit code.
pub(crate) fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Completions { shell } => {
            // Rendered first: clap_complete panics when its writer fails.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "runward", &mut script);
            crate::output::write_stdout_bytes(&script)?;
            return Ok(0);
        }
        // Runbook planning needs neither the configuration nor a runtime.
        Command::Runbook(RunbookCommand::Plan(args)) => return runbook::plan(args),
        _ => {}
    }
    let config = Config::discover(cli.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("runward")
        .enable_all()
        .build()?;
    match cli.command {
        Command::Check(args) => runtime.block_on(check::run(&config, args)),
        Command::Serve(args) => runtime.block_on(serve::run(&config, args)),
        Command::Doctor(args) => runtime.block_on(doctor::run(&config, args)),
        Command::Schedule(command) => runtime.block_on(schedule::run(&config, command)),
        Command::Flag(command) => runtime.block_on(flag::flag(&config, command)),
        Command::Lockdown(args) => runtime.block_on(flag::lockdown(&config, args)),
        Command::Unlock(args) => runtime.block_on(flag::unlock(&config, args)),
        Command::Runbook(command) => runtime.block_on(runbook::runs(&config, command)),
        Command::Completions { .. } => unreachable!("handled above"),
    }
}

/// The exit code for an error that ended the command: 2 for configuration errors, else 1.
pub(crate) fn exit_code_for(err: &anyhow::Error) -> i32 {
    match err
        .downcast_ref::<runward::Error>()
        .map(runward::Error::kind)
    {
        Some(
            runward::ErrorKind::Config
            | runward::ErrorKind::InvalidInput
            | runward::ErrorKind::NotFound,
        ) => EXIT_BAD_CONFIG,
        _ => 1,
    }
}
