//! `runward._runward`: the native module behind the `runward` Python package.
//!
//! A thin layer over the core: `Health` wraps a health registry (checks from `runward.toml`
//! and Python functions or coroutines), `Server` the core's HTTP server, `Outcome` a check
//! result, `Runbook` a runbook definition and its plans, `Flags` the flags and lockdown of a
//! state database, `Runs` the runs recorded in it, `Scheduler` the schedules of a
//! `runward.toml`, `Engine` the durable run engine that drives runs (with Python functions as
//! custom steps). Work runs on runward's own tokio runtime; sync methods release the GIL
//! while they wait, async twins return asyncio awaitables. Errors are raised as the classes
//! of `runward.errors`, one per core error kind.

mod convert;
mod engine;
mod errors;
mod flags;
mod health;
mod outcome;
mod probe;
mod runbook;
mod runs;
mod runtime;
mod server;
mod step;

use pyo3::pymodule;

#[pymodule]
mod _runward {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::engine::Engine;
    #[pymodule_export]
    use super::flags::Flags;
    #[pymodule_export]
    use super::health::Health;
    #[pymodule_export]
    use super::outcome::PyOutcome;
    #[pymodule_export]
    use super::runbook::Runbook;
    #[pymodule_export]
    use super::runs::{Runs, Scheduler};
    #[pymodule_export]
    use super::server::Server;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
