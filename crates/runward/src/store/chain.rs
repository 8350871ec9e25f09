//! The event hash chain: canonical JSON, the hash of one event, and chain verification.
//!
//! Every backend computes hashes with these functions, so a log written by one verifies
//! in another and with any tool that rebuilds the canonical form.

use super::{ChainBreak, ChainFault, ChainReport, RunId, Timestamp};
use ring::digest;
use serde_json::Value;

/// The `prev_hash` of the first event of a run.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace,
/// numbers and strings as serde_json prints them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hash of one event: SHA-256 (hex) of the canonical JSON object
/// `{"at": <unix ms>, "data": .., "kind": .., "prev_hash": .., "run": .., "seq": ..}`.
pub fn event_hash(
    run: &RunId,
    seq: u64,
    at: Timestamp,
    kind: &str,
    data: &Value,
    prev_hash: &str,
) -> String {
    let body = serde_json::json!({
        "run": run.as_str(),
        "seq": seq,
        "at": at.as_millis(),
        "kind": kind,
        "data": data,
        "prev_hash": prev_hash,
    });
    sha256_hex(canonical_json(&body).as_bytes())
}

/// One stored event as a backend reads it back, before interpretation.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// The stored sequence number.
    pub seq: u64,
    /// The stored time.
    pub at: Timestamp,
    /// The stored kind.
    pub kind: String,
    /// The stored data text.
    pub data: String,
    /// The stored previous hash.
    pub prev_hash: String,
    /// The stored hash.
    pub hash: String,
}

/// Verifies `events` (in stored order) against each other and the run's recorded head.
pub fn verify_chain(
    run: &RunId,
    events: &[RawEvent],
    head_seq: u64,
    head_hash: &str,
) -> ChainReport {
    let mut prev = GENESIS_HASH.to_owned();
    let mut last_good = None;
    let fail = |seq, fault, detail: String, last_good| ChainReport {
        run_id: run.clone(),
        events: events.len() as u64,
        last_good_seq: last_good,
        first_bad: Some(ChainBreak { seq, fault, detail }),
    };
    for (i, event) in events.iter().enumerate() {
        let expected = i as u64 + 1;
        if event.seq != expected {
            return fail(
                expected,
                ChainFault::Gap,
                format!("expected event {expected}, found event {}", event.seq),
                last_good,
            );
        }
        if event.prev_hash != prev {
            return fail(
                event.seq,
                ChainFault::BrokenLink,
                format!(
                    "prev_hash is {}, the previous event's hash is {prev}",
                    event.prev_hash
                ),
                last_good,
            );
        }
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    event.seq,
                    ChainFault::Malformed,
                    format!("data is not JSON: {e}"),
                    last_good,
                );
            }
        };
        let computed = event_hash(
            run,
            event.seq,
            event.at,
            &event.kind,
            &data,
            &event.prev_hash,
        );
        if computed != event.hash {
            return fail(
                event.seq,
                ChainFault::HashMismatch,
                format!(
                    "stored hash {} does not match the content's hash {computed}",
                    event.hash
                ),
                last_good,
            );
        }
        prev = event.hash.clone();
        last_good = Some(event.seq);
    }
    let found = events.len() as u64;
    if head_seq > found {
        return fail(
            found + 1,
            ChainFault::Truncated,
            format!("the run records {head_seq} events, only {found} remain"),
            last_good,
        );
    }
    if head_seq == found && head_hash != prev {
        return fail(
            found,
            ChainFault::HeadMismatch,
            format!("the run records head hash {head_hash}, the last event's hash is {prev}"),
            last_good,
        );
    }
    if head_seq < found {
        return fail(
            head_seq + 1,
            ChainFault::Gap,
            format!("the run records {head_seq} events, {found} are stored"),
            Some(head_seq).filter(|&s| s > 0),
        );
    }
    ChainReport {
        run_id: run.clone(),
        events: found,
        last_good_seq: last_good,
        first_bad: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = json!({"b": 1, "a": {"d": [true, null, 1.5], "c": "x\"y"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x\"y","d":[true,null,1.5]},"b":1}"#
        );
    }

    #[test]
    fn event_hash_matches_a_hand_built_canonical_form() {
        let run = RunId::from("r1");
        let at = Timestamp::from_millis(1000);
        let data = json!({"z": 1, "a": "b"});
        let canonical = format!(
            r#"{{"at":1000,"data":{{"a":"b","z":1}},"kind":"k","prev_hash":"{GENESIS_HASH}","run":"r1","seq":1}}"#
        );
        assert_eq!(
            event_hash(&run, 1, at, "k", &data, GENESIS_HASH),
            sha256_hex(canonical.as_bytes())
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn chain(n: u64) -> Vec<RawEvent> {
        let run = RunId::from("r");
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let at = Timestamp::from_millis(seq as i64);
                let data = json!({"n": seq});
                let hash = event_hash(&run, seq, at, "k", &data, &prev);
                let e = RawEvent {
                    seq,
                    at,
                    kind: "k".into(),
                    data: data.to_string(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn verify_reports_the_first_bad_event() {
        let run = RunId::from("r");
        let events = chain(4);
        let head = events[3].hash.clone();
        assert!(verify_chain(&run, &events, 4, &head).is_intact());

        let mut edited = events.clone();
        edited[2].data = r#"{"n":99}"#.into();
        let report = verify_chain(&run, &edited, 4, &head);
        assert_eq!(report.last_good_seq, Some(2));
        let bad = report.first_bad.unwrap();
        assert_eq!((bad.seq, bad.fault), (3, ChainFault::HashMismatch));

        let mut deleted = events.clone();
        deleted.remove(1);
        let bad = verify_chain(&run, &deleted, 4, &head).first_bad.unwrap();
        assert_eq!((bad.seq, bad.fault), (2, ChainFault::Gap));

        let truncated = &events[..3];
        let bad = verify_chain(&run, truncated, 4, &head).first_bad.unwrap();
        assert_eq!((bad.seq, bad.fault), (4, ChainFault::Truncated));

        let bad = verify_chain(&run, &events, 4, GENESIS_HASH)
            .first_bad
            .unwrap();
        assert_eq!(bad.fault, ChainFault::HeadMismatch);
    }
}
