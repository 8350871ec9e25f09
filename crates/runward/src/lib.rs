//! runward turns operations runbooks into code an application embeds.
//!
//! This crate is the core: health probes answered from a snapshot with hard deadlines,
//! built-in probes for common dependencies, an outbound policy, and the renderers and HTTP
//! router that serve `/livez`, `/readyz`, `/startupz`, `/healthz` and `/metrics`.
//!
//! ```
//! use std::time::Duration;
//! use runward::health::{CheckSpec, Outcome, ProbeKind, Registry, probe_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> runward::Result<()> {
//! let registry = Registry::builder()
//!     .service_id("demo")
//!     .check(CheckSpec::new("always-up", probe_fn(|_ctx| async { Outcome::pass() }))
//!         .kinds([ProbeKind::Readiness]))
//!     .build()?;
//! registry.refresh_all().await;
//! let report = registry.evaluate(ProbeKind::Readiness);
//! assert_eq!(report.status, runward::health::Status::Pass);
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod flags;
pub mod health;
pub mod names;
pub mod policy;
pub mod probes;
mod process;
pub mod runbook;
pub mod schedule;
pub mod secrets;
pub mod store;
pub mod table;
mod tls;
mod toml_location;

pub use error::{Error, ErrorKind, Result};
