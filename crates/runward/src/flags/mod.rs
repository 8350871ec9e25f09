//! Flags: named, TTL'd leases such as `lockdown` or `restarting`, and lockdown with an
//! unlock code.
//!
//! A flag is held by one owner (a run id or a stable name such as `health-policy`) until its
//! TTL runs out; an expired flag reads as absent everywhere. [`Flags`] is the service over a
//! [`Store`]: set, renew, clear and list flags, check a runbook's requirements, and run the
//! lockdown protocol:
//!
//! - [`Flags::lockdown`] sets the [`LOCKDOWN`] flag and issues a fresh unlock code. The code
//!   is returned once; the store keeps only a salted hash, with its own TTL.
//! - [`Flags::unlock`] clears lockdown when given that code. A wrong or expired code changes
//!   nothing and fails with a distinct error.
//! - [`Flags::rotate_unlock_code`] replaces the code when given the current one, or on an
//!   explicit [`RotateAuthority::Override`] recorded with who did it and why; the old code
//!   stops working.
//! - [`LockdownTrigger`] sets lockdown on its own when readiness fails repeatedly.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use runward::flags::Flags;
//! use runward::store::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> runward::Result<()> {
//! let flags = Flags::new(Arc::new(SqliteStore::open_in_memory().await?));
//! let hour = Duration::from_secs(3600);
//!
//! let lockdown = flags.lockdown("admin", Some("suspicious logins"), hour).await?;
//! let err = flags.require_absent(&["lockdown"]).await.unwrap_err();
//! assert_eq!(err.kind(), runward::ErrorKind::Conflict);
//!
//! flags.unlock(lockdown.code.expose()).await?;
//! flags.require_absent(&["lockdown"]).await?;
//! # Ok(()) }
//! ```

mod trigger;

#[cfg(test)]
mod tests;

pub use trigger::{LockdownEvent, LockdownPolicy, LockdownTrigger, Sample, attach_lockdown};

use crate::secrets::SecretString;
use crate::store::{CodeIssuer, Flag, Store, Timestamp, UnlockCheck, UnlockCode};
use crate::{Error, ErrorKind, Result};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The name of the lockdown flag, and of its unlock code.
pub const LOCKDOWN: &str = "lockdown";

/// The lifetime of an unlock code when nothing else decides it.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(3600);

/// Unambiguous characters (no 0/O, 1/I): 32 of them, so a random byte maps without bias.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Flags and lockdown over a [`Store`]. Cheap to clone; clones share the store.
///
/// Every call is one or a few store transactions; expiry is judged by the store's clock.
#[derive(Clone)]
pub struct Flags {
    store: Arc<dyn Store>,
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flags").finish_non_exhaustive()
    }
}

/// An unlock code, handed out once. `Debug` and serialisation never show the code.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCode {
    /// The code itself; read it with [`SecretString::expose`] and give it to the operator.
    pub code: SecretString,
    /// The stored record (times and generation, without the code).
    pub record: UnlockCode,
}

/// What allows [`Flags::rotate_unlock_code`] to replace the unlock code.
#[derive(Debug, Clone, Copy)]
pub enum RotateAuthority<'a> {
    /// The current unlock code; an expired one still counts.
    CurrentCode(&'a str),
    /// No code: an operator overrides. `who` and `reason` are stored with the new code.
    Override {
        /// Who overrides.
        who: &'a str,
        /// Why the current code cannot be presented.
        reason: &'a str,
    },
}

