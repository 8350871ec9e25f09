//! Fault test of the run engine: the process driving runs is killed with SIGKILL at random
//! points, again and again, while it works through a few hundred runs. Afterwards no run is
//! lost or left running, every event chain verifies, and no non-idempotent effect ran twice
//! (effects are counted in side-effect logs that the runbook's commands append to).
//!
//! The runner is this test binary re-executed on the ignored test `fault_runner`.

use runward::runbook::Runbook;
use runward::runbook::engine::{Engine, Resume};
use runward::store::{AttemptStatus, RunFilter, RunStatus, SqliteStore, Store};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 220;
const DB_VAR: &str = "RUNWARD_FAULT_DB";

/// `charge` and `finish` are not idempotent: after a crash their outcome is unknown and the
/// run stops for an operator (`ask`), who looks at the side-effect log. `notify` passes its
/// idempotency key to a target that deduplicates, so it is simply rerun.
const RUNBOOK: &str = r#"
[runbook]
name = "fault"

[params.dir]
type = "string"

[params.n]
type = "integer"

[[steps]]
id = "charge"
kind = "command"
shell = "echo \"{{ run.id }} charge $RUNWARD_IDEMPOTENCY_KEY\" >> {{ params.dir }}/effects.log; sleep 0.01"

[[steps]]
id = "hold"
kind = "flag"
action = "set"
flag = "fault-{{ params.n }}"
ttl = "1m"

[[steps]]
id = "notify"
kind = "command"
outcome_unknown = "rerun"
shell = "grep -q \"$RUNWARD_IDEMPOTENCY_KEY\" {{ params.dir }}/applied.log 2>/dev/null || echo \"{{ run.id }} notify $RUNWARD_IDEMPOTENCY_KEY\" >> {{ params.dir }}/applied.log; sleep 0.005"

[[steps]]
id = "pause"
kind = "sleep"
duration = "5ms"

[[steps]]
id = "finish"
kind = "command"
shell = "echo \"{{ run.id }} finish $RUNWARD_IDEMPOTENCY_KEY\" >> {{ params.dir }}/effects.log"
"#;

fn engine(store: Arc<dyn Store>) -> Engine {
    Engine::builder(store)
        .lease_ttl(Duration::from_millis(200))
        .unwrap()
        .renew_every(Duration::from_millis(50))
        .poll_every(Duration::from_millis(50))
        .build()
}

