//! The conformance suite every [`Store`] implementation runs.
//!
//! [`store_conformance_tests!`](crate::store_conformance_tests) expands to one `#[tokio::test]`
//! per contract. Pass it a closure that receives the [`ManualClock`] the tests drive and
//! returns a fresh, empty store reading that clock:
//!
//! ```ignore
//! mod sqlite_in_memory {
//!     use runward::store::{SqliteOptions, SqliteStore};
//!     use std::sync::Arc;
//!     runward::store_conformance_tests!(|clock| async move {
//!         let options = SqliteOptions::default().clock(clock);
//!         Arc::new(SqliteStore::open_in_memory_with(options).await.unwrap())
//!     });
//! }
//! ```
//!
//! The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features. Tests
//! that tamper with storage are backend-specific and live beside each backend.

use super::*;
use crate::ErrorKind;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The time the suite's clock starts at: 2026-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp::from_millis(1_767_225_600_000);

const TTL: Duration = Duration::from_secs(30);

/// Expands to one `#[tokio::test]` per contract of the [`Store`](crate::store::Store) trait.
///
/// `$make` is a closure `|clock: Arc<ManualClock>| async move { .. }` returning a fresh store
/// (anything that coerces to `Arc<dyn Store>`) whose clock is `clock`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            runs_create_get_and_filter,
            closed_runs_refuse_changes,
            lease_is_exclusive,
            lease_acquire_races_have_one_winner,
            stale_epoch_cannot_write,
            expired_lease_cannot_write_until_reacquired,
            released_lease_frees_the_run,
            sweeper_orphans_expired_runs,
            intent_then_result,
            logged_writes_are_atomic,
            outcome_unknown_after_crash,
            compensation_moves,
            event_chain_links_and_verifies,
            concurrent_events_have_no_gaps,
            flags_expire_and_belong_to_one_owner,
            unlock_codes_verify_expire_and_rotate,
            schedules_round_trip,
            fire_ledger_is_exactly_once_under_concurrency,
            skipped_and_missed_fires_are_recorded,
            last_fires_reads_every_schedule_at_once,
            approvals_need_a_quorum_and_are_single_use,
            approvals_refuse_the_wrong_people,
            approvals_time_out,
            run_details_are_complete,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let clock = ::std::sync::Arc::new($crate::store::ManualClock::new(
                    $crate::store::conformance::START,
                ));
                let make = $crate::store::conformance::factory($make);
                let store: ::std::sync::Arc<dyn $crate::store::Store> =
                    make(::std::sync::Arc::clone(&clock)).await;
                $crate::store::conformance::$name(store, clock).await;
            }
        )+
    };
}

/// Pins the factory closure's argument type to `Arc<ManualClock>` for the macro.
#[doc(hidden)]
pub fn factory<F, Fut>(make: F) -> F
where
    F: FnOnce(Arc<ManualClock>) -> Fut,
    Fut: std::future::Future,
{
    make
}

type S = Arc<dyn Store>;
type C = Arc<ManualClock>;

fn kind<T: std::fmt::Debug>(result: crate::Result<T>) -> ErrorKind {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            assert!(!e.message().is_empty(), "errors carry a message");
            e.kind()
        }
    }
}

async fn leased_run(store: &S, owner: &str) -> (Run, Lease) {
    let run = store
        .create_run(NewRun::new("restart", "sha256:def").started_by("alice"))
        .await
        .unwrap();
    let lease = store.acquire_lease(&run.id, owner, TTL).await.unwrap();
    let run = store
        .update_run(&run.id, lease.epoch, RunUpdate::status(RunStatus::Running))
        .await
        .unwrap();
    (run, lease)
}

/// Runs are created queued, read back whole, and listed by status, runbook and time window.
pub async fn runs_create_get_and_filter(store: S, clock: C) {
    let a = store
        .create_run(
            NewRun::new("restart", "sha256:1")
                .params(json!({"service": "api", "n": 3}))
                .started_by("alice"),
        )
        .await
        .unwrap();
    assert_eq!(a.status, RunStatus::Queued);
    assert_eq!(a.created_at, START);
    assert_eq!((a.epoch, a.lease.clone(), a.current_step), (0, None, 0));
    assert_eq!(store.get_run(&a.id).await.unwrap(), a);
    let missing = store.get_run(&RunId::from("no-such-run")).await;
    assert_eq!(kind(missing), ErrorKind::NotFound);

    clock.advance(Duration::from_secs(60));
    let b = store
        .create_run(NewRun::new("backup", "sha256:2").parent(a.id.clone()))
        .await
        .unwrap();
    assert_eq!(b.parent.as_ref(), Some(&a.id));
    let orphan_parent = store
        .create_run(NewRun::new("backup", "sha256:2").parent(RunId::from("ghost")))
        .await;
    assert_eq!(kind(orphan_parent), ErrorKind::NotFound);

    clock.advance(Duration::from_secs(60));
    let (c, lease) = leased_run(&store, "w").await;
    store
        .update_run(
            &c.id,
            lease.epoch,
            RunUpdate::status(RunStatus::Failed).error("exit code 2"),
        )
        .await
        .unwrap();

    let all = store.list_runs(&RunFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        vec![c.id.clone(), b.id.clone(), a.id.clone()],
        "newest first"
    );

    let failed = store
        .list_runs(&RunFilter::statuses([RunStatus::Failed]))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.as_deref(), Some("exit code 2"));

    let queued_or_failed = store
        .list_runs(&RunFilter::statuses([RunStatus::Queued, RunStatus::Failed]))
        .await
        .unwrap();
    assert_eq!(queued_or_failed.len(), 3);

    let window = RunFilter {
        created_after: Some(START + Duration::from_secs(30)),
        created_before: Some(START + Duration::from_secs(90)),
        ..RunFilter::default()
    };
    let in_window = store.list_runs(&window).await.unwrap();
    assert_eq!(in_window.len(), 1);
    assert_eq!(in_window[0].id, b.id);

    let recent = RunFilter {
        updated_after: Some(START + Duration::from_secs(120)),
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&recent).await.unwrap()[0].id, c.id);

    let by_runbook = RunFilter {
        runbook: Some("backup".into()),
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&by_runbook).await.unwrap().len(), 1);
    let limited = RunFilter {
        limit: Some(2),
        ..RunFilter::default()
    };
    assert_eq!(store.list_runs(&limited).await.unwrap().len(), 2);
}

