//! `runward doctor`: run every check, explain failures, optionally fix them.

use crate::cli::DoctorArgs;
use crate::output::{out, outln};
use anyhow::Result;
use runward::config::Config;
use runward::health::doctor::{doctor, doctor_text};

pub(crate) async fn run(config: &Config, args: DoctorArgs) -> Result<i32> {
    let registry = config.registry()?;
    let report = doctor(&registry, args.fix).await;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", doctor_text(&report));
    }
    Ok(report.exit_code)
}