/// One life of the runner: sweeps, settles decision points like an operator would, resumes
/// what was interrupted and starts new runs until `RUNS` exist and all are finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "re-executed by kill_9_at_random_points_loses_nothing_and_repeats_no_effect"]
async fn fault_runner() {
    let db = std::path::PathBuf::from(std::env::var(DB_VAR).unwrap());
    let dir = db.parent().unwrap().to_path_buf();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let engine = engine(store.clone());
    let runbook = Runbook::parse(RUNBOOK, None).unwrap();
    let effects = dir.join("effects.log");
    loop {
        engine.sweep().await.unwrap();
        let all = store.list_runs(&RunFilter::default()).await.unwrap();
        for run in all
            .iter()
            .filter(|r| r.status == RunStatus::WaitingOperator)
        {
            // The operator's check: did the effect of the unknown attempt happen?
            let attempts = store.list_attempts(&run.id).await.unwrap();
            let unknown = attempts
                .iter()
                .rfind(|a| a.status == AttemptStatus::OutcomeUnknown)
                .expect("a run waits for an operator only on an unknown outcome");
            let log = std::fs::read_to_string(&effects).unwrap_or_default();
            let result = if log.contains(&unknown.idempotency_key) {
                engine
                    .skip(&run.id, &runbook, "operator", "the effect is in the log")
                    .await
            } else {
                engine
                    .retry(&run.id, &runbook, "operator", Some("no effect in the log"))
                    .await
            };
            ignore_contention(result.map(|_| ()));
        }
        for run in all.iter().filter(|r| {
            matches!(
                r.status,
                RunStatus::Orphaned | RunStatus::Queued | RunStatus::Failed
            )
        }) {
            ignore_contention(
                engine
                    .resume(&run.id, &runbook, Resume::default())
                    .await
                    .map(|_| ()),
            );
        }
        if all.len() < RUNS {
            let params = BTreeMap::from([
                ("dir".to_owned(), Value::String(dir.display().to_string())),
                ("n".to_owned(), Value::from(all.len() as i64)),
            ]);
            let run = engine
                .create(&runbook, &params, Some("fault"))
                .await
                .unwrap();
            ignore_contention(
                engine
                    .resume(&run.id, &runbook, Resume::default())
                    .await
                    .map(|_| ()),
            );
        } else if all.iter().all(|r| r.status.is_terminal()) {
            println!("runner: all {} runs finished", all.len());
            return;
        } else {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

/// A run whose dead driver's lease has not expired yet is left for the next pass.
fn ignore_contention(result: runward::Result<()>) {
    if let Err(e) = result {
        assert_eq!(e.kind(), runward::ErrorKind::Conflict, "{e}");
    }
}

/// A small deterministic generator for kill delays; the seed is printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn count_lines(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *counts.entry(line.to_owned()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_nothing_and_repeats_no_effect() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut kills = 0u32;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the runs did not finish in time (seed {seed}, {kills} kills)"
        );
        let mut child = Command::new(&exe)
            .args([
                "fault_runner",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DB_VAR, &db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let life = Duration::from_millis(80 + rng.next() % 520);
        let deadline = Instant::now() + life;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match status {
            Some(status) => {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(status.success(), "the runner failed (seed {seed}): {err}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }

    let store = SqliteStore::open(&db).await.unwrap();
    let runs = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), RUNS, "no run lost or duplicated");
    let mut numbers: Vec<i64> = runs
        .iter()
        .map(|r| r.params["n"].as_i64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..RUNS as i64).collect::<Vec<_>>());
    let (mut orphaned, mut decisions, mut reruns) = (0, 0, 0);
    for run in &runs {
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "run {} (seed {seed})",
            run.id
        );
        let details = store.run_details(&run.id).await.unwrap();
        assert!(store.verify_events(&run.id).await.unwrap().is_intact());
        orphaned += details
            .events
            .iter()
            .filter(|e| e.kind == "run_orphaned")
            .count();
        decisions += details
            .events
            .iter()
            .filter(|e| e.kind == "run_waiting")
            .count();
        reruns += details
            .events
            .iter()
            .filter(|e| e.kind == "step_outcome_unknown")
            .count();
    }
    let effects = count_lines(&dir.path().join("effects.log"));
    let applied = count_lines(&dir.path().join("applied.log"));
    for (line, n) in effects.iter().chain(applied.iter()) {
        assert_eq!(*n, 1, "effect repeated: {line} (seed {seed})");
    }
    for run in &runs {
        for (log, step) in [
            (&effects, "charge"),
            (&applied, "notify"),
            (&effects, "finish"),
        ] {
            let found = log
                .keys()
                .filter(|l| l.starts_with(&format!("{} {step} ", run.id)))
                .count();
            assert_eq!(found, 1, "run {} step {step}: {found} effects", run.id);
        }
    }
    assert!(
        store.list_flags().await.unwrap().is_empty(),
        "flags released"
    );
    eprintln!(
        "fault test: seed {seed}, {RUNS} runs, {kills} kills with SIGKILL, {orphaned} orphaned and resumed, \
         {reruns} attempts left with an unknown outcome, {decisions} operator decision points, \
         0 runs lost, 0 left running, 0 effects repeated, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

const LEASE_RUNBOOK: &str = r#"
[runbook]
name = "paused"

[params.dir]
type = "string"

[[steps]]
id = "slow"
kind = "command"
outcome_unknown = "rerun"
shell = "sleep 1.5; echo \"$RUNWARD_IDEMPOTENCY_KEY\" >> {{ params.dir }}/slow.log"

[[steps]]
id = "after"
kind = "command"
shell = "echo after >> {{ params.dir }}/after.log"
"#;

/// Drives the one run in the database; must end with `LeaseLost` after being paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "re-executed by a_paused_process_that_lost_its_lease_cannot_write"]
async fn lease_runner() {
    let db = std::path::PathBuf::from(std::env::var(DB_VAR).unwrap());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let engine = Engine::builder(store.clone())
        .owner("paused-process")
        .lease_ttl(Duration::from_millis(300))
        .unwrap()
        .renew_every(Duration::from_millis(100))
        .build();
    let run = store
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .remove(0);
    let runbook = Runbook::parse(LEASE_RUNBOOK, None).unwrap();
    let err = engine
        .resume(&run.id, &runbook, Resume::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), runward::ErrorKind::LeaseLost, "{err}");
    println!("lease lost: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_process_that_lost_its_lease_cannot_write() {
    use rustix::process::{Pid, Signal, kill_process};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let runbook = Runbook::parse(LEASE_RUNBOOK, None).unwrap();
    let other = Engine::builder(store.clone()).owner("rescuer").build();
    let params = BTreeMap::from([(
        "dir".to_owned(),
        Value::String(dir.path().display().to_string()),
    )]);
    let run = other.create(&runbook, &params, None).await.unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lease_runner",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    // Wait until the runner is inside the slow step, then freeze it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store
        .list_events(&run.id, 0)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == "step_started")
    {
        assert!(
            Instant::now() < deadline,
            "the runner never started the step"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill_process(pid, Signal::STOP).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(other.sweep().await.unwrap().orphaned.len(), 1);
    let outcome = other
        .resume(&run.id, &runbook, Resume::default())
        .await
        .unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    let settled = store.run_details(&run.id).await.unwrap();
    kill_process(pid, Signal::CONT).unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("lease lost"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = store.run_details(&run.id).await.unwrap();
    assert_eq!(
        after.events, settled.events,
        "the paused process appended nothing"
    );
    assert_eq!(after.attempts, settled.attempts, "nor changed an attempt");
    assert_eq!(after.run.status, RunStatus::Succeeded);
    assert!(store.verify_events(&run.id).await.unwrap().is_intact());
}