/// Succeeded, cancelled and compensated runs refuse changes and new leases.
pub async fn closed_runs_refuse_changes(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "w").await;
    let done = store
        .update_run(
            &run.id,
            lease.epoch,
            RunUpdate::status(RunStatus::Succeeded).current_step(4),
        )
        .await
        .unwrap();
    assert_eq!((done.status, done.current_step), (RunStatus::Succeeded, 4));
    let again = store
        .update_run(&run.id, lease.epoch, RunUpdate::status(RunStatus::Running))
        .await;
    assert_eq!(kind(again), ErrorKind::Conflict);
    let intent = store
        .record_intent(&run.id, lease.epoch, 5, "late", 1)
        .await;
    assert_eq!(kind(intent), ErrorKind::Conflict);
    store.release_lease(&run.id, lease.epoch).await.unwrap();
    let relock = store.acquire_lease(&run.id, "w2", TTL).await;
    assert_eq!(kind(relock), ErrorKind::Conflict);
    assert_eq!(
        store.get_run(&run.id).await.unwrap().status,
        RunStatus::Succeeded
    );
}

/// A held lease refuses other owners (and a second acquire by its owner); renewal extends it.
pub async fn lease_is_exclusive(store: S, clock: C) {
    let run = store.create_run(NewRun::new("rb", "h")).await.unwrap();
    let lease = store.acquire_lease(&run.id, "a", TTL).await.unwrap();
    assert_eq!(lease.epoch, 1);
    assert_eq!(lease.owner, "a");
    assert_eq!(lease.expires_at, START + TTL);
    assert_eq!(
        kind(store.acquire_lease(&run.id, "b", TTL).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.acquire_lease(&run.id, "a", TTL).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.acquire_lease(&RunId::from("nope"), "a", TTL).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.acquire_lease(&run.id, "a", Duration::ZERO).await),
        ErrorKind::InvalidInput
    );

    clock.advance(Duration::from_secs(20));
    let renewed = store
        .renew_lease(&run.id, "a", lease.epoch, TTL)
        .await
        .unwrap();
    assert_eq!(renewed.epoch, lease.epoch);
    assert_eq!(renewed.expires_at, START + Duration::from_secs(50));
    assert_eq!(
        kind(store.renew_lease(&run.id, "b", lease.epoch, TTL).await),
        ErrorKind::LeaseLost
    );

    clock.advance(Duration::from_secs(20));
    assert_eq!(
        kind(store.acquire_lease(&run.id, "b", TTL).await),
        ErrorKind::Conflict
    );
    let stored = store.get_run(&run.id).await.unwrap();
    assert_eq!(stored.lease.unwrap().owner, "a");
    assert_eq!(stored.epoch, 1);
}

/// Of many concurrent acquires of one free run, exactly one succeeds.
pub async fn lease_acquire_races_have_one_winner(store: S, _clock: C) {
    let run = store.create_run(NewRun::new("rb", "h")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), run.id.clone());
            tokio::spawn(async move { store.acquire_lease(&id, &format!("p{i}"), TTL).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(lease) => winners.push(lease),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].epoch, 1);
    let stored = store.get_run(&run.id).await.unwrap();
    assert_eq!(stored.lease.unwrap().owner, winners[0].owner);
}

/// After another owner took over, every write with the old epoch fails and changes nothing.
pub async fn stale_epoch_cannot_write(store: S, clock: C) {
    let (run, old) = leased_run(&store, "a").await;
    store
        .record_intent(&run.id, old.epoch, 0, "drain", 1)
        .await
        .unwrap();
    clock.advance(TTL);
    let new = store.acquire_lease(&run.id, "b", TTL).await.unwrap();
    assert_eq!(new.epoch, old.epoch + 1);

    let e = old.epoch;
    let id = &run.id;
    assert_eq!(
        kind(
            store
                .update_run(id, e, RunUpdate::status(RunStatus::Succeeded))
                .await
        ),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.record_intent(id, e, 1, "restart", 1).await),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(
            store
                .record_result(id, e, 0, 1, StepResult::succeeded(json!(1)))
                .await
        ),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.append_event(id, Some(e), "note", json!({})).await),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.mark_outcome_unknown(id, e).await),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.renew_lease(id, "a", e, TTL).await),
        ErrorKind::LeaseLost
    );
    assert_eq!(kind(store.release_lease(id, e).await), ErrorKind::LeaseLost);

    let stored = store.get_run(id).await.unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    assert_eq!(stored.lease.as_ref().unwrap().owner, "b");
    let attempts = store.list_attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, AttemptStatus::Intent);
    assert!(store.list_events(id, 0).await.unwrap().is_empty());

    store
        .update_run(id, new.epoch, RunUpdate::status(RunStatus::Succeeded))
        .await
        .unwrap();
}

/// A paused holder whose lease expired cannot write, even if nobody took over; a new
/// acquire (new epoch) lets it continue.
pub async fn expired_lease_cannot_write_until_reacquired(store: S, clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    clock.advance(TTL - Duration::from_millis(1));
    store
        .update_run(&run.id, lease.epoch, RunUpdate::default().current_step(1))
        .await
        .unwrap();
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        kind(
            store
                .update_run(&run.id, lease.epoch, RunUpdate::default().current_step(2))
                .await
        ),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.renew_lease(&run.id, "a", lease.epoch, TTL).await),
        ErrorKind::LeaseLost
    );
    let expired = store.expired_leases(clock.now()).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, run.id);

    let again = store.acquire_lease(&run.id, "a", TTL).await.unwrap();
    assert_eq!(again.epoch, lease.epoch + 1);
    let updated = store
        .update_run(&run.id, again.epoch, RunUpdate::default().current_step(2))
        .await
        .unwrap();
    assert_eq!(updated.current_step, 2);
    assert!(store.expired_leases(clock.now()).await.unwrap().is_empty());
}

/// Releasing a lease frees the run at once and fences the released epoch.
pub async fn released_lease_frees_the_run(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    store.release_lease(&run.id, lease.epoch).await.unwrap();
    assert!(store.get_run(&run.id).await.unwrap().lease.is_none());
    assert_eq!(
        kind(
            store
                .update_run(&run.id, lease.epoch, RunUpdate::default())
                .await
        ),
        ErrorKind::LeaseLost
    );
    assert_eq!(
        kind(store.release_lease(&run.id, lease.epoch).await),
        ErrorKind::LeaseLost
    );
    let next = store.acquire_lease(&run.id, "b", TTL).await.unwrap();
    assert_eq!(next.epoch, lease.epoch + 1);
}