impl<'a> RotateAuthority<'a> {
    /// The authority a frontend's optional arguments describe: the current `code`, or an
    /// override with `override_reason` and `who`. Exactly one of `code` and
    /// `override_reason` must be given; an override needs `who`. Fails with
    /// [`ErrorKind::InvalidInput`] otherwise.
    pub fn from_options(
        code: Option<&'a str>,
        override_reason: Option<&'a str>,
        who: Option<&'a str>,
    ) -> Result<Self> {
        match (code, override_reason) {
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::InvalidInput,
                "pass either the current unlock code or an override reason, not both",
            )),
            (Some(code), None) => Ok(RotateAuthority::CurrentCode(code)),
            (None, Some(reason)) => match who {
                Some(who) => Ok(RotateAuthority::Override { who, reason }),
                None => Err(Error::new(
                    ErrorKind::InvalidInput,
                    "an override needs who does it (`who`); it is recorded with the new code",
                )),
            },
            (None, None) => Err(Error::new(
                ErrorKind::InvalidInput,
                "rotating the unlock code needs the current code, or an override reason and who overrides",
            )),
        }
    }
}

/// The result of [`Flags::lockdown`].
#[derive(Debug, Clone)]
pub struct Lockdown {
    /// The lockdown flag as stored.
    pub flag: Flag,
    /// The unlock code for this lockdown, shown only here.
    pub code: SecretString,
    /// The code's record: when it expires, its generation.
    pub code_record: UnlockCode,
}

/// The result of a successful [`Flags::unlock`].
#[derive(Debug, Clone, Serialize)]
pub struct Unlocked {
    /// The lockdown flag that was cleared; `None` when it had already expired.
    pub flag: Option<Flag>,
}

/// Whether lockdown is on, and the state of its unlock code.
#[derive(Debug, Clone, Serialize)]
pub struct LockdownStatus {
    /// The lockdown flag; `None` when lockdown is off.
    pub flag: Option<Flag>,
    /// The unlock-code record (without the code), even when expired.
    pub code: Option<UnlockCode>,
}

impl Flags {
    /// Flags kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Flags { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Sets flag `name` for `owner` until now + `ttl`, with an optional reason.
    ///
    /// Setting a flag the same owner holds renews it. While another owner holds it, fails with
    /// [`ErrorKind::Conflict`] naming that owner, the reason and the expiry. Empty names or
    /// owners and a zero TTL fail with [`ErrorKind::InvalidInput`].
    pub async fn set(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        reason: Option<&str>,
    ) -> Result<Flag> {
        check_name(name)?;
        self.store.set_flag(name, owner, ttl, reason).await
    }

    /// Extends `owner`'s unexpired flag to now + `ttl` (a heartbeat). Fails with
    /// [`ErrorKind::NotFound`] when the flag lapsed and with [`ErrorKind::Conflict`] when
    /// another owner holds it.
    pub async fn renew(&self, name: &str, owner: &str, ttl: Duration) -> Result<Flag> {
        self.store.renew_flag(name, owner, ttl).await
    }

    /// Clears flag `name` and returns whether an unexpired flag was cleared.
    ///
    /// With `Some(owner)` the flag must be absent or held by `owner`, else
    /// [`ErrorKind::Conflict`]; `None` clears it whoever holds it (an operator override).
    /// Clearing [`LOCKDOWN`] also deletes its unlock code; operators should use
    /// [`Flags::unlock`] instead, which asks for the code.
    pub async fn clear(&self, name: &str, owner: Option<&str>) -> Result<bool> {
        let cleared = self.store.clear_flag(name, owner).await?;
        if name == LOCKDOWN {
            self.store.clear_unlock_code(LOCKDOWN).await?;
        }
        Ok(cleared)
    }

    /// Clears every flag `owner` holds (when its run completes or compensates) and returns
    /// their names. A released lockdown takes its unlock code with it.
    pub async fn release_owned_by(&self, owner: &str) -> Result<Vec<String>> {
        let names = self.store.clear_flags_owned_by(owner).await?;
        if names.iter().any(|n| n == LOCKDOWN) {
            self.store.clear_unlock_code(LOCKDOWN).await?;
        }
        Ok(names)
    }

    /// Flag `name`, or `None` when absent or expired.
    pub async fn get(&self, name: &str) -> Result<Option<Flag>> {
        self.store.get_flag(name).await
    }

    /// Every unexpired flag, by name.
    pub async fn list(&self) -> Result<Vec<Flag>> {
        self.store.list_flags().await
    }

