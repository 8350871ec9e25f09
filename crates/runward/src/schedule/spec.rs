//! [`ScheduleSpec`]: parse a schedule and compute its due times.
//!
//! Daylight-saving behaviour, for cron expressions in a zone with DST:
//! - a local time skipped by the spring-forward change is due at the first instant after
//!   the change (a 02:30 job on a day without 02:30 runs at 03:00);
//! - a local time that occurs twice in the fall-back change is due once, at its first
//!   occurrence.
//!
//! `@every:N` schedules are due at whole multiples of N seconds since the Unix epoch, in UTC:
//! every process computes the same due times, which is what the fire ledger keys on.

use crate::{Error, Result};
use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

/// An IANA time zone name such as `Europe/Berlin` or `UTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    /// UTC.
    pub const UTC: TimeZoneName = TimeZoneName(Tz::UTC);

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for TimeZoneName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        s.parse::<Tz>().map(TimeZoneName).map_err(|_| {
            Error::invalid(format!(
                "unknown time zone `{s}`: use an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`"
            ))
        })
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Every(u64),
    Cron(Box<croner::Cron>),
}

/// A parsed schedule: a cron expression (5 fields, or 6 with seconds first) or `@every:N`
/// (N seconds; `@every:5m`, `@every:2h` also accepted), in a time zone.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    text: String,
    zone: TimeZoneName,
    kind: Kind,
}

impl ScheduleSpec {
    /// Parses `text` in `zone`. Errors say what is wrong and show a valid example.
    pub fn parse(text: &str, zone: TimeZoneName) -> Result<Self> {
        let trimmed = text.trim();
        let kind = if let Some(rest) = trimmed.strip_prefix("@every") {
            let rest = rest.trim_start_matches([':', ' ']);
            Kind::Every(parse_every(rest).ok_or_else(|| {
                Error::invalid(format!(
                    "`{text}` is not a valid interval: write `@every:60` (seconds), `@every:5m` or `@every:2h`"
                ))
            })?)
        } else {
            let cron = croner::Cron::from_str(trimmed).map_err(|e| {
                Error::invalid(format!(
                    "`{text}` is not a valid cron expression ({e}): write five fields, e.g. `30 2 * * *` for 02:30 daily"
                ))
            })?;
            Kind::Cron(Box::new(cron))
        };
        Ok(ScheduleSpec {
            text: trimmed.to_owned(),
            zone,
            kind,
        })
    }

    /// The schedule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The time zone it is evaluated in.
    pub fn zone(&self) -> TimeZoneName {
        self.zone
    }

    /// The first due time strictly after `after`, or `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every(secs) => {
                let secs = *secs as i64;
                let t = after.timestamp();
                let next = (t.div_euclid(secs) + 1) * secs;
                Utc.timestamp_opt(next, 0).single()
            }
            Kind::Cron(cron) => {
                // Cron names whole seconds: search from the whole second at or before `after`,
                // so the fraction of the moment the search starts never leaks into a due time.
                let tz = self.zone.0;
                let local = after.trunc_subsecs(0).with_timezone(&tz);
                let mut next = cron.find_next_occurrence(&local, false).ok()?;
                // A wall-clock time repeated by the fall-back change is due once.
                while next.naive_local() == local.naive_local() || is_second_pass(&next) {
                    next = cron.find_next_occurrence(&next, false).ok()?;
                }
                Some(next.trunc_subsecs(0).with_timezone(&Utc))
            }
        }
    }

    /// Due times in `(after, until]`, at most `limit` of them.
    pub fn due_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < limit {
            match self.next_after(t) {
                Some(next) if next <= until => {
                    out.push(next);
                    t = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// Whether `t` is the second occurrence of a wall-clock time repeated by a fall-back change.
fn is_second_pass(t: &DateTime<Tz>) -> bool {
    let naive = t.naive_local();
    match t.timezone().from_local_datetime(&naive) {
        chrono::LocalResult::Ambiguous(first, _) => first != *t,
        _ => false,
    }
}

fn parse_every(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(factor)?;
    (secs > 0).then_some(secs)
}

impl fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_is_aligned_to_the_epoch() {
        let spec = ScheduleSpec::parse("@every:60", TimeZoneName::UTC).unwrap();
        assert_eq!(
            spec.next_after(utc("2026-11-23T10:00:30Z")),
            Some(utc("2026-11-23T10:01:00Z"))
        );
        assert_eq!(
            spec.next_after(utc("2026-11-23T10:01:00Z")),
            Some(utc("2026-11-23T10:02:00Z"))
        );
        let five = ScheduleSpec::parse("@every:5m", TimeZoneName::UTC).unwrap();
        assert_eq!(
            five.next_after(utc("2026-11-23T10:01:00Z")),
            Some(utc("2026-11-23T10:05:00Z"))
        );
        assert_eq!(
            five.due_between(
                utc("2026-11-23T10:00:00Z"),
                utc("2026-11-23T10:20:00Z"),
                100
            )
            .len(),
            4
        );
    }

    #[test]
    fn cron_in_a_time_zone() {
        let berlin: TimeZoneName = "Europe/Berlin".parse().unwrap();
        let spec = ScheduleSpec::parse("30 2 * * *", berlin).unwrap();
        // 02:30 in Berlin (UTC+1 in November) is 01:30 UTC.
        assert_eq!(
            spec.next_after(utc("2026-11-23T00:00:00Z")),
            Some(utc("2026-11-23T01:30:00Z"))
        );
    }

    #[test]
    fn spring_forward_gap_runs_after_the_change() {
        let ny: TimeZoneName = "America/New_York".parse().unwrap();
        let spec = ScheduleSpec::parse("30 2 * * *", ny).unwrap();
        // 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
        let next = spec.next_after(utc("2026-03-08T05:00:00Z")).unwrap();
        assert!(
            next >= utc("2026-03-08T07:00:00Z") && next <= utc("2026-03-08T07:30:00Z"),
            "{next}"
        );
        // The next day is normal again: 02:30 EDT = 06:30 UTC.
        assert_eq!(spec.next_after(next), Some(utc("2026-03-09T06:30:00Z")));
    }

    #[test]
    fn fall_back_repeat_runs_once() {
        let ny: TimeZoneName = "America/New_York".parse().unwrap();
        let spec = ScheduleSpec::parse("30 1 * * *", ny).unwrap();
        // 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        let due = spec.due_between(utc("2026-11-01T00:00:00Z"), utc("2026-11-02T12:00:00Z"), 10);
        assert_eq!(
            due,
            vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
        );
        let hourly = ScheduleSpec::parse("0 * * * *", ny).unwrap();
        let hours =
            hourly.due_between(utc("2026-11-01T04:30:00Z"), utc("2026-11-01T07:30:00Z"), 10);
        // 01:00 EDT (05:00Z), 01:00 EST would repeat (06:00Z) and is skipped, 02:00 EST (07:00Z).
        assert_eq!(
            hours,
            vec![utc("2026-11-01T05:00:00Z"), utc("2026-11-01T07:00:00Z")]
        );
    }

    #[test]
    fn bad_input_says_what_to_write() {
        let err = ScheduleSpec::parse("@every:soon", TimeZoneName::UTC).unwrap_err();
        assert!(err.to_string().contains("@every:60"), "{err}");
        let err = ScheduleSpec::parse("61 * * * *", TimeZoneName::UTC).unwrap_err();
        assert!(
            err.to_string().contains("not a valid cron expression"),
            "{err}"
        );
        let err = "Mars/Olympus".parse::<TimeZoneName>().unwrap_err();
        assert!(err.to_string().contains("IANA"), "{err}");
    }
}