/// The sweeper turns running and compensating runs with expired leases into `orphaned` and
/// leaves live, queued and waiting runs alone.
pub async fn sweeper_orphans_expired_runs(store: S, clock: C) {
    let (dead, _) = leased_run(&store, "dead").await;
    let (dead_comp, l) = leased_run(&store, "dead2").await;
    store
        .update_run(
            &dead_comp.id,
            l.epoch,
            RunUpdate::status(RunStatus::Compensating),
        )
        .await
        .unwrap();
    let queued = store.create_run(NewRun::new("rb", "h")).await.unwrap();
    let (waiting, l) = leased_run(&store, "w").await;
    store
        .update_run(
            &waiting.id,
            l.epoch,
            RunUpdate::status(RunStatus::WaitingApproval),
        )
        .await
        .unwrap();
    store.release_lease(&waiting.id, l.epoch).await.unwrap();

    clock.advance(TTL);
    let (alive, alive_lease) = leased_run(&store, "alive").await;
    assert!(
        store.mark_orphaned(START).await.unwrap().is_empty(),
        "nothing expired yet then"
    );

    let orphaned = store.mark_orphaned(clock.now()).await.unwrap();
    let ids: HashSet<_> = orphaned.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, HashSet::from([dead.id.clone(), dead_comp.id.clone()]));
    for run in &orphaned {
        assert_eq!(run.status, RunStatus::Orphaned);
        assert!(run.lease.is_none());
        assert_eq!(run.updated_at, clock.now());
    }
    assert!(store.mark_orphaned(clock.now()).await.unwrap().is_empty());
    assert_eq!(
        store.get_run(&queued.id).await.unwrap().status,
        RunStatus::Queued
    );
    assert_eq!(
        store.get_run(&waiting.id).await.unwrap().status,
        RunStatus::WaitingApproval
    );
    assert_eq!(
        store.get_run(&alive.id).await.unwrap().status,
        RunStatus::Running
    );
    let listed = store
        .list_runs(&RunFilter::statuses([RunStatus::Orphaned]))
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);

    let resumed = store.acquire_lease(&dead.id, "new", TTL).await.unwrap();
    assert_eq!(resumed.epoch, 2);
    let run = store
        .update_run(
            &dead.id,
            resumed.epoch,
            RunUpdate::status(RunStatus::Running),
        )
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Running);
    store
        .update_run(&alive.id, alive_lease.epoch, RunUpdate::default())
        .await
        .unwrap();
}

/// An intent comes before the effect, a result after it; keys are stable per attempt.
pub async fn intent_then_result(store: S, clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let e = lease.epoch;
    let intent = store
        .record_intent(&run.id, e, 2, "restart", 1)
        .await
        .unwrap();
    assert_eq!(intent.status, AttemptStatus::Intent);
    assert_eq!((intent.step_index, intent.attempt), (2, 1));
    assert_eq!(intent.started_at, START);
    assert!(intent.finished_at.is_none());
    assert!(!intent.idempotency_key.is_empty());

    let same = store
        .record_intent(&run.id, e, 2, "restart", 1)
        .await
        .unwrap();
    assert_eq!(same.idempotency_key, intent.idempotency_key);
    assert_eq!(
        kind(store.record_intent(&run.id, e, 2, "other-step", 1).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.record_intent(&run.id, e, 2, "restart", 0).await),
        ErrorKind::InvalidInput
    );

    clock.advance(Duration::from_secs(3));
    let done = store
        .record_result(&run.id, e, 2, 1, StepResult::failed("exit 1"))
        .await
        .unwrap();
    assert_eq!(done.status, AttemptStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("exit 1"));
    assert_eq!(done.finished_at, Some(START + Duration::from_secs(3)));
    assert_eq!(done.idempotency_key, intent.idempotency_key);

    assert_eq!(
        kind(
            store
                .record_result(&run.id, e, 2, 1, StepResult::succeeded(json!(1)))
                .await
        ),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.record_intent(&run.id, e, 2, "restart", 1).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(
            store
                .record_result(&run.id, e, 7, 1, StepResult::succeeded(json!(1)))
                .await
        ),
        ErrorKind::NotFound
    );
    let bad = StepResult {
        status: AttemptStatus::Intent,
        output: None,
        error: None,
    };
    assert_eq!(
        kind(store.record_result(&run.id, e, 2, 1, bad).await),
        ErrorKind::InvalidInput
    );

    let retry = store
        .record_intent(&run.id, e, 2, "restart", 2)
        .await
        .unwrap();
    assert_ne!(retry.idempotency_key, intent.idempotency_key);
    let ok = store
        .record_result(&run.id, e, 2, 2, StepResult::succeeded(json!({"pid": 42})))
        .await
        .unwrap();
    assert_eq!(ok.output, Some(json!({"pid": 42})));

    let skip = store
        .record_intent(&run.id, e, 3, "notify", 1)
        .await
        .unwrap();
    let skipped = store
        .record_result(
            &run.id,
            e,
            skip.step_index,
            1,
            StepResult::skipped("operator"),
        )
        .await
        .unwrap();
    assert_eq!(skipped.status, AttemptStatus::Skipped);

    let attempts = store.list_attempts(&run.id).await.unwrap();
    let order: Vec<_> = attempts.iter().map(|a| (a.step_index, a.attempt)).collect();
    assert_eq!(order, vec![(2, 1), (2, 2), (3, 1)]);
}

