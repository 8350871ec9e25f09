//! Schedules: when runbooks are due. Cron expressions and `@every:N`, evaluated in an IANA
//! time zone with defined daylight-saving behaviour, and a [`Scheduler`] that turns due times
//! into queued runs through the store's fire ledger, never dispatching a due time twice.

mod definition;
mod scheduler;
mod spec;

pub use definition::{DEFAULT_CATCH_UP, DEFAULT_SKIP_WINDOW, SCHEDULE_KEYS, Schedule};
pub use scheduler::{
    Dispatched, Lost, MAX_CATCH_UP_RUNS, MAX_DUE_PER_TICK, Recorded, ResolvedRunbook, RunbookFiles,
    RunbookResolver, ScheduleStatus, Scheduler, SyncReport, TickError, TickReport, parse_time,
};
pub use spec::{ScheduleSpec, TimeZoneName};
