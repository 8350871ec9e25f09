//! The Node binding of runward: the `runward` npm package's native module.
//!
//! Thin by design: every method calls the core (`runward::health`, `runward::runbook` and its
//! engine, `runward::flags`, `runward::schedule`, `runward::store`), and every thrown error
//! carries the core's [`runward::ErrorKind`] name as its `code`. The hand-written `index.js`
//! adds the JavaScript idioms (check and custom step wrapping, `onEvent`, the request handler)
//! on top.

mod convert;
mod engine;
mod error;
mod flags;
mod health;
mod probe;
mod runbook;
mod runs;
mod server;

use napi_derive::napi;

/// runward's tokio runtime: two worker threads shared by async methods, background checks and
/// the HTTP server, so probes answer while the JavaScript event loop is busy.
mod runtime {
    /// Installs the runtime before any async method runs.
    #[napi_derive::module_init]
    fn init() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("runward")
            .enable_all()
            .build()
            .expect("runward cannot start its tokio runtime");
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }

    /// A handle to the runtime.
    pub(crate) fn handle() -> tokio::runtime::Handle {
        napi::bindgen_prelude::within_runtime_if_available(tokio::runtime::Handle::current)
    }
}

/// The paths the probe endpoints answer; `{check}` stands for one check name.
#[napi]
pub fn probe_paths() -> Vec<String> {
    runward::health::endpoints::PATHS
        .iter()
        .map(|p| (*p).to_owned())
        .collect()
}
