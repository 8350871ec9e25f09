//! Schedules: when runbooks are due. Cron expressions and `@every:N`, evaluated in an IANA
//! time zone with defined daylight-saving behaviour.

mod spec;

pub use spec::{ScheduleSpec, TimeZoneName};
