//! Every example configuration and runbook, broken on purpose (truncated, a key duplicated,
//! a string of 100 000 characters, a wrong type, bytes that are not UTF-8): `runward` never
//! panics or hangs, and refuses what it cannot load with exit 2 and the file and line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The example files of one kind: configurations or runbooks.
fn files(configs: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![examples()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let is_config = path.file_name().is_some_and(|n| n == "runward.toml");
                if is_config == configs {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Broken variants of `text`, each with what was done to it.
fn mutants(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 1..8 {
        let cut = text.len() * i / 8;
        out.push((format!("truncated at byte {cut}"), text[..cut].to_vec()));
    }
    let as_text = String::from_utf8_lossy(text).into_owned();
    let lines: Vec<&str> = as_text.lines().collect();
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ")
        })
        .collect();
    for &i in assignments.iter().step_by(3) {
        let mut dup = lines.clone();
        dup.insert(i + 1, lines[i]);
        out.push((
            format!("line {} duplicated", i + 1),
            dup.join("\n").into_bytes(),
        ));
    }
    let strings: Vec<usize> = assignments
        .iter()
        .copied()
        .filter(|&i| lines[i].contains(" = \"") && lines[i].trim_end().ends_with('"'))
        .collect();
    // Past the 65 535 that a format width allows.
    let huge = "x".repeat(100_000);
    for &i in &strings {
        let key = lines[i].split(" = ").next().unwrap();
        let mut big = lines.clone();
        let line = format!("{key} = \"{huge}\"");
        big[i] = &line;
        out.push((
            format!("line {} made 100 000 characters", i + 1),
            big.join("\n").into_bytes(),
        ));
        let mut typed = lines.clone();
        let line = format!("{key} = 12345");
        typed[i] = &line;
        out.push((
            format!("line {} made an integer", i + 1),
            typed.join("\n").into_bytes(),
        ));
    }
    let mut bad = text.to_vec();
    bad.splice(text.len() / 2..text.len() / 2, [0xff, 0xfe, 0x80]);
    out.push(("invalid UTF-8 in the middle".into(), bad));
    out
}

/// Runs `runward args` and waits at most 20 s; returns the exit code and stderr.
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(dir)
        .env_remove("RUNWARD_CONFIG")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        stderr
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), reader.join().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("runward {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks every mutant of every file: a load that fails exits 2 and names `name:LINE:`.
fn check_all(configs: bool, args: impl Fn(&str) -> Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut refused = 0;
    let mut total = 0;
    for file in files(configs) {
        let name = if configs {
            "runward.toml"
        } else {
            "mutant.toml"
        };
        let original = std::fs::read(&file).unwrap();
        for (what, bytes) in mutants(&original) {
            total += 1;
            std::fs::write(tmp.path().join(name), &bytes).unwrap();
            let args = args(name);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, stderr) = run(tmp.path(), &args);
            let case = format!("{} {what}: exit {code:?}", file.display());
            assert!(!stderr.contains("panicked"), "{case}\n{stderr}");
            if code == Some(0) {
                continue;
            }
            refused += 1;
            assert_eq!(code, Some(2), "{case}\n{stderr}");
            let located = stderr
                .split(&format!("{name}:"))
                .nth(1)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            assert!(located, "{case}: no {name}:LINE in\n{stderr}");
            assert!(stderr.len() < 4096, "{case}: the error is bounded");
        }
    }
    assert!(
        refused * 2 > total,
        "most mutants are refused: {refused} of {total}"
    );
}

#[test]
fn broken_example_configurations_are_refused_with_a_location() {
    check_all(true, |name| {
        vec![
            "--config".into(),
            name.into(),
            "schedule".into(),
            "list".into(),
        ]
    });
}

#[test]
fn broken_example_runbooks_are_refused_with_a_location() {
    check_all(false, |name| {
        vec!["runbook".into(), "plan".into(), name.into()]
    });
}
