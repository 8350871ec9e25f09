//! Runbook definitions and plans: parsing, validation errors with file:line and key, and the
//! rendered plan of a seed runbook.

use runward::runbook::{OnFailure, OutcomeUnknownPolicy, Runbook, StepKind, plan};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

fn seed() -> Runbook {
    Runbook::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/runbooks/controlled-restart.toml"),
    )
    .unwrap()
}

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[test]
fn the_seed_restart_runbook_parses() {
    let rb = seed();
    assert_eq!(rb.name, "controlled-restart");
    assert_eq!(rb.steps.len(), 5);
    assert_eq!(rb.requires.absent, vec!["lockdown"]);
    assert_eq!(rb.on_failure, OnFailure::Compensate);
    let restart = rb.step("restart").unwrap();
    assert_eq!(restart.policy.retries, 1);
    assert_eq!(
        restart.policy.outcome_unknown,
        OutcomeUnknownPolicy::ProbeFirst("api".into())
    );
    assert!(matches!(rb.step("drain").unwrap().kind, StepKind::Drain(_)));
    // Idempotent kinds rerun after a crash by default; effects ask an operator.
    assert_eq!(
        rb.step("validate-ready").unwrap().policy.outcome_unknown,
        OutcomeUnknownPolicy::Rerun
    );
}

#[test]
fn plan_resolves_parameters_and_executes_nothing() {
    let rb = seed();
    let p = plan(
        &rb,
        &params(&[("service_url", json!("http://127.0.0.1:9000"))]),
    )
    .unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"definition [0-9a-f]{12}", "definition [HASH]");
    settings.add_filter(r"digest: [0-9a-f]{64}", "digest: [DIGEST]");
    settings.bind(|| insta::assert_snapshot!("controlled_restart_plan", p.to_text()));
    assert!(
        p.steps[1]
            .effect
            .contains("http://127.0.0.1:9000/internal/inflight")
    );
    assert_eq!(
        p.steps[0].compensation.as_deref(),
        Some("clear flag `restarting`")
    );
    assert!(
        p.steps[1].effect.contains("up to 1m 30s"),
        "{}",
        p.steps[1].effect
    );
    // The digest covers the parameters.
    let other = plan(
        &rb,
        &params(&[("service_url", json!("http://127.0.0.1:9001"))]),
    )
    .unwrap();
    assert_ne!(p.digest, other.digest);
    assert_eq!(p.definition_hash, other.definition_hash);
}

#[test]
fn parameters_are_typed() {
    let rb = Runbook::parse(
        "[runbook]\nname = \"t\"\n[params.workers]\ntype = \"integer\"\ndefault = 4\n[params.dry]\ntype = \"boolean\"\n\
         [[steps]]\nid = \"s\"\nkind = \"command\"\nargv = [\"scale\", \"{{ params.workers }}\", \"{{ params.dry }}\"]\n",
        None,
    )
    .unwrap();
    let p = plan(
        &rb,
        &params(&[("workers", json!("8")), ("dry", json!("yes"))]),
    )
    .unwrap();
    assert_eq!(p.params["workers"], json!(8));
    assert_eq!(p.params["dry"], json!(true));
    assert!(
        p.steps[0].effect.starts_with("run `scale 8 true`"),
        "{}",
        p.steps[0].effect
    );
    let err = plan(&rb, &params(&[("dry", json!(false))]))
        .map(|p| p.params["workers"].clone())
        .unwrap();
    assert_eq!(err, json!(4), "defaults apply");
    let err = plan(&rb, &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("missing parameter `dry`"), "{err}");
    let err = plan(
        &rb,
        &params(&[("dry", json!(true)), ("workers", json!("soon"))]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be an integer"), "{err}");
    let err = plan(&rb, &params(&[("nope", json!("x"))])).unwrap_err();
    assert!(err.to_string().contains("no parameter `nope`"), "{err}");
    assert!(err.to_string().contains("workers"), "{err}");
}

#[test]
fn secrets_appear_as_references_only() {
    let text = r#"
[runbook]
name = "rotate"
[params.token]
type = "secret"
env = "RUNBOOK_TEST_TOKEN_XYZ"
[[steps]]
id = "call"
kind = "http"
url = "https://api.example.com/rotate"
headers = { Authorization = "Bearer {{ params.token }}" }
"#;
    let rb = Runbook::parse(text, None).unwrap();
    let p = plan(&rb, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.params["token"],
        json!("[secret $RUNBOOK_TEST_TOKEN_XYZ, not set]")
    );
    let with_default = text.replace("env = \"RUNBOOK_TEST_TOKEN_XYZ\"", "default = \"hunter2\"");
    let err = Runbook::parse(&with_default, Some(Path::new("rotate.toml"))).unwrap_err();
    assert!(err.to_string().starts_with("rotate.toml:6:"), "{err}");
}

#[test]
fn editing_a_runbook_changes_its_hash() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/runbooks/controlled-restart.toml"),
    )
    .unwrap();
    let a = Runbook::parse(&text, None).unwrap();
    let b = Runbook::parse(&format!("# a comment only\n{text}"), None).unwrap();
    assert_eq!(
        a.definition_hash(),
        b.definition_hash(),
        "comments do not change the definition"
    );
    let c = Runbook::parse(
        &text.replace("min_successes = 3", "min_successes = 2"),
        None,
    )
    .unwrap();
    assert_ne!(a.definition_hash(), c.definition_hash());
}

