//! The `Flags` class: the core's flags and lockdown over a state database, as `runward flag`,
//! `runward lockdown` and `runward unlock` use them.
//!
//! Every method returns a promise: bad arguments reject too, with code `invalid_input`.

use crate::error::invalid;
use crate::health::{promise, to_json};
use napi::Env;
use napi::bindgen_prelude::AsyncBlock;
use napi_derive::napi;
use runward::flags as core;
use runward::store::SqliteStore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The lockdown TTL when none is given, as `runward lockdown` defaults it (1 hour).
const DEFAULT_LOCKDOWN_TTL_MS: u64 = 3_600_000;

/// Reads an options object whose fields are required: a missing object is read as `{}`, so
/// the error names the first missing field.
fn required<T: DeserializeOwned>(what: &str, value: Option<Value>) -> runward::Result<T> {
    let value = match value {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(value) => value,
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            invalid(format!("invalid {what}: {inner}"))
        } else {
            invalid(format!("invalid {what}: `{path}`: {inner}"))
        }
    })
}

/// The flag names of `requireAbsent` and `requirePresent`: an array of strings.
fn flag_names(value: Value) -> runward::Result<Vec<String>> {
    serde_json::from_value(value).map_err(|_| {
        invalid("flag names must be an array of strings, such as ['lockdown', 'restarting']")
    })
}

/// Options of `flags.set()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FlagSetOptions {
    /// How long the flag holds unless renewed, in milliseconds.
    #[napi(ts_type = "number")]
    pub ttl_ms: u64,
    /// Who holds the flag: a run id or a stable name.
    pub owner: String,
    /// Why the flag is set.
    pub reason: Option<String>,
}

/// Options of `flags.renew()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FlagRenewOptions {
    /// The new lifetime from now, in milliseconds.
    #[napi(ts_type = "number")]
    pub ttl_ms: u64,
    /// The owner that holds the flag.
    pub owner: String,
}

/// Options of `flags.lockdown()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LockdownOptions {
    /// Who holds the lockdown.
    pub owner: String,
    /// Why lockdown is on.
    pub reason: Option<String>,
    /// How long lockdown lasts unless unlocked, in milliseconds (default 1 hour).
    #[napi(ts_type = "number")]
    pub ttl_ms: Option<u64>,
    /// How long the unlock code stays valid, in milliseconds (default: as long as lockdown).
    #[napi(ts_type = "number")]
    pub code_ttl_ms: Option<u64>,
}

/// Options of `flags.rotateUnlockCode()`: the current `code`, or `overrideReason` and `who`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RotateUnlockCodeOptions {
    /// The current unlock code; an expired one counts.
    pub code: Option<String>,
    /// Why the current code cannot be presented; recorded with the new code.
    pub override_reason: Option<String>,
    /// Who overrides; recorded with the new code.
    pub who: Option<String>,
    /// How long the new code stays valid, in milliseconds (default: as long as the old one).
    #[napi(ts_type = "number")]
    pub ttl_ms: Option<u64>,
}

/// Flags and lockdown kept in a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `await Flags.open(path)`. Every method returns a promise and calls the core's
/// flags service on runward's threads; rejections carry the core's error kind as `code`
/// (`conflict` for a flag held by another owner, `policy_denied` for a wrong unlock code,
/// `conflict` for an expired one, `not_found` when none is set). Flags are the JSON of
/// `runward flag list --json`.
#[napi]
pub struct Flags {
    inner: core::Flags,
    path: String,
}

#[napi]
impl Flags {
    /// Opens (creating it and its folder if needed) and migrates the state database at
    /// `path`.
    #[napi(ts_return_type = "Promise<Flags>")]
    pub fn open(env: Env, path: String) -> napi::Result<AsyncBlock<Flags>> {
        promise(
            &env,
            async move {
                let store = SqliteStore::open(&path).await?;
                Ok(Flags {
                    inner: core::Flags::new(Arc::new(store)),
                    path,
                })
            },
            Ok,
        )
    }