    /// Succeeds when none of `names` is set. Otherwise fails with [`ErrorKind::Conflict`]
    /// naming each flag that is set, its owner, its reason and when it expires.
    pub async fn require_absent(&self, names: &[&str]) -> Result<()> {
        let mut held = Vec::new();
        for name in names {
            if let Some(flag) = self.store.get_flag(name).await? {
                held.push(flag);
            }
        }
        if held.is_empty() {
            return Ok(());
        }
        let list = held.iter().map(describe).collect::<Vec<_>>().join("; ");
        let how = if held.iter().any(|f| f.name == LOCKDOWN) {
            "wait for it to expire, or end it: lockdown with its unlock code (`runward unlock <code>`), other flags with `runward flag clear <name>`"
        } else {
            "wait for it to expire, or ask its owner to clear it (`runward flag clear <name>`)"
        };
        Err(Error::new(
            ErrorKind::Conflict,
            format!("refused while {list}; {how}"),
        ))
    }

    /// Succeeds with the flags when every one of `names` is set; otherwise fails with
    /// [`ErrorKind::Conflict`] naming the missing ones.
    pub async fn require_present(&self, names: &[&str]) -> Result<Vec<Flag>> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match self.store.get_flag(name).await? {
                Some(flag) => found.push(flag),
                None => missing.push(format!("`{name}`")),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "refused: flag {} is not set; set it first (`runward flag set <name> --ttl <ttl>`)",
                missing.join(", ")
            ),
        ))
    }

    /// Turns lockdown on for `owner` until now + `ttl` and issues an unlock code that lives as
    /// long as the lockdown. See [`Flags::lockdown_with_code_ttl`].
    pub async fn lockdown(
        &self,
        owner: &str,
        reason: Option<&str>,
        ttl: Duration,
    ) -> Result<Lockdown> {
        self.lockdown_with_code_ttl(owner, reason, ttl, ttl).await
    }

    /// Turns lockdown on for `owner` until now + `ttl` and issues a fresh unlock code valid
    /// until now + `code_ttl`.
    ///
    /// The code is returned once, in [`Lockdown::code`]; the store keeps only its salted
    /// hash. While lockdown is on, whoever holds it, fails with [`ErrorKind::Conflict`]
    /// naming the holder and how long it has been on, and changes nothing: the existing code
    /// stays the only one (replace it with [`Flags::rotate_unlock_code`]). If the code cannot
    /// be stored, the lockdown this call started is taken back before the error is returned.
    pub async fn lockdown_with_code_ttl(
        &self,
        owner: &str,
        reason: Option<&str>,
        ttl: Duration,
        code_ttl: Duration,
    ) -> Result<Lockdown> {
        if code_ttl.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the unlock code's TTL must be greater than zero; pass e.g. 1h",
            ));
        }
        let already_on = |held: &Flag| {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "lockdown is already on: held by {} since {} ({} ago){}, until {}; end it with its unlock code (`runward unlock <code>`), or replace the code with `runward unlock --rotate <code>`",
                    held.owner,
                    held.set_at,
                    age(held.set_at),
                    held.reason
                        .as_deref()
                        .map(|r| format!(", reason: {r}"))
                        .unwrap_or_default(),
                    held.expires_at
                ),
            )
        };
        if let Some(held) = self.store.get_flag(LOCKDOWN).await? {
            return Err(already_on(&held));
        }
        // Another owner may have set it since: the store refuses, and says who holds it.
        let flag = match self.store.set_flag(LOCKDOWN, owner, ttl, reason).await {
            Ok(flag) => flag,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(match self.store.get_flag(LOCKDOWN).await? {
                    Some(held) => already_on(&held),
                    None => e,
                });
            }
            Err(e) => return Err(e),
        };
        let code = generate_code()?;
        match self
            .store
            .set_unlock_code(LOCKDOWN, code.expose(), code_ttl, &CodeIssuer::by(owner))
            .await
        {
            Ok(code_record) => Ok(Lockdown {
                flag,
                code,
                code_record,
            }),
            Err(e) => {
                // Best effort: a lockdown without a code could only be forced off.
                let _ = self.store.clear_flag(LOCKDOWN, Some(owner)).await;
                Err(e)
            }
        }
    }

    /// Ends lockdown with its unlock code: clears the [`LOCKDOWN`] flag and the code.
    ///
    /// Fails, changing nothing, with
    /// - [`ErrorKind::PolicyDenied`] when the code is wrong,
    /// - [`ErrorKind::Conflict`] when the code is right but expired (rotate it for a new one),
    /// - [`ErrorKind::NotFound`] when no code is set,
    /// - [`ErrorKind::InvalidInput`] when the code is empty.
    ///
    /// Surrounding whitespace in `code` is ignored. A rotation that lands between the check
    /// and the clear does not stop the unlock.
    pub async fn unlock(&self, code: &str) -> Result<Unlocked> {
        let code = code.trim();
        if code.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the unlock code is empty; pass the code printed when lockdown started",
            ));
        }
        match self.store.verify_unlock_code(LOCKDOWN, code).await? {
            UnlockCheck::Valid => {
                let flag = self.store.get_flag(LOCKDOWN).await?;
                self.store.clear_flag(LOCKDOWN, None).await?;
                self.store.clear_unlock_code(LOCKDOWN).await?;
                Ok(Unlocked { flag })
            }
            UnlockCheck::Invalid => Err(Error::new(
                ErrorKind::PolicyDenied,
                "the unlock code is wrong; lockdown is unchanged. Check the code, or replace it with `runward unlock --rotate --override --reason TEXT`",
            )),
            UnlockCheck::Expired => {
                let at = self
                    .store
                    .get_unlock_code(LOCKDOWN)
                    .await?
                    .map(|r| format!(" at {}", r.expires_at))
                    .unwrap_or_default();
                Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "the unlock code expired{at}; lockdown is unchanged. Replace it with `runward unlock --rotate <code>` and unlock with the new one"
                    ),
                ))
            }
            UnlockCheck::NotSet => Err(match self.store.get_flag(LOCKDOWN).await? {
                Some(flag) => Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} but has no unlock code; issue one with `runward unlock --rotate --override --reason TEXT`",
                        describe(&flag)
                    ),
                ),
                None => Error::new(
                    ErrorKind::NotFound,
                    "lockdown is not on and no unlock code is set; there is nothing to unlock",
                ),
            }),
        }
    }

    /// Replaces the unlock code with a fresh one and returns it; the old code stops working.
    ///
    /// `authority` is the current code (expired or not), or an operator override with who
    /// and why, both stored with the new code. The new code lives for `ttl`, or when `None`
    /// as long as the previous code did ([`DEFAULT_CODE_TTL`] when lockdown is on without a
    /// code, which gets one). Fails, changing nothing, with
    /// - [`ErrorKind::PolicyDenied`] when the code is wrong,
    /// - [`ErrorKind::NotFound`] when no code is set and no override is given, or when
    ///   lockdown is off and no code is set,
    /// - [`ErrorKind::InvalidInput`] for an empty code, who or reason, or a zero `ttl`.
    pub async fn rotate_unlock_code(
        &self,
        authority: RotateAuthority<'_>,
        ttl: Option<Duration>,
    ) -> Result<IssuedCode> {
        if ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the unlock code's TTL must be greater than zero; pass e.g. 1h",
            ));
        }
        let issuer = match authority {
            RotateAuthority::CurrentCode(code) => {
                let code = code.trim();
                if code.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "the current unlock code is empty; pass it, or override with a reason (`runward unlock --rotate --override --reason TEXT`)",
                    ));
                }
                match self.store.verify_unlock_code(LOCKDOWN, code).await? {
                    UnlockCheck::Valid | UnlockCheck::Expired => CodeIssuer::default(),
                    UnlockCheck::Invalid => {
                        return Err(Error::new(
                            ErrorKind::PolicyDenied,
                            "the current unlock code is wrong; the code is unchanged. Pass the code printed last, or override with a reason (`runward unlock --rotate --override --reason TEXT`)",
                        ));
                    }
                    UnlockCheck::NotSet => {
                        return Err(Error::new(
                            ErrorKind::NotFound,
                            "no unlock code is set, so there is no current code to present; override with a reason (`runward unlock --rotate --override --reason TEXT`)",
                        ));
                    }
                }
            }
            RotateAuthority::Override { who, reason } => {
                if who.trim().is_empty() || reason.trim().is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "an override needs who does it and a reason; both are recorded with the new code",
                    ));
                }
                CodeIssuer {
                    by: Some(who.trim().to_owned()),
                    override_reason: Some(reason.trim().to_owned()),
                }
            }
        };
        if let Some(previous) = self.store.get_unlock_code(LOCKDOWN).await? {
            let ttl = ttl.unwrap_or_else(|| {
                let lived = previous.expires_at.duration_since(previous.created_at);
                if lived.is_zero() {
                    DEFAULT_CODE_TTL
                } else {
                    lived
                }
            });
            let (record, code) = self
                .store
                .rotate_unlock_code(LOCKDOWN, ttl, &issuer)
                .await?;
            return Ok(IssuedCode {
                code: SecretString::new(code),
                record,
            });
        }
        if self.store.get_flag(LOCKDOWN).await?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                "lockdown is not on and no unlock code is set, so there is nothing to rotate; start lockdown with `runward lockdown`",
            ));
        }
        let code = generate_code()?;
        let record = self
            .store
            .set_unlock_code(
                LOCKDOWN,
                code.expose(),
                ttl.unwrap_or(DEFAULT_CODE_TTL),
                &issuer,
            )
            .await?;
        Ok(IssuedCode { code, record })
    }

    /// Whether lockdown is on, and its unlock code's record.
    pub async fn lockdown_status(&self) -> Result<LockdownStatus> {
        Ok(LockdownStatus {
            flag: self.store.get_flag(LOCKDOWN).await?,
            code: self.store.get_unlock_code(LOCKDOWN).await?,
        })
    }
}

