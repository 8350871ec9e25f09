//! The admin API of `runward serve`: start, list, show, approve, deny and cancel runs over
//! JSON, behind a bearer token. Routes live under `/admin/`; without a token they are not
//! mounted at all (404).

use crate::output::errln;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use runward::runbook::Runbook;
use runward::runbook::engine::{Engine, Resume};
use runward::store::{ApprovalStatus, RunFilter, RunId, RunStatus, Timestamp};
use runward::{Error, ErrorKind};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};

/// Drives runs in background tasks, one task per run at a time.
#[derive(Clone)]
pub(crate) struct Drivers {
    engine: Engine,
    driving: Arc<Mutex<HashSet<RunId>>>,
}

impl Drivers {
    pub(crate) fn new(engine: Engine) -> Drivers {
        Drivers {
            engine,
            driving: Arc::default(),
        }
    }

    /// The engine the runs are driven with.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a task of this process drives run `id`.
    pub(crate) fn is_driving(&self, id: &RunId) -> bool {
        self.driving.lock().expect("driving set").contains(id)
    }

    /// Drives run `id` in a background task; false (and nothing starts) when a task of this
    /// process already drives it.
    pub(crate) fn spawn(&self, id: RunId, runbook: Runbook, resume: Resume) -> bool {
        if !self.driving.lock().expect("driving set").insert(id.clone()) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let result = this.engine.resume(&id, &runbook, resume).await;
            this.driving.lock().expect("driving set").remove(&id);
            match result {
                Ok(outcome) => errln!(
                    "runward: run {id} ({}) is {}{}",
                    outcome.run.runbook,
                    outcome.run.status,
                    outcome
                        .run
                        .error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                Err(e) => errln!("runward: run {id}: {e}"),
            }
        });
        true
    }
}

#[derive(Clone)]
struct Admin {
    drivers: Drivers,
    /// The configuration directory, canonical: runbook paths must stay inside it.
    base_dir: PathBuf,
    token: Arc<str>,
}

/// The admin routes, each behind the bearer `token`.
pub(crate) fn router(drivers: Drivers, base_dir: PathBuf, token: String) -> Router {
    let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
    let state = Admin {
        drivers,
        base_dir,
        token: Arc::from(token),
    };
    Router::new()
        .route("/admin/runs", get(list).post(create))
        .route("/admin/runs/{id}", get(show))
        .route("/admin/runs/{id}/approve", post(approve))
        .route("/admin/runs/{id}/deny", post(deny))
        .route("/admin/runs/{id}/cancel", post(cancel))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(admin): State<Admin>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|t| same(t.as_bytes(), admin.token.as_bytes())) {
        return next.run(req).await;
    }
    let mut response = reply(
        StatusCode::UNAUTHORIZED,
        json!({"error": {"kind": "unauthorized", "message": "send the admin token as `Authorization: Bearer <token>`"}}),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn reply(status: StatusCode, value: Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn fail(err: &Error) -> Response {
    let status = match err.kind() {
        ErrorKind::InvalidInput | ErrorKind::Config => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict | ErrorKind::LeaseLost => StatusCode::CONFLICT,
        ErrorKind::PolicyDenied => StatusCode::FORBIDDEN,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(
        status,
        json!({"error": {"kind": err.kind().as_str(), "message": err.message()}}),
    )
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// The request body as a JSON object; an empty body is an empty object.
/// The request body as a JSON object whose keys are all among `fields`; an unknown key is a
/// 400 that names it.
fn body(bytes: &Bytes, fields: &[&str]) -> Result<Map<String, Value>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let map = match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("the request body must be a JSON object")),
        Err(e) => return Err(bad(format!("the request body is not JSON: {e}"))),
    };
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown field `{unknown}` in the request body: expected {}",
            fields.join(", ")
        )));
    }
    Ok(map)
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad(format!("`{key}` must be a string"))),
    }
}

fn who(map: &Map<String, Value>) -> Result<String, Error> {
    text(map, "who")?
        .filter(|w| !w.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad("say who decides: {\"who\": \"alice\"}"))
}

impl Admin {
    /// A runbook path relative to the configuration directory, refused when it leaves it.
    fn resolve(&self, path: &str) -> Result<PathBuf, Error> {
        let relative = std::path::Path::new(path);
        let inside = !path.trim().is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(bad(format!(
                "runbook path `{path}` must be relative to the configuration directory and stay inside it"
            )));
        }
        let joined = self.base_dir.join(relative);
        let canonical = std::fs::canonicalize(&joined).map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("no runbook file `{path}` in the configuration directory: {e}"),
            )
        })?;
        if !canonical.starts_with(&self.base_dir) {
            return Err(bad(format!(
                "runbook path `{path}` leaves the configuration directory"
            )));
        }
        Ok(canonical)
    }

    /// The runbook run `id` started from.
    async fn runbook_of(&self, id: &RunId) -> Result<Runbook, Error> {
        let source = self.drivers.engine.source_of(id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!("the runbook file of run {id} is not recorded: use the CLI with --file"),
            )
        })?;
        Runbook::load(source)
    }
}