/// `record_intent_logged` / `record_result_logged` write the attempt and its event together,
/// and a stale epoch writes neither.
pub async fn logged_writes_are_atomic(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "w1").await;
    let (attempt, event) = store
        .record_intent_logged(
            &run.id,
            lease.epoch,
            0,
            "drain",
            1,
            "step_started",
            json!({"step": "drain"}),
        )
        .await
        .unwrap();
    assert_eq!(attempt.status, AttemptStatus::Intent);
    assert_eq!(event.kind, "step_started");
    assert_eq!(
        event.data["idempotency_key"],
        json!(attempt.idempotency_key)
    );
    store
        .record_intent_logged(
            &run.id,
            lease.epoch,
            3,
            "verify",
            1,
            "step_started",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(store.get_run(&run.id).await.unwrap().current_step, 3);
    let (done, event) = store
        .record_result_logged(
            &run.id,
            lease.epoch,
            0,
            1,
            StepResult::succeeded(json!({"ok": true})),
            "step_succeeded",
            json!({"step": "drain"}),
        )
        .await
        .unwrap();
    assert_eq!(done.status, AttemptStatus::Succeeded);
    assert_eq!(event.seq, 3);

    store.release_lease(&run.id, lease.epoch).await.unwrap();
    let newer = store.acquire_lease(&run.id, "w2", TTL).await.unwrap();
    let stale = store
        .record_intent_logged(
            &run.id,
            lease.epoch,
            1,
            "restart",
            1,
            "step_started",
            json!({}),
        )
        .await;
    assert_eq!(kind(stale), ErrorKind::LeaseLost);
    store
        .record_intent(&run.id, newer.epoch, 1, "restart", 1)
        .await
        .unwrap();
    let stale = store
        .record_result_logged(
            &run.id,
            lease.epoch,
            1,
            1,
            StepResult::failed("x"),
            "step_failed",
            json!({}),
        )
        .await;
    assert_eq!(kind(stale), ErrorKind::LeaseLost);
    let details = store.run_details(&run.id).await.unwrap();
    assert_eq!(
        details.events.len(),
        3,
        "the refused writes appended nothing"
    );
    assert_eq!(details.attempts[1].status, AttemptStatus::Intent);
    assert_eq!(details.run.current_step, 3, "nor moved the run");
    assert!(store.verify_events(&run.id).await.unwrap().is_intact());
}

/// After a crash, intents without results become `outcome_unknown` under the new lease,
/// finished attempts stay as they were, and a rerun keeps the idempotency key.
pub async fn outcome_unknown_after_crash(store: S, clock: C) {
    let (run, dead) = leased_run(&store, "crashed").await;
    store
        .record_intent(&run.id, dead.epoch, 0, "snapshot", 1)
        .await
        .unwrap();
    store
        .record_result(
            &run.id,
            dead.epoch,
            0,
            1,
            StepResult::succeeded(json!("snap-1")),
        )
        .await
        .unwrap();
    let pending = store
        .record_intent(&run.id, dead.epoch, 1, "migrate", 1)
        .await
        .unwrap();

    clock.advance(TTL);
    assert_eq!(store.mark_orphaned(clock.now()).await.unwrap().len(), 1);
    let lease = store.acquire_lease(&run.id, "resumer", TTL).await.unwrap();
    let unknown = store
        .mark_outcome_unknown(&run.id, lease.epoch)
        .await
        .unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!((unknown[0].step_index, unknown[0].attempt), (1, 1));
    assert_eq!(unknown[0].status, AttemptStatus::OutcomeUnknown);
    assert!(
        store
            .mark_outcome_unknown(&run.id, lease.epoch)
            .await
            .unwrap()
            .is_empty()
    );

    let attempts = store.list_attempts(&run.id).await.unwrap();
    assert_eq!(attempts[0].status, AttemptStatus::Succeeded);
    assert_eq!(attempts[1].status, AttemptStatus::OutcomeUnknown);

    let rerun = store
        .record_intent(&run.id, lease.epoch, 1, "migrate", 1)
        .await
        .unwrap();
    assert_eq!(rerun.status, AttemptStatus::Intent);
    assert_eq!(rerun.idempotency_key, pending.idempotency_key);

    store
        .mark_outcome_unknown(&run.id, lease.epoch)
        .await
        .unwrap();
    let resolved = store
        .record_result(
            &run.id,
            lease.epoch,
            1,
            1,
            StepResult::succeeded(json!("probed")),
        )
        .await
        .unwrap();
    assert_eq!(resolved.status, AttemptStatus::Succeeded);
}

/// Undo moves an attempt succeeded → compensating → compensated | compensation_failed.
pub async fn compensation_moves(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let e = lease.epoch;
    for step in 0..2 {
        store.record_intent(&run.id, e, step, "s", 1).await.unwrap();
        store
            .record_result(&run.id, e, step, 1, StepResult::succeeded(json!(step)))
            .await
            .unwrap();
    }
    store.record_intent(&run.id, e, 2, "s", 1).await.unwrap();
    assert_eq!(
        kind(
            store
                .record_compensation(&run.id, e, 2, 1, AttemptStatus::Compensating, None)
                .await
        ),
        ErrorKind::Conflict,
        "an intent has no effect to undo yet"
    );
    assert_eq!(
        kind(
            store
                .record_compensation(&run.id, e, 1, 1, AttemptStatus::Compensated, None)
                .await
        ),
        ErrorKind::Conflict,
        "compensated only follows compensating"
    );
    assert_eq!(
        kind(
            store
                .record_compensation(&run.id, e, 1, 1, AttemptStatus::Failed, None)
                .await
        ),
        ErrorKind::InvalidInput
    );

    let c = store
        .record_compensation(&run.id, e, 1, 1, AttemptStatus::Compensating, None)
        .await
        .unwrap();
    assert_eq!(c.status, AttemptStatus::Compensating);
    assert_eq!(
        c.output,
        Some(json!(1)),
        "the output the undo needs is kept"
    );
    let c = store
        .record_compensation(&run.id, e, 1, 1, AttemptStatus::Compensated, None)
        .await
        .unwrap();
    assert_eq!(c.status, AttemptStatus::Compensated);

    store
        .record_compensation(&run.id, e, 0, 1, AttemptStatus::Compensating, None)
        .await
        .unwrap();
    let f = store
        .record_compensation(
            &run.id,
            e,
            0,
            1,
            AttemptStatus::CompensationFailed,
            Some("restore failed".into()),
        )
        .await
        .unwrap();
    assert_eq!(f.status, AttemptStatus::CompensationFailed);
    assert_eq!(f.error.as_deref(), Some("restore failed"));
    let retry = store
        .record_compensation(&run.id, e, 0, 1, AttemptStatus::Compensating, None)
        .await
        .unwrap();
    assert_eq!(retry.status, AttemptStatus::Compensating);
}

