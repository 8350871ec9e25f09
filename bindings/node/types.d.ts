// The shapes of the JSON documents runward renders (health+json, doctor, runbook plans, flags,
// runs, schedules) and of what a check may return. Hand-written; the generated `binding.d.ts` imports them.

/** A probe kind. `ready` and `live` are accepted as aliases of `readiness` and `liveness`. */
export type ProbeKindName = 'startup' | 'readiness' | 'liveness'

/** The status of a check or a probe. */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'unknown'

/** Who may see check details over HTTP. */
export type DetailPolicyName = 'loopback' | 'token' | 'public' | 'none'

/** Why a dependency is out. */
export type OutageClass =
  | 'dns_resolution'
  | 'timeout'
  | 'network_unreachable'
  | 'connection_refused'
  | 'tls'
  | 'auth'
  | 'provider_unavailable'
  | 'version_mismatch'
  | 'malformed_payload'
  | 'schema_unavailable'
  | 'misconfigured'

/** The state of a dependency as the application sees it. */
export type DependencyState =
  | 'ready'
  | 'disabled'
  | 'offline'
  | 'schema_unavailable'
  | 'version_mismatch'
  | 'malformed_payload'
  | 'degraded'

/** A result object a check may return (or resolve to). */
export interface CheckResult {
  status: CheckStatus
  /** A short explanation; cut to 512 bytes. */
  output?: string
  /** A measured value, shown as `observedValue`. */
  observed?: unknown
  /** Its unit, e.g. `ms`. */
  unit?: string
  /** The measurement name, the second half of the health+json check key (default `value`). */
  measurement?: string
  outage?: OutageClass
  /** Defaults to the state the outage class implies. */
  state?: DependencyState
  remediation?: string
  /** Shown to authorised callers only. */
  details?: Record<string, unknown>
}

/** The outcome of one run of a check, as the core records it. */
export interface CheckOutcome {
  status: CheckStatus
  observed?: { measurement: string; value: unknown; unit: string | null }
  output?: string
  outage?: OutageClass
  state?: DependencyState
  remediation?: string
  details?: Record<string, unknown>
}

/** One entry of `checks` in health+json. */
export interface HealthJsonCheck {
  componentId: string
  componentType: string
  observedValue?: unknown
  observedUnit?: string
  status: CheckStatus
  time?: string
  output?: string
  affectedEndpoints?: string[]
  outage?: OutageClass
  dependencyState?: DependencyState
  critical?: false
}

/** An `application/health+json` document. Anonymous callers see `status` only. */
export interface HealthJson {
  status: CheckStatus
  version?: string
  releaseId?: string
  serviceId?: string
  description?: string
  output?: string
  notes?: string[]
  /** Keyed `<check>:<measurement>` (and `<value>:value` for pushed values). */
  checks?: Record<string, HealthJsonCheck[]>
}

/** A fixer's description and, with `fix: true`, its result. */
export interface DoctorFix {
  description: string
  applied: boolean
  message?: string
  failed: boolean
}

/** One check in a doctor report. */
export interface DoctorCheck {
  name: string
  status: CheckStatus
  critical: boolean
  probes: ProbeKindName[]
  output?: string
  outage?: OutageClass
  state?: DependencyState
  remediation?: string
  fix?: DoctorFix
}

/** What `doctor()` found. */
export interface DoctorReport {
  status: CheckStatus
  /** The exit code the CLI uses: 0 pass, 1 fail, 3 warn. */
  exit_code: number
  checks: DoctorCheck[]
  warnings: string[]
  values: Record<string, number>
}

/** A runbook step kind. */
export type StepKindName =
  | 'command'
  | 'http'
  | 'gate'
  | 'approval'
  | 'flag'
  | 'drain'
  | 'sleep'
  | 'runbook'
  | 'custom'

/**
 * A step as data for `Runbook.fromObject`, as a `[[steps]]` table of a runbook file: `id`,
 * `kind`, the keys every step takes, and the kind's own keys (`argv`, `url`, `duration`, ...;
 * see `docs/runbooks.md`).
 */
export interface RunbookStepData {
  id: string
  kind: StepKindName
  title?: string
  /** A duration as text: `'500ms'`, `'30s'`, `'1m 30s'`. */
  timeout?: string
  retries?: number
  backoff?: string
  backoff_max?: string
  /** `'abort'`, `'continue'`, `'compensate'` or `'goto:<step id>'`. */
  on_failure?: string
  /** `'rerun'`, `'ask'` or `'probe_first:<health check name>'`. */
  outcome_unknown?: string
  /** The undo of the step: a step without `id`. */
  compensate?: { kind: StepKindName; [key: string]: unknown }
  [key: string]: unknown
}

