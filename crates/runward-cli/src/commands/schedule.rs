//! `runward schedule`: list schedules, tick once.

use crate::cli::{ScheduleCommand, ScheduleListArgs, ScheduleTickArgs};
use crate::output::{errln, out, outln};
use anyhow::Result;
use runward::config::Config;
use runward::schedule::{Scheduler, parse_time};
use runward::store::{Store, Timestamp};
use std::sync::Arc;

pub(crate) async fn run(config: &Config, command: ScheduleCommand) -> Result<i32> {
    let store: Arc<dyn Store> = match command {
        ScheduleCommand::List(_) => Arc::new(config.open_store_for_reading().await?),
        ScheduleCommand::Tick(_) => Arc::new(config.open_store().await?),
    };
    let scheduler = Scheduler::new(store);
    match command {
        ScheduleCommand::List(args) => list(config, &scheduler, args).await,
        ScheduleCommand::Tick(args) => tick(config, &scheduler, args).await,
    }
}

async fn list(config: &Config, scheduler: &Scheduler, args: ScheduleListArgs) -> Result<i32> {
    scheduler.sync(&config.schedules).await?;
    let statuses = scheduler.status(Timestamp::now()).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(0);
    }
    if statuses.is_empty() {
        outln!("no schedules: add [[schedules]] entries to the configuration");
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = statuses
        .iter()
        .map(|s| {
            let def = &s.record.def;
            let name = if def.enabled {
                def.name.clone()
            } else {
                format!("{} (disabled)", def.name)
            };
            [
                name,
                def.spec.clone(),
                def.time_zone.clone(),
                s.next_due.map_or("-".into(), |t| t.to_string()),
                s.last_fire
                    .as_ref()
                    .map_or("-".into(), |f| format!("{} {}", f.due_at, f.status)),
            ]
        })
        .collect();
    out!(
        "{}",
        runward::table::render(&["NAME", "SPEC", "ZONE", "NEXT DUE", "LAST FIRE"], &rows)
    );
    Ok(0)
}

async fn tick(config: &Config, scheduler: &Scheduler, args: ScheduleTickArgs) -> Result<i32> {
    let now = match &args.now {
        Some(text) => parse_time(text)?,
        None => Timestamp::now(),
    };
    let synced = scheduler.sync(&config.schedules).await?;
    let report = scheduler.tick(now).await?;
    let code = if report.errors.is_empty() { 0 } else { 1 };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["synced"] = serde_json::to_value(&synced)?;
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(code);
    }
    outln!(
        "tick at {now}: {} schedules, {} claimed, {} already handled by another process, {} skipped, {} missed",
        report.schedules,
        report.claimed.len(),
        report.lost.len(),
        report.skipped.len(),
        report.missed.len()
    );
    for d in &report.claimed {
        outln!("claimed  {}  {}  run {}", d.schedule, d.due_at, d.run_id);
    }
    for l in &report.lost {
        outln!("other    {}  {}  {}", l.schedule, l.due_at, l.status);
    }
    for r in &report.skipped {
        outln!("skipped  {}  {}  {}", r.schedule, r.due_at, r.reason);
    }
    for r in &report.missed {
        outln!("missed   {}  {}  {}", r.schedule, r.due_at, r.reason);
    }
    for e in &report.errors {
        errln!("error: schedule `{}`: {}", e.schedule, e.message);
    }
    Ok(code)
}