/// Events get consecutive sequence numbers, link to their predecessor, hash as documented,
/// and verify; operator events need no lease.
pub async fn event_chain_links_and_verifies(store: S, clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let mut appended = Vec::new();
    for i in 0..5u64 {
        clock.advance(Duration::from_millis(7));
        let epoch = if i == 3 { None } else { Some(lease.epoch) };
        let event = store
            .append_event(
                &run.id,
                epoch,
                "step_result",
                json!({"i": i, "b": [1, "x"], "a": null}),
            )
            .await
            .unwrap();
        appended.push(event);
    }
    let events = store.list_events(&run.id, 0).await.unwrap();
    assert_eq!(events, appended);
    let mut prev = chain::GENESIS_HASH.to_owned();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.seq, i as u64 + 1);
        assert_eq!(event.prev_hash, prev);
        assert_eq!(
            event.hash,
            chain::event_hash(
                &run.id,
                event.seq,
                event.at,
                &event.kind,
                &event.data,
                &prev
            )
        );
        prev = event.hash.clone();
    }
    assert_eq!(store.list_events(&run.id, 3).await.unwrap().len(), 2);
    let report = store.verify_events(&run.id).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.events, report.last_good_seq), (5, Some(5)));

    let other = store.create_run(NewRun::new("rb", "h")).await.unwrap();
    let first = store
        .append_event(&other.id, None, "created", json!({}))
        .await
        .unwrap();
    assert_eq!(
        (first.seq, first.prev_hash.as_str()),
        (1, chain::GENESIS_HASH)
    );
    let empty = store.create_run(NewRun::new("rb", "h")).await.unwrap();
    let report = store.verify_events(&empty.id).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events, 0);
    assert_eq!(
        kind(
            store
                .append_event(&RunId::from("ghost"), None, "x", json!({}))
                .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.verify_events(&RunId::from("ghost")).await),
        ErrorKind::NotFound
    );
}

/// Concurrent appends to one run produce one gap-free, verifiable chain.
pub async fn concurrent_events_have_no_gaps(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, id) = (Arc::clone(&store), run.id.clone());
            tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .append_event(&id, Some(lease.epoch), "tick", json!({"t": t, "i": i}))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let events = store.list_events(&run.id, 0).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=80).collect::<Vec<_>>());
    assert!(store.verify_events(&run.id).await.unwrap().is_intact());
}

/// Flags belong to one owner until they expire; expired flags read as absent.
pub async fn flags_expire_and_belong_to_one_owner(store: S, clock: C) {
    let ttl = Duration::from_secs(60);
    let flag = store
        .set_flag("lockdown", "run-1", ttl, Some("3 readiness failures"))
        .await
        .unwrap();
    assert_eq!(flag.owner, "run-1");
    assert_eq!(flag.expires_at, START + ttl);
    assert_eq!(flag.reason.as_deref(), Some("3 readiness failures"));
    assert_eq!(
        store.get_flag("lockdown").await.unwrap(),
        Some(flag.clone())
    );

    let taken = store.set_flag("lockdown", "run-2", ttl, None).await;
    let err = taken.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("run-1"), "{err}");
    assert_eq!(
        kind(store.renew_flag("lockdown", "run-2", ttl).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.clear_flag("lockdown", Some("run-2")).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.renew_flag("restarting", "run-1", ttl).await),
        ErrorKind::NotFound
    );

    clock.advance(Duration::from_secs(30));
    let renewed = store.renew_flag("lockdown", "run-1", ttl).await.unwrap();
    assert_eq!(renewed.expires_at, START + Duration::from_secs(90));
    assert_eq!(renewed.set_at, START);
    let reset = store
        .set_flag("lockdown", "run-1", ttl, None)
        .await
        .unwrap();
    assert_eq!(reset.set_at, START, "setting an own flag renews it");

    store
        .set_flag("restarting", "run-1", Duration::from_secs(10), None)
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_flags()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, vec!["lockdown", "restarting"]);

    clock.advance(Duration::from_secs(10));
    assert_eq!(
        store.get_flag("restarting").await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(store.list_flags().await.unwrap().len(), 1);
    let retaken = store
        .set_flag("restarting", "run-2", Duration::from_secs(10), None)
        .await
        .unwrap();
    assert_eq!(
        (retaken.owner.as_str(), retaken.set_at),
        ("run-2", clock.now())
    );

    clock.advance(Duration::from_secs(60));
    assert_eq!(store.get_flag("lockdown").await.unwrap(), None);
    assert!(!store.clear_flag("lockdown", Some("run-2")).await.unwrap());
    let mine = store
        .set_flag("lockdown", "run-2", ttl, None)
        .await
        .unwrap();
    assert_eq!(mine.owner, "run-2");
    assert!(store.clear_flag("lockdown", Some("run-2")).await.unwrap());
    assert_eq!(store.get_flag("lockdown").await.unwrap(), None);

    store.set_flag("a", "run-3", ttl, None).await.unwrap();
    store.set_flag("b", "run-3", ttl, None).await.unwrap();
    store.set_flag("c", "run-4", ttl, None).await.unwrap();
    assert!(
        store.clear_flag("c", None).await.unwrap(),
        "operator override"
    );
    assert_eq!(
        store.clear_flags_owned_by("run-3").await.unwrap(),
        vec!["a".to_owned(), "b".to_owned()]
    );
    assert!(store.list_flags().await.unwrap().is_empty());
    assert_eq!(
        kind(store.set_flag("", "run-3", ttl, None).await),
        ErrorKind::InvalidInput
    );
}

