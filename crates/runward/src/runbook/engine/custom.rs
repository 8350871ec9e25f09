//! Custom steps: effects the host application implements (in Rust, or in Python and JS
//! through the bindings) and registers by name for `kind = "custom"` steps.

use super::super::exec::{StepContext, StepError, StepOutput};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// One step effect, run once per attempt.
///
/// Contract: the engine has written the attempt's intent before calling [`Step::run`] and
/// writes the result after it returns. `ctx.idempotency_key` is the same for every execution
/// of the attempt (a rerun after a crash included): pass it to the target so it can refuse a
/// duplicate. Stop at `ctx.deadline` and return [`StepError::Cancelled`] once `ctx.cancel`
/// fires. Return [`StepError::Failed`] for a failed effect (retries apply) and
/// [`StepError::Prepare`] when nothing ran and a retry cannot help.
///
/// Backup, restore and rotation steps implement this same trait.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    /// Runs the effect with the step's `params` (the `params` table of the step, templates
    /// rendered).
    async fn run(&self, ctx: &StepContext, params: &Value) -> Result<StepOutput, StepError>;
}

/// A [`Step`] from an async closure.
pub fn step_fn<F, Fut>(f: F) -> Arc<dyn Step>
where
    F: Fn(StepContext, Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<StepOutput, StepError>> + Send + 'static,
{
    struct FnStep<F>(F);
    #[async_trait]
    impl<F, Fut> Step for FnStep<F>
    where
        F: Fn(StepContext, Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<StepOutput, StepError>> + Send + 'static,
    {
        async fn run(&self, ctx: &StepContext, params: &Value) -> Result<StepOutput, StepError> {
            (self.0)(ctx.clone(), params.clone()).await
        }
    }
    Arc::new(FnStep(f))
}

/// Registered custom steps, by name.
#[derive(Clone, Default)]
pub struct CustomSteps {
    steps: BTreeMap<String, Arc<dyn Step>>,
}

impl fmt::Debug for CustomSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.steps.keys()).finish()
    }
}

impl CustomSteps {
    /// Registers `step` under `name`, replacing any step of that name.
    pub fn insert(&mut self, name: impl Into<String>, step: Arc<dyn Step>) {
        self.steps.insert(name.into(), step);
    }

    /// The step registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Step>> {
        self.steps.get(name)
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.steps.keys().map(String::as_str)
    }
}
