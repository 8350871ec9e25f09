// The shapes of the JSON documents runward renders (health+json, doctor) and of what a
// check may return. Hand-written; the generated `binding.d.ts` imports them.

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
