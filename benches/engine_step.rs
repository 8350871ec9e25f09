//! Engine overhead per durable no-op step, p50 and p99, on a SQLite file with synchronous
//! FULL (every commit fsynced) and NORMAL (WAL: commits survive a process crash).
//!
//! Each run has 50 steps of a custom step that does nothing; the overhead of one step is the
//! time between the starts of two consecutive steps: writing the previous attempt's result
//! and its event, moving the run on, then writing the next attempt's intent and its event.
//! Target: p50 under 2 ms. Published per-step figures of peers are printed beside for scale
//! (they come from the peers' own benchmarks on their hardware, not from this machine).
//!
//! Run with `cargo bench -p runward --bench engine_step`.

use runward::runbook::Runbook;
use runward::runbook::engine::{Engine, step_fn};
use runward::runbook::exec::StepOutput;
use runward::store::{RunStatus, SqliteOptions, SqliteStore, Synchronous};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STEPS: usize = 50;
const RUNS: usize = 40;

fn runbook() -> Runbook {
    let mut text = String::from("[runbook]\nname = \"noop\"\n");
    for i in 0..STEPS {
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nkind = \"custom\"\nname = \"noop\"\n"
        ));
    }
    Runbook::parse(&text, None).expect("valid runbook")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn measure(synchronous: Synchronous) -> Vec<Duration> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions::default().synchronous(synchronous);
    let store = SqliteStore::open_with(dir.path().join("state.db"), options)
        .await
        .expect("store");
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = starts.clone();
    let engine = Engine::builder(Arc::new(store))
        .step(
            "noop",
            step_fn(move |_ctx, _params| {
                seen.lock().unwrap().push(Instant::now());
                async { Ok(StepOutput::default()) }
            }),
        )
        .build();
    let runbook = runbook();
    let mut gaps = Vec::with_capacity(STEPS * RUNS);
    for i in 0..RUNS + 2 {
        starts.lock().unwrap().clear();
        let outcome = engine
            .start(&runbook, &BTreeMap::new(), None)
            .await
            .expect("run");
        assert_eq!(outcome.run.status, RunStatus::Succeeded);
        if i < 2 {
            continue; // warm-up
        }
        let starts = starts.lock().unwrap();
        gaps.extend(starts.windows(2).map(|w| w[1] - w[0]));
    }
    gaps.sort_unstable();
    gaps
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "engine overhead per durable no-op step ({RUNS} runs x {STEPS} steps, SQLite file, WAL)"
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>8}",
        "synchronous", "p50", "p99", "mean", "target"
    );
    for (name, sync) in [("FULL", Synchronous::Full), ("NORMAL", Synchronous::Normal)] {
        let gaps = rt.block_on(measure(sync));
        let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
        let p50 = percentile(&gaps, 0.5);
        println!(
            "{:<18} {:>8.3}ms {:>8.3}ms {:>8.3}ms {:>8}",
            name,
            p50.as_secs_f64() * 1e3,
            percentile(&gaps, 0.99).as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3,
            if p50 <= Duration::from_millis(2) {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    println!("published per-step figures of peers, for scale (their hardware, not measured here):");
    println!("  DBOS      ~21 ms per step");
    println!("  Restate   ~17 ms per step");
}
