//! `runward flag`, `runward lockdown` and `runward unlock` against ./.runward/state.db in a
//! temporary working directory.

mod common;

use std::path::Path;
use std::process::Output;

fn run(dir: &Path, args: &[&str]) -> Output {
    common::runward()
        .current_dir(dir)
        .env_remove("RUNWARD_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(dir, args)).expect("valid JSON")
}

fn settings(dir: &Path) -> insta::Settings {
    let mut settings = common::settings(dir);
    settings.add_filter(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", "[CODE]");
    settings
}

/// The unlock code from the last word of the `end it with: runward unlock <code>` line.
fn printed_code(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("end it with: runward unlock "))
        .expect("the unlock command is printed")
        .to_owned()
}

fn flag_names(dir: &Path) -> Vec<String> {
    json(dir, &["flag", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn flag_set_list_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _guard = settings(dir).bind_to_scope();

    insta::assert_snapshot!(ok(dir, &["flag", "list"]), @"no flags are set");
    let set = ok(
        dir,
        &[
            "flag",
            "set",
            "restarting",
            "--ttl",
            "10m",
            "--reason",
            "deploy 42",
        ],
    );
    insta::assert_snapshot!(set, @"set flag `restarting`: held by operator until [TIME], reason: deploy 42");
    ok(
        dir,
        &[
            "flag",
            "set",
            "maintenance",
            "--ttl",
            "1h",
            "--owner",
            "run-7",
        ],
    );
    assert!(dir.join(".runward/state.db").exists());
    insta::assert_snapshot!(ok(dir, &["flag", "list"]), @r"
    NAME         OWNER     EXPIRES                   REASON
    maintenance  run-7     [TIME]
    restarting   operator  [TIME]  deploy 42
    ");

    let flags = json(dir, &["flag", "list", "--json"]);
    assert_eq!(flags.as_array().unwrap().len(), 2);
    assert_eq!(flags[1]["name"], "restarting");
    assert_eq!(flags[1]["owner"], "operator");
    assert_eq!(flags[1]["reason"], "deploy 42");
    assert!(flags[1]["expires_at"].as_str().unwrap().ends_with('Z'));

    // Another owner is refused, with the holder named.
    let out = run(
        dir,
        &[
            "flag",
            "set",
            "restarting",
            "--ttl",
            "1m",
            "--owner",
            "run-9",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("held by operator"),
        "{}",
        stderr(&out)
    );
    let out = run(
        dir,
        &["flag", "clear", "maintenance", "--owner", "run-9", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "conflict");

    let set = json(dir, &["flag", "set", "restarting", "--ttl", "5m", "--json"]);
    assert_eq!(set["owner"], "operator");
    insta::assert_snapshot!(ok(dir, &["flag", "clear", "restarting"]), @"cleared flag `restarting`");
    let cleared = json(dir, &["flag", "clear", "restarting", "--json"]);
    assert_eq!(
        cleared,
        serde_json::json!({"name": "restarting", "cleared": false})
    );
    ok(dir, &["flag", "clear", "maintenance", "--owner", "run-7"]);
    assert!(flag_names(dir).is_empty());
}

#[test]
fn lockdown_then_unlock_with_the_printed_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _guard = settings(dir).bind_to_scope();

    let text = ok(dir, &["lockdown", "--reason", "suspicious logins"]);
    insta::assert_snapshot!(text, @r"
    lockdown is on: held by operator until [TIME], reason: suspicious logins
    unlock code (shown only once, valid until [TIME]): [CODE]
    end it with: runward unlock [CODE]
    ");
    let code = printed_code(&text);
    assert_eq!(flag_names(dir), ["lockdown"]);

    // A second lockdown, by someone else or by the same owner, is refused: it names the
    // holder and the age, and issues no new code.
    for owner in ["someone-else", "operator"] {
        let out = run(dir, &["lockdown", "--owner", owner]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("already on: held by operator since"), "{err}");
        assert!(err.contains(" ago), reason: suspicious logins"), "{err}");
        assert!(out.stdout.is_empty(), "no code is printed");
    }

    // A wrong code is refused and changes nothing.
    let out = run(dir, &["unlock", "AAAA-BBBB-CCCC-DDDD"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&out), @"error: the unlock code is wrong; lockdown is unchanged. Check the code, or replace it with `runward unlock --rotate --override --reason TEXT`");
    assert_eq!(flag_names(dir), ["lockdown"]);

    insta::assert_snapshot!(ok(dir, &["unlock", &code]), @"lockdown ended (it was held by operator, reason: suspicious logins)");
    assert!(flag_names(dir).is_empty());

    // The code was single use.
    let out = run(dir, &["unlock", &code]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing to unlock"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rotate_replaces_the_code_and_json_carries_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _guard = settings(dir).bind_to_scope();

    let text = ok(
        dir,
        &["flag", "set", "restarting", "--ttl", "10m", "--json"],
    );
    insta::assert_snapshot!(text, @r#"
    {
      "expires_at": "[TIME]",
      "name": "restarting",
      "owner": "operator",
      "reason": null,
      "set_at": "[TIME]"
    }
    "#);
    insta::assert_snapshot!(ok(dir, &["flag", "list", "--json"]), @r#"
    [
      {
        "expires_at": "[TIME]",
        "name": "restarting",
        "owner": "operator",
        "reason": null,
        "set_at": "[TIME]"
      }
    ]
    "#);
    ok(dir, &["flag", "clear", "restarting"]);

    let text = ok(
        dir,
        &["lockdown", "--ttl", "2h", "--code-ttl", "30m", "--json"],
    );
    insta::assert_snapshot!(text, @r#"
    {
      "code": "[CODE]",
      "code_expires_at": "[TIME]",
      "code_generation": 1,
      "flag": {
        "expires_at": "[TIME]",
        "name": "lockdown",
        "owner": "operator",
        "reason": null,
        "set_at": "[TIME]"
      }
    }
    "#);
    let locked: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(locked["flag"]["name"], "lockdown");
    assert_eq!(locked["code_generation"], 1);
    let first = locked["code"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 19);

    // Rotating needs the current code.
    let out = run(
        dir,
        &["unlock", "--rotate", "AAAA-BBBB-CCCC-DDDD", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "policy_denied");
    let rotated = json(dir, &["unlock", "--rotate", &first, "--json"]);
    assert_eq!(rotated["generation"], 2);
    assert_eq!(rotated["issued_by"], serde_json::Value::Null);
    let second = rotated["code"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    let out = run(dir, &["unlock", &first, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["kind"], "policy_denied");
    assert_eq!(flag_names(dir), ["lockdown"]);

    let unlocked = json(dir, &["unlock", &second, "--json"]);
    assert_eq!(unlocked["unlocked"], true);
    assert_eq!(unlocked["flag"]["owner"], "operator");

    let out = run(
        dir,
        &[
            "unlock",
            "--rotate",
            "--override",
            "--reason",
            "lost",
            "--as",
            "bob",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "no lockdown, nothing to rotate");
    assert!(
        stderr(&out).contains("runward lockdown"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn expired_code_is_refused_and_rotation_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let code = printed_code(&ok(dir, &["lockdown", "--code-ttl", "1s"]));
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let out = run(dir, &["unlock", &code]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert_eq!(flag_names(dir), ["lockdown"]);

    let new_code = json(
        dir,
        &["unlock", "--rotate", &code, "--code-ttl", "10m", "--json"],
    )["code"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(dir, &["unlock", &new_code]);
    assert!(flag_names(dir).is_empty());
}

#[test]
fn rotating_without_the_code_is_an_override_recorded_with_who_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let lost = printed_code(&ok(dir, &["lockdown", "--owner", "alice"]));
    let rotated = json(
        dir,
        &[
            "unlock",
            "--rotate",
            "--override",
            "--reason",
            "the code was lost",
            "--as",
            "bob",
            "--json",
        ],
    );
    assert_eq!(rotated["issued_by"], "bob");
    assert_eq!(rotated["override_reason"], "the code was lost");
    let db = rusqlite::Connection::open(dir.join(".runward/state.db")).unwrap();
    let (by, why): (String, String) = db
        .query_row(
            "SELECT issued_by, override_reason FROM unlock_codes WHERE name = 'lockdown'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((by.as_str(), why.as_str()), ("bob", "the code was lost"));
    let out = run(dir, &["unlock", &lost]);
    assert_eq!(out.status.code(), Some(1), "the lost code no longer works");
    ok(dir, &["unlock", rotated["code"].as_str().unwrap()]);
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for args in [
        &["flag", "set", "x", "--ttl", "soon"][..],
        &["flag", "set", "x", "--ttl", "0s"],
        &["flag", "set", "x"],
        &["flag", "set", "lockdown", "--ttl", "1h"],
        &["flag", "clear", "lockdown"],
        &["unlock"],
        &["unlock", "--rotate"],
        &["unlock", "--rotate", "--override"],
        &["unlock", "--override", "--reason", "lost"],
        &[
            "unlock",
            "CODE",
            "--rotate",
            "--override",
            "--reason",
            "lost",
        ],
        &["lockdown", "--ttl", "later"],
    ] {
        let out = run(dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = run(dir, &["flag", "clear", "lockdown"]);
    assert!(
        stderr(&out).contains("runward unlock <code>"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_the_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(tmp.path(), &["--help"]);
    for (name, doc) in [
        (
            "flag",
            "Flags: set, clear and list TTL'd flags such as `restarting`",
        ),
        (
            "lockdown",
            "Turn lockdown on and print its unlock code, shown only once",
        ),
        (
            "unlock",
            "End lockdown with its unlock code, or replace the code with --rotate",
        ),
    ] {
        let listed = help.lines().any(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') && rest.trim_start() == doc)
        });
        assert!(listed, "`{name}  {doc}` in\n{help}");
    }
}
