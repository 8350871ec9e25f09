//! The `runward` command line.

mod cli;
mod commands;
mod output;

use clap::Parser;
use output::errln;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        // The reader went away (`runward runbook list | head`): nothing left to say.
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            errln!("error: {}", output::error_text(&err));
            ExitCode::from(commands::exit_code_for(&err) as u8)
        }
    }
}