/** A parameter as data for `Runbook.fromObject`, as a `[params.NAME]` table. */
export interface RunbookParamData {
  /** Default `'string'`. */
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'secret'
  default?: string | number | boolean
  description?: string
  /** For a `secret`: the environment variable that holds it. */
  env?: string
}

/**
 * What `Runbook.fromObject` takes: a runbook file's tables as an object, keys as in TOML.
 * Leave a key out (or make it `undefined`) rather than `null`.
 */
export interface RunbookData {
  runbook: {
    name: string
    description?: string
    requires_flags_absent?: string[]
    requires_flags_present?: string[]
    /** The default `on_failure` of the steps. */
    on_failure?: string
  }
  params?: Record<string, RunbookParamData>
  steps: RunbookStepData[]
  /** The steps a cancellation runs. */
  on_cancel?: RunbookStepData[]
}

/** Retries, deadline and failure handling of a planned step; durations as text (`1m 30s`). */
export interface StepPolicy {
  /** The deadline of one attempt. */
  timeout?: string
  /** Attempts after the first. */
  retries: number
  /** The first backoff, doubled after each failure. */
  backoff: string
  /** The largest backoff. */
  backoff_max: string
  /** What happens after the last failed attempt. */
  on_failure: 'abort' | 'continue' | 'compensate' | { goto: string }
  /** What happens when a crash left the step's outcome unknown. */
  outcome_unknown: 'rerun' | 'ask' | { probe_first: string }
}

/** One step of a plan. */
export interface PlannedStep {
  /** 1-based position. */
  index: number
  id: string
  kind: StepKindName
  title?: string
  /** What the step will do, with parameters resolved. */
  effect: string
  policy: StepPolicy
  /** What its undo would do; absent when it has none. */
  compensation?: string
}

/** Flags that must be absent or present before a run starts. */
export interface FlagRequirements {
  absent: string[]
  present: string[]
}

/** The plan of one run, as `Runbook.plan()` returns it (`runward runbook plan --json`). */
export interface RunbookPlan {
  /** The runbook's name. */
  runbook: string
  /** The definition hash the run will pin. */
  definition_hash: string
  /** Resolved parameters; a secret appears as a reference `[secret $NAME]`, never its value. */
  params: Record<string, unknown>
  requires: FlagRequirements
  steps: PlannedStep[]
  /** The steps a cancellation runs. */
  on_cancel: PlannedStep[]
  /** SHA-256 of everything above; changes with the parameters. */
  digest: string
}

/** A flag, as `Flags` resolves it (`runward flag list --json`); times are RFC 3339 in UTC. */
export interface Flag {
  name: string
  /** Who holds it: a run id or a stable name such as `health-policy`. */
  owner: string
  reason: string | null
  /** When this owner first set it. */
  set_at: string
  /** When it lapses unless renewed. */
  expires_at: string
}

/** An unlock code's record: what it unlocks, its times and generation, never the code. */
export interface UnlockCodeRecord {
  name: string
  created_at: string
  expires_at: string
  /** 1 for the first code, incremented by every rotation. */
  generation: number
  /** Who issued the code, when known. */
  issued_by: string | null
  /** Why the code was issued without the current one (an operator override). */
  override_reason: string | null
}

/** Whether lockdown is on, and its unlock code's record (kept even when expired). */
export interface LockdownStatus {
  flag: Flag | null
  code: UnlockCodeRecord | null
}

/** Where a run is in its lifecycle. */
export type RunStatusName =
  | 'queued'
  | 'running'
  | 'waiting_approval'
  | 'waiting_operator'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'compensating'
  | 'compensated'
  | 'compensation_failed'
  | 'orphaned'

/** Where a step attempt is. */
export type AttemptStatusName =
  | 'intent'
  | 'succeeded'
  | 'failed'
  | 'outcome_unknown'
  | 'skipped'
  | 'compensating'
  | 'compensated'
  | 'compensation_failed'

/** What became of a schedule's due time. */
export type FireStatusName = 'dispatched' | 'skipped' | 'missed'

/** A run, as `Runs.list()` resolves it (`runward runbook list --json`); times are RFC 3339 in UTC. */
export interface Run {
  id: string
  runbook: string
  /** The hash of the runbook definition the run pinned. */
  definition_hash: string
  params: Record<string, unknown>
  status: RunStatusName
  /** Who started it; `schedule:<name>` for a scheduled run. */
  started_by: string | null
  created_at: string
  updated_at: string
  error: string | null
  /** The run that started this one as a sub-runbook. */
  parent: string | null
  /** The schedule due time that created it. */
  fire: { schedule: string; due_at: string } | null
  current_step: number
  lease: { owner: string; epoch: number; expires_at: string } | null
  epoch: number
}

