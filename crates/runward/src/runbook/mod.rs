//! Runbooks: operations written as data (TOML) or built in code, planned without side
//! effects, and (with the engine) run durably.
//!
//! ```toml
//! [runbook]
//! name = "controlled-restart"
//! requires_flags_absent = ["lockdown"]
//!
//! [params.service_url]
//! type = "string"
//! default = "http://127.0.0.1:8000"
//!
//! [[steps]]
//! id = "wait-ready"
//! kind = "gate"
//! http = "{{ params.service_url }}/readyz"
//! interval = "1s"
//! timeout = "60s"
//! min_successes = 3
//! ```

mod builder;
mod definition;
pub mod engine;
mod evidence;
pub mod exec;
mod plan;
mod steps;
mod template;

pub use builder::RunbookBuilder;
pub use definition::{
    FlagRequirements, OnFailure, OutcomeUnknownPolicy, ParamSpec, ParamType, Runbook, StepDef,
    StepPolicy,
};
pub use evidence::Evidence;
pub use plan::{Plan, PlannedStep, plan};
pub use steps::{
    ApprovalStep, CommandStep, CustomStep, DrainSource, DrainStep, FlagAction, FlagStep, GateStep,
    GateTarget, HttpStep, STEP_KINDS, SleepStep, StepKind, SubRunbookStep,
};
pub use template::Vars;