/// Parses a TTL such as `30s`, `10m`, `1h30m` or `2d`. Zero and malformed values fail with
/// [`ErrorKind::InvalidInput`].
pub fn parse_ttl(text: &str) -> Result<Duration> {
    let ttl = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("`{text}` is not a duration ({e}); write it like 30s, 10m or 1h"),
        )
    })?;
    if ttl.is_zero() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the TTL `{text}` is zero; a flag needs a positive TTL such as 10m"),
        ));
    }
    Ok(ttl)
}

/// "flag `x` is set by OWNER until T (reason: R)".
/// How long ago `since` was, to the second: `5m 3s`.
fn age(since: Timestamp) -> String {
    let secs = Timestamp::now().duration_since(since).as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn describe(flag: &Flag) -> String {
    let what = if flag.name == LOCKDOWN {
        "lockdown is on".to_owned()
    } else {
        format!("flag `{}` is set", flag.name)
    };
    let reason = flag
        .reason
        .as_deref()
        .map(|r| format!(" (reason: {r})"))
        .unwrap_or_default();
    format!(
        "{what}, held by {} until {}{reason}",
        flag.owner, flag.expires_at
    )
}

fn check_name(name: &str) -> Result<()> {
    crate::names::validate_name("flag name", name)
}

/// A fresh code: four groups of four unambiguous characters (80 bits), e.g. `K7QM-3XWP-...`.
fn generate_code() -> Result<SecretString> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    SystemRandom::new().fill(&mut bytes[..]).map_err(|_| {
        Error::new(
            ErrorKind::Internal,
            "the system random number generator failed",
        )
    })?;
    let mut code = String::with_capacity(19);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[(*b as usize) % CODE_ALPHABET.len()] as char);
    }
    Ok(SecretString::new(code))
}