/** One attempt of one step of a run. */
export interface StepAttempt {
  run_id: string
  step_index: number
  step_id: string
  attempt: number
  idempotency_key: string
  status: AttemptStatusName
  started_at: string
  finished_at: string | null
  output: unknown
  error: string | null
}

/** One entry of a run's hash-chained event log. */
export interface RunEvent {
  run_id: string
  seq: number
  at: string
  kind: string
  data: unknown
  prev_hash: string
  hash: string
}

/** A run with its attempts and events, as `Runs.show()` resolves it (`runward runbook show --json`). */
export interface RunDetails {
  run: Run
  attempts: StepAttempt[]
  events: RunEvent[]
}

/** The verdict on a run's event chain; `first_bad` is `null` when every event verifies. */
export interface ChainReport {
  run_id: string
  events: number
  last_good_seq: number | null
  first_bad: {
    seq: number
    fault: 'gap' | 'broken_link' | 'hash_mismatch' | 'truncated' | 'head_mismatch' | 'malformed'
    detail: string
  } | null
}

/** Which of the configuration's schedules a sync wrote. */
export interface SyncReport {
  added: string[]
  updated: string[]
  unchanged: string[]
}

/** One row of the fire ledger: what became of one due time. */
export interface Fire {
  schedule: string
  due_at: string
  status: FireStatusName
  /** The run it created, when dispatched. */
  run_id: string | null
  /** Why it was skipped or missed. */
  reason: string | null
  recorded_at: string
}

/** A stored schedule, as `Scheduler.list()` resolves it (`runward schedule list --json`). */
export interface ScheduleStatus {
  name: string
  /** A cron expression or `@every:N`. */
  spec: string
  /** The IANA time zone the spec is read in. */
  time_zone: string
  /** The runbook file it starts. */
  runbook: string
  params: Record<string, unknown>
  misfire: 'skip' | 'fire_once' | 'fire_all'
  catch_up: { secs: number; nanos: number } | null
  overlap: 'skip' | 'buffer_one' | 'allow'
  enabled: boolean
  created_at: string
  updated_at: string
  /** The first due time after now, if the spec has one. */
  next_due: string | null
  /** The ledger row with the latest due time. */
  last_fire: Fire | null
}

/** What one tick did, as `Scheduler.tick()` resolves it (`runward schedule tick --json`). */
export interface TickReport {
  /** The time the tick evaluated. */
  now: string
  /** How many schedules it looked at. */
  schedules: number
  /** Due times this process claimed, each with its new queued run. */
  claimed: { schedule: string; due_at: string; run_id: string }[]
  /** Due times another process had already written to the ledger. */
  lost: { schedule: string; due_at: string; status: FireStatusName }[]
  /** Due times recorded `skipped`, with the reason. */
  skipped: { schedule: string; due_at: string; reason: string }[]
  /** Due times recorded `missed`, with the reason. */
  missed: { schedule: string; due_at: string; reason: string }[]
  /** Schedules that stopped on an error; the next tick resumes them. */
  errors: { schedule: string; message: string }[]
  /** What the sync before the tick wrote. */
  synced: SyncReport
}

/** Where an approval request is. */
export type ApprovalStatusName = 'pending' | 'approved' | 'denied' | 'timed_out' | 'consumed'

/** One approval or denial of a request. */
export interface ApprovalVote {
  who: string
  at: string
  comment: string | null
}

/** A durable approval request, bound to one step attempt and one plan digest. */
export interface Approval {
  id: string
  run_id: string
  step_index: number
  attempt: number
  /** The digest of the plan that was approved; a changed plan needs a new approval. */
  plan_digest: string
  /** Distinct approvals needed. */
  quorum: number
  /** Who may decide; empty means anyone. */
  approvers: string[]
  /** Whether the run's starter is refused. */
  exclude_starter: boolean
  starter: string | null
  approvals: ApprovalVote[]
  denial: ApprovalVote | null
  status: ApprovalStatusName
  created_at: string
  expires_at: string
  consumed_at: string | null
}

/** Where a call to the engine left a run, and the approval it waits for when `waiting_approval`. */
export interface RunOutcome {
  run: Run
  approval?: Approval
}

/** What `Engine.sweep()` found: runs whose process died, now `orphaned`, and expired approvals, now `timed_out`. */
export interface Sweep {
  orphaned: Run[]
  approvals_timed_out: Approval[]
}
