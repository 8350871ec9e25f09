// The shapes of the JSON documents runward renders (health+json, doctor, runbook plans, flags)
// and of what a check may return. Hand-written; the generated `binding.d.ts` imports them.

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
}

/** Whether lockdown is on, and its unlock code's record (kept even when expired). */
export interface LockdownStatus {
  flag: Flag | null
  code: UnlockCodeRecord | null
}
