//! Flags, lockdown and the health trigger against a real SQLite store and a real registry.

use super::*;
use crate::health::{CheckSpec, Outcome, ProbeKind, Registry, Schedule, probe_fn};
use crate::store::{Clock, ManualClock, SqliteOptions, SqliteStore, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

async fn setup() -> (Flags, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let store = SqliteStore::open_in_memory_with(
        SqliteOptions::default()
            .clock(clock.clone())
            .unlock_iterations(1_000),
    )
    .await
    .unwrap();
    (Flags::new(Arc::new(store)), clock)
}

#[tokio::test]
async fn flags_set_list_clear_and_expire() {
    let (flags, clock) = setup().await;
    let flag = flags
        .set("restarting", "run-1", 10 * MIN, Some("deploy"))
        .await
        .unwrap();
    assert_eq!(flag.owner, "run-1");
    assert_eq!(flag.reason.as_deref(), Some("deploy"));
    flags.set("maintenance", "ops", MIN, None).await.unwrap();
    let names: Vec<_> = flags
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["maintenance", "restarting"]);

    clock.advance(MIN);
    assert!(flags.get("maintenance").await.unwrap().is_none());
    assert_eq!(flags.list().await.unwrap().len(), 1);

    assert!(flags.clear("restarting", Some("run-1")).await.unwrap());
    assert!(!flags.clear("restarting", None).await.unwrap());
    assert!(flags.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn flags_are_owned() {
    let (flags, clock) = setup().await;
    flags
        .set("restarting", "run-1", MIN, Some("deploy"))
        .await
        .unwrap();
    let err = flags
        .set("restarting", "run-2", MIN, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("run-1"), "{err}");

    let err = flags.clear("restarting", Some("run-2")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let renewed = flags.renew("restarting", "run-1", 5 * MIN).await.unwrap();
    assert_eq!(renewed.expires_at, clock.now() + 5 * MIN);

    flags.set("other", "run-1", MIN, None).await.unwrap();
    let mut released = flags.release_owned_by("run-1").await.unwrap();
    released.sort();
    assert_eq!(released, ["other", "restarting"]);

    // Once the flag lapses, another owner may take it.
    flags.set("restarting", "run-1", MIN, None).await.unwrap();
    clock.advance(MIN);
    flags.set("restarting", "run-2", MIN, None).await.unwrap();
}

#[tokio::test]
async fn flags_reject_bad_names_and_ttls() {
    let (flags, _) = setup().await;
    for name in ["", "two words"] {
        let err = flags.set(name, "me", MIN, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
    }
    let err = flags
        .set("x", "me", Duration::ZERO, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(parse_ttl("10m").unwrap(), 10 * MIN);
    assert_eq!(parse_ttl(" 1h30m ").unwrap(), 90 * MIN);
    for bad in ["0s", "soon", "", "10"] {
        let err = parse_ttl(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
    }
}

#[tokio::test]
async fn flags_require_absent_names_owner_reason_and_expiry() {
    let (flags, clock) = setup().await;
    flags
        .require_absent(&[LOCKDOWN, "restarting"])
        .await
        .unwrap();
    flags
        .lockdown("admin", Some("suspicious logins"), HOUR)
        .await
        .unwrap();
    let err = flags
        .require_absent(&["restarting", LOCKDOWN])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let msg = err.message();
    assert!(msg.contains("lockdown is on"), "{msg}");
    assert!(msg.contains("held by admin"), "{msg}");
    assert!(msg.contains("suspicious logins"), "{msg}");
    assert!(
        msg.contains(&(clock.now() + HOUR).to_string()),
        "expiry named: {msg}"
    );
    assert!(msg.contains("runward unlock <code>"), "{msg}");

    let err = flags.require_present(&["restarting"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("`restarting`"), "{err}");
    let present = flags.require_present(&[LOCKDOWN]).await.unwrap();
    assert_eq!(present[0].owner, "admin");

    clock.advance(HOUR);
    flags.require_absent(&[LOCKDOWN]).await.unwrap();
}

#[tokio::test]
async fn flags_lockdown_then_unlock_with_its_code() {
    let (flags, _) = setup().await;
    let lockdown = flags
        .lockdown_with_code_ttl("admin", Some("incident"), HOUR, 10 * MIN)
        .await
        .unwrap();
    let code = lockdown.code.expose().to_owned();
    assert_eq!(code.len(), 19);
    assert_eq!(code.split('-').count(), 4);
    assert!(
        !format!("{lockdown:?}").contains(&code),
        "Debug hides the code"
    );
    assert_eq!(lockdown.flag.name, LOCKDOWN);
    assert_eq!(
        lockdown.code_record.expires_at,
        lockdown.code_record.created_at + 10 * MIN
    );

    let status = flags.lockdown_status().await.unwrap();
    assert!(status.flag.is_some() && status.code.is_some());

    let unlocked = flags.unlock(&format!("  {code}\n")).await.unwrap();
    assert_eq!(unlocked.flag.unwrap().owner, "admin");
    let status = flags.lockdown_status().await.unwrap();
    assert!(status.flag.is_none() && status.code.is_none());

    // The code is single use: it went with the lockdown.
    let err = flags.unlock(&code).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("nothing to unlock"), "{err}");
}

#[tokio::test]
async fn flags_wrong_code_changes_nothing() {
    let (flags, _) = setup().await;
    let lockdown = flags.lockdown("admin", None, HOUR).await.unwrap();
    let err = flags.unlock("AAAA-BBBB-CCCC-DDDD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyDenied);
    assert!(err.message().contains("wrong"), "{err}");
    let err = flags.unlock("   ").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(flags.get(LOCKDOWN).await.unwrap().is_some());
    flags.unlock(lockdown.code.expose()).await.unwrap();
}

#[tokio::test]
async fn flags_expired_code_is_a_distinct_error_and_rotation_recovers() {
    let (flags, clock) = setup().await;
    let lockdown = flags
        .lockdown_with_code_ttl("admin", None, HOUR, 10 * MIN)
        .await
        .unwrap();
    clock.advance(10 * MIN);
    let err = flags.unlock(lockdown.code.expose()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("expired"), "{err}");
    assert!(err.message().contains("--rotate"), "{err}");
    assert!(flags.get(LOCKDOWN).await.unwrap().is_some(), "still locked");

    // Rotation keeps the previous lifetime and makes the old code useless.
    // Rotating needs the current code, expired or not.
    let err = flags
        .rotate_unlock_code(RotateAuthority::CurrentCode("AAAA-BBBB-CCCC-DDDD"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyDenied);
    let issued = flags
        .rotate_unlock_code(RotateAuthority::CurrentCode(lockdown.code.expose()), None)
        .await
        .unwrap();
    assert_eq!(issued.record.generation, 2);
    assert_eq!(issued.record.expires_at, clock.now() + 10 * MIN);
    assert!(
        !serde_json::to_string(&issued)
            .unwrap()
            .contains(issued.code.expose())
    );
    let err = flags.unlock(lockdown.code.expose()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyDenied);

    let again = flags
        .rotate_unlock_code(
            RotateAuthority::CurrentCode(issued.code.expose()),
            Some(HOUR),
        )
        .await
        .unwrap();
    assert_eq!(again.record.expires_at, clock.now() + HOUR);
    let err = flags.unlock(issued.code.expose()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyDenied, "rotated away");
    flags.unlock(again.code.expose()).await.unwrap();
    assert!(flags.get(LOCKDOWN).await.unwrap().is_none());
}

#[tokio::test]
async fn flags_rotate_needs_a_lockdown_or_a_code() {
    let (flags, _) = setup().await;
    let bob = RotateAuthority::Override {
        who: "bob",
        reason: "the incident channel lost the code",
    };
    let err = flags.rotate_unlock_code(bob, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("runward lockdown"), "{err}");

    // Lockdown set as a plain flag (e.g. by a run) gets a code on rotation.
    flags.set(LOCKDOWN, "run-7", HOUR, None).await.unwrap();
    let err = flags.unlock("AAAA-BBBB-CCCC-DDDD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("no unlock code"), "{err}");
    let err = flags
        .rotate_unlock_code(RotateAuthority::CurrentCode("AAAA-BBBB-CCCC-DDDD"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("--override"), "{err}");
    let issued = flags.rotate_unlock_code(bob, None).await.unwrap();
    assert_eq!(issued.record.generation, 1);
    assert_eq!(issued.record.issued_by.as_deref(), Some("bob"));
    assert_eq!(
        issued.record.override_reason.as_deref(),
        Some("the incident channel lost the code")
    );
    assert_eq!(
        issued.record.expires_at,
        issued.record.created_at + DEFAULT_CODE_TTL
    );
    flags.unlock(issued.code.expose()).await.unwrap();
}

#[tokio::test]
async fn flags_lockdown_by_another_owner_is_refused_and_keeps_the_code() {
    let (flags, _) = setup().await;
    let first = flags
        .lockdown("health-policy", Some("readiness"), HOUR)
        .await
        .unwrap();
    let err = flags.lockdown("admin", None, HOUR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("already on"), "{err}");
    assert!(err.message().contains("health-policy"), "{err}");
    flags.unlock(first.code.expose()).await.unwrap();

    // Clearing or releasing lockdown as a flag takes the code with it.
    flags.lockdown("run-1", None, HOUR).await.unwrap();
    assert_eq!(flags.release_owned_by("run-1").await.unwrap(), [LOCKDOWN]);
    assert!(flags.lockdown_status().await.unwrap().code.is_none());
    flags.lockdown("run-1", None, HOUR).await.unwrap();
    assert!(flags.clear(LOCKDOWN, None).await.unwrap());
    assert!(flags.lockdown_status().await.unwrap().code.is_none());
}

#[tokio::test]
async fn flags_lockdown_again_by_its_owner_is_refused_and_keeps_the_code() {
    let (flags, clock) = setup().await;
    let first = flags.lockdown("admin", None, HOUR).await.unwrap();
    clock.advance(MIN);
    let err = flags
        .lockdown("admin", Some("still"), HOUR)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("already on"), "{err}");
    assert!(err.message().contains("held by admin"), "{err}");
    assert!(err.message().contains(" ago)"), "the age: {err}");
    let status = flags.lockdown_status().await.unwrap();
    assert_eq!(
        status.flag.unwrap().expires_at,
        first.flag.expires_at,
        "not renewed"
    );
    assert_eq!(status.code.unwrap().generation, 1, "no new code");
    flags.unlock(first.code.expose()).await.unwrap();
}

fn failing_registry() -> (Registry, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(true));
    let probe_state = healthy.clone();
    let registry = Registry::builder()
        .check(
            CheckSpec::new(
                "db",
                probe_fn(move |_ctx| {
                    let up = probe_state.load(Ordering::SeqCst);
                    async move {
                        if up {
                            Outcome::pass()
                        } else {
                            Outcome::fail("connection refused")
                        }
                    }
                }),
            )
            .kinds([ProbeKind::Readiness])
            .schedule(Schedule::every(Duration::from_millis(20))),
        )
        .build()
        .unwrap();
    (registry, healthy)
}

#[tokio::test]
async fn flags_trigger_fires_after_n_failures_in_the_window_and_not_before() {
    let (flags, clock) = setup().await;
    let (registry, healthy) = failing_registry();
    let policy = LockdownPolicy::new(3, MIN, HOUR);
    let trigger = LockdownTrigger::new(&registry, flags.clone(), policy)
        .unwrap()
        .with_clock(clock.clone());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    trigger.on_lockdown(move |event| {
        sink.lock()
            .unwrap()
            .push(event.lockdown.code.expose().to_owned());
    });

    // Before a first result readiness is unknown, which does not count.
    assert!(matches!(trigger.sample().await.unwrap(), Sample::Passed));
    registry.refresh_all().await;
    assert!(matches!(trigger.sample().await.unwrap(), Sample::Passed));

    healthy.store(false, Ordering::SeqCst);
    registry.refresh_all().await;
    assert!(matches!(
        trigger.sample().await.unwrap(),
        Sample::Failed { in_window: 1 }
    ));
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        trigger.sample().await.unwrap(),
        Sample::Failed { in_window: 2 }
    ));
    // The first failure leaves the window: two still count, no lockdown yet.
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        trigger.sample().await.unwrap(),
        Sample::Failed { in_window: 2 }
    ));
    assert!(flags.get(LOCKDOWN).await.unwrap().is_none());

    clock.advance(Duration::from_secs(1));
    let Sample::LockedDown(event) = trigger.sample().await.unwrap() else {
        panic!("the third failure within the window locks down");
    };
    assert_eq!(event.failures, 3);
    assert_eq!(event.failing, ["db"]);
    let flag = flags.get(LOCKDOWN).await.unwrap().expect("lockdown is on");
    assert_eq!(flag.owner, "health-policy");
    assert!(
        flag.reason
            .as_deref()
            .unwrap()
            .contains("readiness failed 3 times within 1m"),
        "{flag:?}"
    );
    let codes = seen.lock().unwrap().clone();
    assert_eq!(codes, [event.lockdown.code.expose().to_owned()]);

    // While locked, failures do not pile up or re-issue codes.
    for _ in 0..3 {
        trigger.sample().await.unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
    flags.unlock(&codes[0]).await.unwrap();
    assert!(matches!(
        trigger.sample().await.unwrap(),
        Sample::Failed { in_window: 1 }
    ));

    // Recovered readiness counts nothing; shutdown is not an outage.
    healthy.store(true, Ordering::SeqCst);
    registry.refresh_all().await;
    assert!(matches!(trigger.sample().await.unwrap(), Sample::Passed));
    registry.begin_shutdown();
    assert!(matches!(trigger.sample().await.unwrap(), Sample::Skipped));
}

#[tokio::test]
async fn flags_trigger_gates_do_not_count() {
    let (flags, _) = setup().await;
    let (registry, _) = failing_registry();
    registry.refresh_all().await;
    registry.close_gate("maintenance", "planned");
    let trigger =
        LockdownTrigger::new(&registry, flags, LockdownPolicy::new(1, MIN, HOUR)).unwrap();
    assert!(matches!(trigger.sample().await.unwrap(), Sample::Passed));
}

#[tokio::test]
async fn flags_trigger_rejects_bad_policies() {
    let (flags, _) = setup().await;
    let (registry, _) = failing_registry();
    for policy in [
        LockdownPolicy::new(0, MIN, HOUR),
        LockdownPolicy::new(3, Duration::ZERO, HOUR),
        LockdownPolicy {
            interval: Duration::ZERO,
            ..LockdownPolicy::default()
        },
    ] {
        let err = LockdownTrigger::new(&registry, flags.clone(), policy).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_attached_trigger_locks_down_in_the_background() {
    let store = SqliteStore::open_in_memory_with(SqliteOptions::default().unlock_iterations(1_000))
        .await
        .unwrap();
    let flags = Flags::new(Arc::new(store));
    let (registry, healthy) = failing_registry();
    healthy.store(false, Ordering::SeqCst);
    registry.start();
    let policy = LockdownPolicy {
        failures: 3,
        window: MIN,
        ttl: HOUR,
        code_ttl: HOUR,
        interval: Duration::from_millis(20),
        owner: "health-policy".into(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let trigger = attach_lockdown(&registry, flags.clone(), policy).unwrap();
    trigger.on_lockdown(move |event| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(event.lockdown.code.expose().to_owned());
        }
    });
    let code = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("lockdown within 20 s")
        .unwrap();
    assert!(flags.get(LOCKDOWN).await.unwrap().is_some());
    trigger.stop();
    registry.stop();
    flags.unlock(&code).await.unwrap();
    assert!(flags.get(LOCKDOWN).await.unwrap().is_none());
}