    /// The state database file.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// Sets flag `name` for `options.owner` for `options.ttlMs` and resolves to it. Setting a
    /// flag the same owner holds renews it; while another owner holds it, rejects with code
    /// `conflict` naming that owner. Empty names or owners and a zero TTL reject with
    /// `invalid_input`.
    #[napi(
        ts_args_type = "name: string, options: FlagSetOptions",
        ts_return_type = "Promise<Flag>"
    )]
    pub fn set(
        &self,
        env: Env,
        name: String,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let options: FlagSetOptions = required("flag options", options)?;
                let ttl = Duration::from_millis(options.ttl_ms);
                flags
                    .set(&name, &options.owner, ttl, options.reason.as_deref())
                    .await
            },
            |flag| to_json(&flag),
        )
    }

    /// Extends `options.owner`'s flag to now + `options.ttlMs` (a heartbeat). Rejects with
    /// `not_found` when the flag lapsed and `conflict` when another owner holds it.
    #[napi(
        ts_args_type = "name: string, options: FlagRenewOptions",
        ts_return_type = "Promise<Flag>"
    )]
    pub fn renew(
        &self,
        env: Env,
        name: String,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let options: FlagRenewOptions = required("renew options", options)?;
                let ttl = Duration::from_millis(options.ttl_ms);
                flags.renew(&name, &options.owner, ttl).await
            },
            |flag| to_json(&flag),
        )
    }

    /// Clears flag `name` and resolves to whether an unexpired flag was cleared. With `owner`,
    /// rejects with `conflict` when another owner holds it; without, clears it whoever holds
    /// it. Clearing `lockdown` deletes its unlock code too: prefer `unlock(code)`.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn clear(
        &self,
        env: Env,
        name: String,
        owner: Option<String>,
    ) -> napi::Result<AsyncBlock<bool>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move { flags.clear(&name, owner.as_deref()).await },
            Ok,
        )
    }

    /// Flag `name`, or `null` when it is absent or expired.
    #[napi(ts_return_type = "Promise<Flag | null>")]
    pub fn get(&self, env: Env, name: String) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(&env, async move { flags.get(&name).await }, |flag| {
            to_json(&flag)
        })
    }

    /// Every unexpired flag, by name.
    #[napi(ts_return_type = "Promise<Flag[]>")]
    pub fn list(&self, env: Env) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(&env, async move { flags.list().await }, |list| {
            to_json(&list)
        })
    }

    /// Resolves when none of `names` is set; otherwise rejects with `conflict` naming each
    /// flag that is set, its owner, reason and expiry.
    #[napi(ts_args_type = "names: string[]", ts_return_type = "Promise<void>")]
    pub fn require_absent(&self, env: Env, names: Value) -> napi::Result<AsyncBlock<()>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let names = flag_names(names)?;
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                flags.require_absent(&names).await
            },
            Ok,
        )
    }

    /// Resolves to the flags when every one of `names` is set; otherwise rejects with
    /// `conflict` naming the missing ones.
    #[napi(ts_return_type = "Promise<Flag[]>")]
    pub fn require_present(&self, env: Env, names: Vec<String>) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                flags.require_present(&names).await
            },
            |list| to_json(&list),
        )
    }

    /// Turns lockdown on for `options.owner` and resolves to a fresh unlock code, shown only
    /// here. While lockdown is on, whoever holds it, rejects with `conflict` naming the holder
    /// and how long it has been on.
    #[napi(
        ts_args_type = "options: LockdownOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn lockdown(&self, env: Env, options: Option<Value>) -> napi::Result<AsyncBlock<String>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let options: LockdownOptions = required("lockdown options", options)?;
                let ttl = Duration::from_millis(options.ttl_ms.unwrap_or(DEFAULT_LOCKDOWN_TTL_MS));
                let code_ttl = options.code_ttl_ms.map_or(ttl, Duration::from_millis);
                let lockdown = flags
                    .lockdown_with_code_ttl(
                        &options.owner,
                        options.reason.as_deref(),
                        ttl,
                        code_ttl,
                    )
                    .await?;
                Ok(lockdown.code.expose().to_owned())
            },
            Ok,
        )
    }

    /// Ends lockdown with its unlock code and resolves to the lockdown flag it cleared
    /// (`null` when it had already expired). Changes nothing and rejects with `policy_denied`
    /// for a wrong code, `conflict` for an expired one, `not_found` when no code is set and
    /// `invalid_input` for an empty one.
    #[napi(ts_return_type = "Promise<Flag | null>")]
    pub fn unlock(&self, env: Env, code: String) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(&env, async move { flags.unlock(&code).await }, |unlocked| {
            to_json(&unlocked.flag)
        })
    }

    /// Replaces the unlock code and resolves to the new one; the old code stops working.
    /// `options.code` is the current code (an expired one counts); without it,
    /// `overrideReason` and `who` are required and recorded with the new code. The new code
    /// lives `ttlMs`, or as long as the previous one did. Rejects with `policy_denied` for a
    /// wrong code, `not_found` when no code is set (or lockdown is off) and `invalid_input`
    /// when neither or both are given.
    #[napi(
        ts_args_type = "options: RotateUnlockCodeOptions",
        ts_return_type = "Promise<string>"
    )]
    pub fn rotate_unlock_code(
        &self,
        env: Env,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<String>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move {
                let options: RotateUnlockCodeOptions = required("rotate options", options)?;
                let authority = core::RotateAuthority::from_options(
                    options.code.as_deref(),
                    options.override_reason.as_deref(),
                    options.who.as_deref(),
                )?;
                let ttl = options.ttl_ms.map(Duration::from_millis);
                let issued = flags.rotate_unlock_code(authority, ttl).await?;
                Ok(issued.code.expose().to_owned())
            },
            Ok,
        )
    }

    /// Whether lockdown is on (`flag`) and its unlock code's record (`code`: times and
    /// generation, never the code), each `null` when absent.
    #[napi(ts_return_type = "Promise<LockdownStatus>")]
    pub fn lockdown_status(&self, env: Env) -> napi::Result<AsyncBlock<Value>> {
        let flags = self.inner.clone();
        promise(
            &env,
            async move { flags.lockdown_status().await },
            |status| to_json(&status),
        )
    }
}
