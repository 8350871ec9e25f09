//! `runward flag set|clear|list`, `runward lockdown` and `runward unlock`.
//!
//! Exit codes: 0 ok, 1 refused (a flag held by another owner, a wrong or expired code, no
//! lockdown to end), 2 bad input.

use crate::cli::{FlagClearArgs, FlagCommand, FlagListArgs, FlagSetArgs, LockdownArgs, UnlockArgs};
use crate::output::{errln, out, outln};
use anyhow::Result;
use runward::config::Config;
use runward::flags::{Flags, LOCKDOWN, RotateAuthority};
use runward::store::Flag;
use runward::{Error, ErrorKind};
use serde_json::{Value, json};
use std::sync::Arc;

const EXIT_REFUSED: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

pub(crate) async fn flag(config: &Config, command: FlagCommand) -> Result<i32> {
    match command {
        FlagCommand::Set(args) => set(config, args).await,
        FlagCommand::Clear(args) => clear(config, args).await,
        FlagCommand::List(args) => list(config, args).await,
    }
}

async fn open(config: &Config) -> Result<Flags> {
    Ok(Flags::new(Arc::new(config.open_store().await?)))
}

async fn set(config: &Config, args: FlagSetArgs) -> Result<i32> {
    if args.name == LOCKDOWN {
        return refuse(
            Error::new(
                ErrorKind::InvalidInput,
                "lockdown comes with an unlock code: start it with `runward lockdown`",
            ),
            args.json,
        );
    }
    let flags = open(config).await?;
    match flags
        .set(&args.name, &args.owner, args.ttl, args.reason.as_deref())
        .await
    {
        Ok(flag) => {
            if args.json {
                print_json(&serde_json::to_value(&flag)?)?;
            } else {
                outln!("set {}", describe(&flag));
            }
            Ok(0)
        }
        Err(e) => refuse(e, args.json),
    }
}

async fn clear(config: &Config, args: FlagClearArgs) -> Result<i32> {
    if args.name == LOCKDOWN {
        return refuse(
            Error::new(
                ErrorKind::InvalidInput,
                "lockdown is ended with its unlock code: run `runward unlock <code>` (or `runward unlock --rotate` for a new code)",
            ),
            args.json,
        );
    }
    let flags = open(config).await?;
    match flags.clear(&args.name, args.owner.as_deref()).await {
        Ok(cleared) => {
            if args.json {
                print_json(&json!({ "name": args.name, "cleared": cleared }))?;
            } else if cleared {
                outln!("cleared flag `{}`", args.name);
            } else {
                outln!("flag `{}` was not set; nothing to clear", args.name);
            }
            Ok(0)
        }
        Err(e) => refuse(e, args.json),
    }
}

async fn list(config: &Config, args: FlagListArgs) -> Result<i32> {
    let flags = Flags::new(Arc::new(config.open_store_for_reading().await?))
        .list()
        .await?;
    if args.json {
        print_json(&serde_json::to_value(&flags)?)?;
        return Ok(0);
    }
    if flags.is_empty() {
        outln!("no flags are set");
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = flags
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                f.owner.clone(),
                f.expires_at.to_string(),
                f.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out!(
        "{}",
        runward::table::render(&["NAME", "OWNER", "EXPIRES", "REASON"], &rows)
    );
    Ok(0)
}

pub(crate) async fn lockdown(config: &Config, args: LockdownArgs) -> Result<i32> {
    let flags = open(config).await?;
    let lockdown = match flags
        .lockdown_with_code_ttl(&args.owner, args.reason.as_deref(), args.ttl, args.code_ttl)
        .await
    {
        Ok(lockdown) => lockdown,
        Err(e) => return refuse(e, args.json),
    };
    let code = lockdown.code.expose();
    if args.json {
        print_json(&json!({
            "flag": lockdown.flag,
            "code": code,
            "code_expires_at": lockdown.code_record.expires_at,
            "code_generation": lockdown.code_record.generation,
        }))?;
    } else {
        outln!("{}", describe(&lockdown.flag));
        outln!(
            "unlock code (shown only once, valid until {}): {code}",
            lockdown.code_record.expires_at
        );
        outln!("end it with: runward unlock {code}");
    }
    Ok(0)
}

pub(crate) async fn unlock(config: &Config, args: UnlockArgs) -> Result<i32> {
    let flags = open(config).await?;
    if args.rotate {
        let issued = match RotateAuthority::from_options(
            args.code.as_deref(),
            args.reason.as_deref(),
            Some(&args.who),
        ) {
            Ok(authority) => flags.rotate_unlock_code(authority, args.code_ttl).await,
            Err(e) => Err(e),
        };
        let issued = match issued {
            Ok(issued) => issued,
            Err(e) => return refuse(e, args.json),
        };
        let code = issued.code.expose();
        if args.json {
            print_json(&json!({
                "code": code,
                "expires_at": issued.record.expires_at,
                "generation": issued.record.generation,
                "issued_by": issued.record.issued_by,
                "override_reason": issued.record.override_reason,
            }))?;
        } else {
            outln!(
                "new unlock code (shown only once, valid until {}): {code}",
                issued.record.expires_at
            );
            outln!("the previous code no longer works");
            if let Some(reason) = &issued.record.override_reason {
                outln!(
                    "recorded: issued by {} without the current code, reason: {reason}",
                    issued.record.issued_by.as_deref().unwrap_or("?")
                );
            }
        }
        return Ok(0);
    }
    let code = args.code.as_deref().unwrap_or_default();
    match flags.unlock(code).await {
        Ok(unlocked) => {
            if args.json {
                print_json(&json!({ "unlocked": true, "flag": unlocked.flag }))?;
            } else {
                match &unlocked.flag {
                    Some(flag) => outln!(
                        "lockdown ended (it was held by {}{})",
                        flag.owner,
                        reason_suffix(flag)
                    ),
                    None => outln!("lockdown had already expired; its unlock code is cleared"),
                }
            }
            Ok(0)
        }
        Err(e) => refuse(e, args.json),
    }
}

/// Reports a refusal or bad input and picks its exit code; other errors end the command.
fn refuse(err: Error, json: bool) -> Result<i32> {
    let code = match err.kind() {
        ErrorKind::InvalidInput => EXIT_BAD_INPUT,
        ErrorKind::Conflict | ErrorKind::PolicyDenied | ErrorKind::NotFound => EXIT_REFUSED,
        _ => return Err(err.into()),
    };
    if json {
        print_json(&json!({
            "error": { "kind": err.kind().as_str(), "message": err.message() }
        }))?;
    }
    errln!("error: {err}");
    Ok(code)
}

fn describe(flag: &Flag) -> String {
    let what = if flag.name == LOCKDOWN {
        "lockdown is on".to_owned()
    } else {
        format!("flag `{}`", flag.name)
    };
    format!(
        "{what}: held by {} until {}{}",
        flag.owner,
        flag.expires_at,
        reason_suffix(flag)
    )
}

fn reason_suffix(flag: &Flag) -> String {
    flag.reason
        .as_deref()
        .map(|r| format!(", reason: {r}"))
        .unwrap_or_default()
}

fn print_json(value: &Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