/// Unlock codes verify only while unexpired, are stored only as a hash, and rotate.
pub async fn unlock_codes_verify_expire_and_rotate(store: S, clock: C) {
    let ttl = Duration::from_secs(600);
    assert_eq!(
        store.verify_unlock_code("lockdown", "x").await.unwrap(),
        UnlockCheck::NotSet
    );
    assert_eq!(
        kind(
            store
                .rotate_unlock_code("lockdown", ttl, &CodeIssuer::default())
                .await
        ),
        ErrorKind::NotFound
    );
    let record = store
        .set_unlock_code("lockdown", "correct horse", ttl, &CodeIssuer::by("admin"))
        .await
        .unwrap();
    assert_eq!(record.generation, 1);
    assert_eq!(record.expires_at, START + ttl);
    assert_eq!(record.issued_by.as_deref(), Some("admin"));
    assert_eq!(record.override_reason, None);
    assert_eq!(
        store.get_unlock_code("lockdown").await.unwrap(),
        Some(record)
    );
    assert_eq!(
        store
            .verify_unlock_code("lockdown", "correct horse")
            .await
            .unwrap(),
        UnlockCheck::Valid
    );
    assert_eq!(
        store
            .verify_unlock_code("lockdown", "correct horse ")
            .await
            .unwrap(),
        UnlockCheck::Invalid
    );
    assert_eq!(
        kind(
            store
                .set_unlock_code("lockdown", "", ttl, &CodeIssuer::default())
                .await
        ),
        ErrorKind::InvalidInput
    );

    clock.advance(ttl);
    assert_eq!(
        store
            .verify_unlock_code("lockdown", "correct horse")
            .await
            .unwrap(),
        UnlockCheck::Expired
    );
    assert_eq!(
        store.verify_unlock_code("lockdown", "wrong").await.unwrap(),
        UnlockCheck::Invalid,
        "expiry is only revealed to holders of the code"
    );

    let override_by_bob = CodeIssuer {
        by: Some("bob".into()),
        override_reason: Some("the code was lost".into()),
    };
    let (rotated, code) = store
        .rotate_unlock_code("lockdown", ttl, &override_by_bob)
        .await
        .unwrap();
    assert_eq!(rotated.generation, 2);
    assert_eq!(rotated.issued_by.as_deref(), Some("bob"));
    assert_eq!(
        rotated.override_reason.as_deref(),
        Some("the code was lost")
    );
    assert_eq!(
        store.get_unlock_code("lockdown").await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(rotated.expires_at, clock.now() + ttl);
    assert_ne!(code, "correct horse");
    assert_eq!(
        store.verify_unlock_code("lockdown", &code).await.unwrap(),
        UnlockCheck::Valid
    );
    assert_eq!(
        store
            .verify_unlock_code("lockdown", "correct horse")
            .await
            .unwrap(),
        UnlockCheck::Invalid
    );
    let (plain, code2) = store
        .rotate_unlock_code("lockdown", ttl, &CodeIssuer::default())
        .await
        .unwrap();
    assert_eq!((plain.issued_by, plain.override_reason), (None, None));
    assert_ne!(code, code2);
    assert_eq!(
        store.verify_unlock_code("lockdown", &code).await.unwrap(),
        UnlockCheck::Invalid
    );
    assert!(store.clear_unlock_code("lockdown").await.unwrap());
    assert!(!store.clear_unlock_code("lockdown").await.unwrap());
    assert_eq!(
        store.verify_unlock_code("lockdown", &code2).await.unwrap(),
        UnlockCheck::NotSet
    );
}

/// Schedules are stored, replaced (keeping `created_at`), toggled, listed and deleted.
pub async fn schedules_round_trip(store: S, clock: C) {
    let mut def = ScheduleDef::new("heartbeat", "@every:60", "sync-jobs");
    def.time_zone = "Europe/Berlin".into();
    def.params = json!({"queue": "default"});
    def.misfire = MisfirePolicy::FireAll;
    def.catch_up = Some(Duration::from_secs(3600));
    def.overlap = OverlapPolicy::BufferOne;
    let stored = store.put_schedule(def.clone()).await.unwrap();
    assert_eq!(stored.def, def);
    assert_eq!((stored.created_at, stored.updated_at), (START, START));

    clock.advance(Duration::from_secs(5));
    def.spec = "0 3 * * *".into();
    let replaced = store.put_schedule(def.clone()).await.unwrap();
    assert_eq!(replaced.def.spec, "0 3 * * *");
    assert_eq!(replaced.created_at, START);
    assert_eq!(replaced.updated_at, clock.now());

    let off = store
        .set_schedule_enabled("heartbeat", false)
        .await
        .unwrap();
    assert!(!off.def.enabled);
    assert!(!store.get_schedule("heartbeat").await.unwrap().def.enabled);
    store
        .put_schedule(ScheduleDef::new("another", "@every:5", "rb"))
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.def.name)
        .collect();
    assert_eq!(names, vec!["another", "heartbeat"]);
    assert!(store.delete_schedule("another").await.unwrap());
    assert!(!store.delete_schedule("another").await.unwrap());
    assert_eq!(
        kind(store.get_schedule("another").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.set_schedule_enabled("another", true).await),
        ErrorKind::NotFound
    );
}

/// Eight tasks claiming the same 200 due times create exactly 200 runs, one per due time.
pub async fn fire_ledger_is_exactly_once_under_concurrency(store: S, _clock: C) {
    const DUE: i64 = 200;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                for i in 0..DUE {
                    // Half the tasks walk backwards so claims collide from both ends.
                    let i = if t % 2 == 0 { i } else { DUE - 1 - i };
                    let due = START + Duration::from_secs(60 * i as u64);
                    let run = NewRun::new("heartbeat-rb", "h").started_by(format!("ticker-{t}"));
                    match store
                        .claim_fire_and_create_run("heartbeat", due, run)
                        .await
                        .unwrap()
                    {
                        Claim::Claimed(run) => claimed.push((due, run)),
                        Claim::AlreadyClaimed(fire) => {
                            assert_eq!(fire.status, FireStatus::Dispatched);
                            assert!(fire.run_id.is_some());
                        }
                    }
                }
                claimed
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    assert_eq!(
        claimed.len(),
        DUE as usize,
        "every due time claimed exactly once"
    );
    let dues: HashSet<_> = claimed.iter().map(|(due, _)| *due).collect();
    assert_eq!(dues.len(), DUE as usize, "no due time claimed twice");
    for (due, run) in &claimed {
        let fire = run.fire.as_ref().expect("the run names its fire");
        assert_eq!((fire.schedule.as_str(), fire.due_at), ("heartbeat", *due));
        assert_eq!(run.status, RunStatus::Queued);
    }

    let runs = store
        .list_runs(&RunFilter {
            schedule: Some("heartbeat".into()),
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), DUE as usize);
    let fires = store.list_fires("heartbeat", None, None).await.unwrap();
    assert_eq!(fires.len(), DUE as usize);
    let run_ids: HashSet<_> = runs.iter().map(|r| r.id.clone()).collect();
    for pair in fires.windows(2) {
        assert!(pair[0].due_at < pair[1].due_at, "oldest first");
    }
    for fire in &fires {
        assert!(run_ids.contains(fire.run_id.as_ref().unwrap()));
    }

    let again = store
        .claim_fire_and_create_run("heartbeat", START, NewRun::new("heartbeat-rb", "h"))
        .await
        .unwrap();
    let Claim::AlreadyClaimed(fire) = again else {
        panic!("a claimed due time stays claimed");
    };
    assert_eq!(fire.due_at, START);
    assert_eq!(
        store.list_runs(&RunFilter::default()).await.unwrap().len(),
        DUE as usize
    );
}

