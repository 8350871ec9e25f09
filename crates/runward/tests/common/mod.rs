//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WORKER_DB: &str = "RUNWARD_TEST_WORKER_DB";
const WORKER_GO: &str = "RUNWARD_TEST_WORKER_GO";
const WORKER_INDEX: &str = "RUNWARD_TEST_WORKER_INDEX";

/// What a worker process of a multi-process test gets: the shared database and its index.
pub struct Worker {
    /// The SQLite file every worker opens.
    pub db: PathBuf,
    /// This worker's number, from 0.
    pub index: u64,
}

/// In a worker process: reads its arguments and waits (up to `patience`) for the go signal,
/// so every worker starts at once.
pub fn worker(patience: Duration) -> Worker {
    let db = PathBuf::from(std::env::var(WORKER_DB).expect("started by the multi-process test"));
    let go = PathBuf::from(std::env::var(WORKER_GO).unwrap());
    let index: u64 = std::env::var(WORKER_INDEX).unwrap().parse().unwrap();
    let deadline = Instant::now() + patience;
    while !go.exists() {
        assert!(Instant::now() < deadline, "the go signal never came");
        std::thread::sleep(Duration::from_millis(2));
    }
    Worker { db, index }
}

/// Re-executes this test binary `count` times running only the ignored test `worker_test`
/// on `db`, gives the go signal once all are started, and returns their outputs.
pub async fn run_workers(worker_test: &str, db: &Path, count: u64) -> Vec<Output> {
    let go = db.with_extension("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..count)
        .map(|i| {
            Command::new(&exe)
                .args([
                    worker_test,
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_DB, db)
                .env(WORKER_GO, &go)
                .env(WORKER_INDEX, i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(&go, b"go").unwrap();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap()
}