fn parse_err(text: &str) -> String {
    Runbook::parse(text, Some(Path::new("rb.toml")))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_input_names_file_line_and_key() {
    let head = "[runbook]\nname = \"x\"\n\n";
    // Unknown step kind: lists the known ones.
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"teleport\"\n"
    ));
    assert!(err.starts_with("rb.toml:6:"), "{err}");
    assert!(err.contains("expected one of command, http, gate"), "{err}");
    // Template referring to a missing parameter.
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"command\"\nargv = [\"echo\", \"{{{{ params.who }}}}\"]\n"
    ));
    assert!(err.starts_with("rb.toml:7:"), "{err}");
    assert!(
        err.contains("{{ params.who }}") && err.contains("not defined"),
        "{err}"
    );
    // Wrong type for a step parameter.
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = 5\n"
    ));
    assert!(err.starts_with("rb.toml:7:"), "{err}");
    assert!(err.contains("`duration`"), "{err}");
    // Malformed TOML.
    let err = parse_err("[runbook\nname = 1\n");
    assert!(err.starts_with("rb.toml:1:"), "{err}");
    // Unknown jump target, duplicate ids, no steps.
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\non_failure = \"goto:z\"\n"
    ));
    assert!(err.contains("no step has that id"), "{err}");
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\n[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\n"
    ));
    assert!(err.contains("two steps have the id `a`"), "{err}");
    assert!(parse_err(head).contains("has no steps"));
    // A command needs exactly one of argv or shell.
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"command\"\n"
    ));
    assert!(err.contains("exactly one of them"), "{err}");
    // Names follow one rule, checked with their line: runbook, step id, flag.
    let err = parse_err(
        "[runbook]\nname = \"two words\"\n[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1s\"\n",
    );
    assert!(
        err.starts_with("rb.toml:2:") && err.contains("contains a space"),
        "{err}"
    );
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"{}\"\nkind = \"sleep\"\nduration = \"1s\"\n",
        "s".repeat(129)
    ));
    assert!(
        err.contains("`id`: step id `ssss") && err.contains("129 characters"),
        "{err}"
    );
    let err = parse_err(&format!(
        "{head}[[steps]]\nid = \"a\"\nkind = \"flag\"\naction = \"set\"\nflag = \"re/start\"\n"
    ));
    assert!(
        err.contains("`flag`: flag name `re/start` contains `/`"),
        "{err}"
    );
    // A templated flag name is checked when the run renders it.
    let ok = format!(
        "{head}[params.n]\ntype = \"string\"\ndefault = \"x\"\n[[steps]]\nid = \"a\"\nkind = \"flag\"\naction = \"set\"\nflag = \"f-{{{{ params.n }}}}\"\n"
    );
    runward::runbook::Runbook::parse(&ok, None).unwrap();
}