/// `POST /admin/runs` {"runbook", "params", "started_by"}: 202 with the run, driven in the
/// background.
async fn create(State(admin): State<Admin>, bytes: Bytes) -> Response {
    let result = async {
        let req = body(&bytes, &["runbook", "params", "started_by"])?;
        let path = text(&req, "runbook")?
            .ok_or_else(|| bad("name the runbook: {\"runbook\": \"runbooks/x.toml\"}"))?;
        let runbook = Runbook::load(admin.resolve(path)?)?;
        let params: BTreeMap<String, Value> = match req.get("params") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map.clone().into_iter().collect(),
            Some(_) => return Err(bad("`params` must be an object of NAME: VALUE")),
        };
        let engine = &admin.drivers.engine;
        let run = engine
            .create(&runbook, &params, text(&req, "started_by")?)
            .await?;
        admin
            .drivers
            .spawn(run.id.clone(), runbook, Resume::default());
        Ok::<_, Error>(run)
    }
    .await;
    match result {
        Ok(run) => reply(StatusCode::ACCEPTED, json!(run)),
        Err(e) => fail(&e),
    }
}

/// `GET /admin/runs?status=failed&since=1d&limit=50&runbook=x`.
async fn list(State(admin): State<Admin>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let result = async {
        let mut filter = RunFilter {
            limit: Some(50),
            ..RunFilter::default()
        };
        for (key, value) in &query {
            match key.as_str() {
                "status" => {
                    for s in value.split(',').filter(|s| !s.is_empty()) {
                        filter.statuses.push(s.parse::<RunStatus>()?);
                    }
                }
                "since" => {
                    filter.updated_after =
                        Some(Timestamp::now() - runward::flags::parse_ttl(value)?);
                }
                "limit" => {
                    filter.limit = Some(value.parse().map_err(|_| {
                        bad(format!("`limit` is `{value}`, not a count"))
                    })?);
                }
                "runbook" => filter.runbook = Some(value.clone()),
                other => {
                    return Err(bad(format!(
                        "unknown query parameter `{other}`; expected status, since, limit or runbook"
                    )));
                }
            }
        }
        admin.drivers.engine.list(&filter).await
    }
    .await;
    match result {
        Ok(runs) => reply(StatusCode::OK, json!(runs)),
        Err(e) => fail(&e),
    }
}

/// `GET /admin/runs/{id}`: the run, its attempts and events, and the approval it waits for.
async fn show(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    let id = RunId::from(id.as_str());
    let engine = &admin.drivers.engine;
    let details = match engine.store().run_details(&id).await {
        Ok(details) => details,
        Err(e) => return fail(&e),
    };
    let mut value = json!(details);
    if details.run.status == RunStatus::WaitingApproval {
        if let Ok(approval) = engine.pending_approval(&id).await {
            value["approval"] = json!(approval);
        }
    }
    value["driving"] = json!(admin.drivers.is_driving(&id));
    reply(StatusCode::OK, value)
}

/// `POST /admin/runs/{id}/approve` {"who", "comment"}: once approved, the run resumes in the
/// background.
async fn approve(State(admin): State<Admin>, Path(id): Path<String>, bytes: Bytes) -> Response {
    decide(admin, id, bytes, true).await
}

/// `POST /admin/runs/{id}/deny` {"who", "comment"}: the run resumes so the step fails.
async fn deny(State(admin): State<Admin>, Path(id): Path<String>, bytes: Bytes) -> Response {
    decide(admin, id, bytes, false).await
}

async fn decide(admin: Admin, id: String, bytes: Bytes, yes: bool) -> Response {
    let id = RunId::from(id.as_str());
    let result = async {
        let req = body(&bytes, &["who", "comment"])?;
        let who = who(&req)?;
        let comment = text(&req, "comment")?;
        let runbook = admin.runbook_of(&id).await?;
        let engine = &admin.drivers.engine;
        let approval = if yes {
            engine.approve(&id, &who, comment).await?
        } else {
            engine.deny(&id, &who, comment).await?
        };
        let resuming = matches!(
            approval.status,
            ApprovalStatus::Approved | ApprovalStatus::Denied
        ) && admin.drivers.spawn(
            id.clone(),
            runbook,
            Resume {
                by: Some(who),
                reason: Some(format!("approval {}", approval.status)),
                ..Resume::default()
            },
        );
        Ok::<_, Error>(json!({"approval": approval, "resuming": resuming}))
    }
    .await;
    match result {
        Ok(value) => reply(StatusCode::OK, value),
        Err(e) => fail(&e),
    }
}

/// `POST /admin/runs/{id}/cancel` {"who", "reason"}: the run as it is after the request (a
/// waiting run is cancelled at once; a running one by its driver within a second or so).
async fn cancel(State(admin): State<Admin>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let id = RunId::from(id.as_str());
    let result = async {
        let req = body(&bytes, &["who", "reason"])?;
        let who = who(&req)?;
        let runbook = admin.runbook_of(&id).await?;
        admin
            .drivers
            .engine
            .cancel(&id, &runbook, &who, text(&req, "reason")?)
            .await
    }
    .await;
    match result {
        Ok(outcome) => reply(StatusCode::OK, json!(outcome)),
        Err(e) => fail(&e),
    }
}