/// `last_fires` gives, for every schedule with ledger rows, the row `last_fire` gives.
pub async fn last_fires_reads_every_schedule_at_once(store: S, _clock: C) {
    let t = |m: u64| START + Duration::from_secs(60 * m);
    for (name, minutes) in [("a", vec![1, 5, 3]), ("b", vec![2]), ("c", vec![])] {
        store
            .put_schedule(ScheduleDef::new(name, "@every:60", "rb"))
            .await
            .unwrap();
        for m in minutes {
            store
                .record_fire(name, t(m), FireStatus::Missed, "no process ticked")
                .await
                .unwrap();
        }
    }
    let all = store.last_fires().await.unwrap();
    assert_eq!(all.len(), 2, "schedule c has no ledger rows");
    assert_eq!(all["a"].due_at, t(5));
    assert_eq!(all["b"].due_at, t(2));
    for name in ["a", "b"] {
        assert_eq!(
            Some(all[name].clone()),
            store.last_fire(name).await.unwrap()
        );
    }
}

/// Skipped and missed due times are recorded with their reason and never dispatched.
pub async fn skipped_and_missed_fires_are_recorded(store: S, clock: C) {
    let t = |m: u64| START + Duration::from_secs(60 * m);
    let skipped = store
        .record_fire(
            "nightly",
            t(1),
            FireStatus::Skipped,
            "previous run still active",
        )
        .await
        .unwrap();
    let Claim::Claimed(fire) = skipped else {
        panic!("the first record claims the due time");
    };
    assert_eq!(fire.status, FireStatus::Skipped);
    assert_eq!(fire.reason.as_deref(), Some("previous run still active"));
    assert_eq!(fire.run_id, None);
    assert_eq!(fire.recorded_at, clock.now());

    assert!(
        store
            .record_fire("nightly", t(2), FireStatus::Missed, "no process ticked")
            .await
            .unwrap()
            .is_claimed()
    );
    let dispatched = store
        .claim_fire_and_create_run("nightly", t(3), NewRun::new("rb", "h"))
        .await
        .unwrap()
        .claimed()
        .unwrap();

    let blocked = store
        .claim_fire_and_create_run("nightly", t(1), NewRun::new("rb", "h"))
        .await
        .unwrap();
    assert!(
        matches!(&blocked, Claim::AlreadyClaimed(f) if f.status == FireStatus::Skipped),
        "{blocked:?}"
    );
    let dup = store
        .record_fire("nightly", t(3), FireStatus::Skipped, "late")
        .await
        .unwrap();
    assert!(matches!(&dup, Claim::AlreadyClaimed(f) if f.run_id.as_ref() == Some(&dispatched.id)));
    assert_eq!(
        kind(
            store
                .record_fire("nightly", t(4), FireStatus::Dispatched, "x")
                .await
        ),
        ErrorKind::InvalidInput
    );

    let fires = store.list_fires("nightly", None, None).await.unwrap();
    let statuses: Vec<_> = fires.iter().map(|f| f.status).collect();
    assert_eq!(
        statuses,
        vec![
            FireStatus::Skipped,
            FireStatus::Missed,
            FireStatus::Dispatched
        ]
    );
    let after = store
        .list_fires("nightly", Some(t(1)), Some(1))
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].due_at, t(2));
    assert_eq!(
        store.last_fire("nightly").await.unwrap().unwrap().due_at,
        t(3)
    );
    assert_eq!(store.last_fire("other").await.unwrap(), None);
    assert!(
        store
            .list_fires("other", None, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_runs(&RunFilter::default()).await.unwrap().len(),
        1
    );
}

fn new_approval(run: &Run, quorum: u32) -> NewApproval {
    NewApproval {
        run_id: run.id.clone(),
        step_index: 3,
        attempt: 1,
        plan_digest: "sha256:plan".into(),
        quorum,
        approvers: Vec::new(),
        exclude_starter: false,
        ttl: Duration::from_secs(3600),
    }
}

/// Distinct approvals up to the quorum approve; the approval is used once, for its plan.
pub async fn approvals_need_a_quorum_and_are_single_use(store: S, clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let created = store.create_approval(new_approval(&run, 2)).await.unwrap();
    assert_eq!(created.status, ApprovalStatus::Pending);
    assert_eq!(created.starter.as_deref(), Some("alice"));
    assert_eq!(created.expires_at, START + Duration::from_secs(3600));
    assert_eq!(store.get_approval(&created.id).await.unwrap(), created);

    let not_yet = store
        .consume_approval(&created.id, lease.epoch, "sha256:plan")
        .await;
    assert_eq!(kind(not_yet), ErrorKind::Conflict);

    clock.advance(Duration::from_secs(1));
    let one = store
        .approve(&created.id, "bob", Some("looks fine"))
        .await
        .unwrap();
    assert_eq!(one.status, ApprovalStatus::Pending);
    assert_eq!(one.approvals.len(), 1);
    assert_eq!(one.approvals[0].who, "bob");
    assert_eq!(one.approvals[0].comment.as_deref(), Some("looks fine"));
    assert_eq!(one.approvals[0].at, clock.now());
    let twice = store.approve(&created.id, "bob", None).await.unwrap();
    assert_eq!(twice.approvals.len(), 1, "approving twice is a no-op");
    assert_eq!(twice.status, ApprovalStatus::Pending);

    let two = store.approve(&created.id, "carol", None).await.unwrap();
    assert_eq!(two.status, ApprovalStatus::Approved);
    assert_eq!(two.approvals.len(), 2);
    assert_eq!(
        store
            .approve(&created.id, "carol", None)
            .await
            .unwrap()
            .status,
        ApprovalStatus::Approved
    );
    assert_eq!(
        kind(store.approve(&created.id, "dave", None).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        kind(store.deny(&created.id, "dave", None).await),
        ErrorKind::Conflict
    );

    let changed = store
        .consume_approval(&created.id, lease.epoch, "sha256:other")
        .await;
    assert_eq!(kind(changed), ErrorKind::Conflict);
    assert_eq!(
        kind(
            store
                .consume_approval(&created.id, lease.epoch + 1, "sha256:plan")
                .await
        ),
        ErrorKind::LeaseLost
    );
    let used = store
        .consume_approval(&created.id, lease.epoch, "sha256:plan")
        .await
        .unwrap();
    assert_eq!(used.status, ApprovalStatus::Consumed);
    assert_eq!(used.consumed_at, Some(clock.now()));
    let again = store
        .consume_approval(&created.id, lease.epoch, "sha256:plan")
        .await;
    assert_eq!(kind(again), ErrorKind::Conflict);

    let listed = store.list_approvals(&run.id).await.unwrap();
    assert_eq!(listed, vec![used]);
    assert_eq!(
        kind(store.get_approval(&ApprovalId::from("nope")).await),
        ErrorKind::NotFound
    );
    let mut zero = new_approval(&run, 0);
    assert_eq!(
        kind(store.create_approval(zero.clone()).await),
        ErrorKind::InvalidInput
    );
    zero.quorum = 1;
    zero.run_id = RunId::from("ghost");
    assert_eq!(kind(store.create_approval(zero).await), ErrorKind::NotFound);
}

/// The starter rule and the approvers list refuse the wrong people; a denial is final.
pub async fn approvals_refuse_the_wrong_people(store: S, _clock: C) {
    let (run, _) = leased_run(&store, "a").await;
    let mut new = new_approval(&run, 1);
    new.exclude_starter = true;
    let a = store.create_approval(new).await.unwrap();
    let by_starter = store.approve(&a.id, "alice", None).await.unwrap_err();
    assert_eq!(by_starter.kind(), ErrorKind::PolicyDenied);
    assert!(by_starter.message().contains("alice"), "{by_starter}");
    assert!(
        store
            .get_approval(&a.id)
            .await
            .unwrap()
            .approvals
            .is_empty()
    );
    assert_eq!(
        kind(store.approve(&a.id, "", None).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        store.approve(&a.id, "bob", None).await.unwrap().status,
        ApprovalStatus::Approved
    );

    let mut listed = new_approval(&run, 1);
    listed.approvers = vec!["erin".into(), "frank".into()];
    let b = store.create_approval(listed).await.unwrap();
    assert_eq!(
        kind(store.approve(&b.id, "mallory", None).await),
        ErrorKind::PolicyDenied
    );
    assert_eq!(
        kind(store.deny(&b.id, "mallory", None).await),
        ErrorKind::PolicyDenied
    );
    let denied = store
        .deny(&b.id, "frank", Some("not during peak"))
        .await
        .unwrap();
    assert_eq!(denied.status, ApprovalStatus::Denied);
    let denial = denied.denial.clone().unwrap();
    assert_eq!(
        (denial.who.as_str(), denial.comment.as_deref()),
        ("frank", Some("not during peak"))
    );
    assert_eq!(store.deny(&b.id, "frank", None).await.unwrap(), denied);
    assert_eq!(
        kind(store.approve(&b.id, "erin", None).await),
        ErrorKind::Conflict
    );
    assert_eq!(
        store.get_approval(&b.id).await.unwrap().status,
        ApprovalStatus::Denied
    );

    let mut too_big = new_approval(&run, 3);
    too_big.approvers = vec!["erin".into()];
    assert_eq!(
        kind(store.create_approval(too_big).await),
        ErrorKind::InvalidInput
    );
}

/// Past its expiry an approval turns `timed_out`: approving, denying and using it fail.
pub async fn approvals_time_out(store: S, clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    let pending = store.create_approval(new_approval(&run, 2)).await.unwrap();
    let approved = store.create_approval(new_approval(&run, 1)).await.unwrap();
    store.approve(&approved.id, "bob", None).await.unwrap();
    let swept = store.create_approval(new_approval(&run, 1)).await.unwrap();

    clock.advance(Duration::from_secs(3600));
    let late = store.approve(&pending.id, "bob", None).await.unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
    assert!(late.message().contains("timed out"), "{late}");
    assert_eq!(
        store.get_approval(&pending.id).await.unwrap().status,
        ApprovalStatus::TimedOut,
        "the refusal records the timeout"
    );
    assert_eq!(
        kind(store.deny(&pending.id, "bob", None).await),
        ErrorKind::Conflict
    );

    assert!(lease.expires_at <= clock.now());
    let lease = store.acquire_lease(&run.id, "a", TTL).await.unwrap();
    let stale = store
        .consume_approval(&approved.id, lease.epoch, "sha256:plan")
        .await;
    assert_eq!(kind(stale), ErrorKind::Conflict);
    assert_eq!(
        store.get_approval(&approved.id).await.unwrap().status,
        ApprovalStatus::TimedOut
    );

    let expired = store.expire_approvals(clock.now()).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, swept.id);
    assert_eq!(expired[0].status, ApprovalStatus::TimedOut);
    assert!(
        store
            .expire_approvals(clock.now())
            .await
            .unwrap()
            .is_empty()
    );
}

/// `run_details` returns the run with all its attempts and events.
pub async fn run_details_are_complete(store: S, _clock: C) {
    let (run, lease) = leased_run(&store, "a").await;
    store
        .record_intent(&run.id, lease.epoch, 0, "s0", 1)
        .await
        .unwrap();
    store
        .record_result(
            &run.id,
            lease.epoch,
            0,
            1,
            StepResult::succeeded(json!({"ok": true})),
        )
        .await
        .unwrap();
    store
        .record_intent(&run.id, lease.epoch, 1, "s1", 1)
        .await
        .unwrap();
    store
        .append_event(
            &run.id,
            Some(lease.epoch),
            "step_started",
            json!({"step": 0}),
        )
        .await
        .unwrap();
    store
        .append_event(&run.id, None, "operator_note", json!({"who": "bob"}))
        .await
        .unwrap();
    let details = store.run_details(&run.id).await.unwrap();
    assert_eq!(details.run, store.get_run(&run.id).await.unwrap());
    assert_eq!(
        details.attempts,
        store.list_attempts(&run.id).await.unwrap()
    );
    assert_eq!(details.attempts.len(), 2);
    assert_eq!(details.events.len(), 2);
    assert_eq!(details.events[1].kind, "operator_note");
    assert_eq!(
        kind(store.run_details(&RunId::from("ghost")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.list_attempts(&RunId::from("ghost")).await),
        ErrorKind::NotFound
    );
}
