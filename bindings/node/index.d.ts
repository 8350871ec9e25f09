// The public types of the `runward` package: the generated `binding.d.ts`, the JSON shapes
// of `types.d.ts`, and the JavaScript layer of `index.js`.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type {
  CheckOptions,
  CustomStepContext,
  EndpointOverrides,
  EngineOptions,
  ProbeContext,
  Runbook,
} from './binding'
import type { CheckResult, RunEvent, RunOutcome } from './types'

export * from './binding'
export * from './types'

/** The `code` of every error runward throws: the core's error kind names. */
export type ErrorCode =
  | 'config'
  | 'not_found'
  | 'invalid_input'
  | 'policy_denied'
  | 'timeout'
  | 'io'
  | 'storage'
  | 'shutdown'
  | 'conflict'
  | 'lease_lost'
  | 'busy'
  | 'internal'

/** Every `ErrorCode`. */
export declare const ERROR_CODES: readonly ErrorCode[]

/**
 * runward's errors. Native errors are `Error`s with `name === 'RunwardError'` and a `code`;
 * `err instanceof RunwardError` holds for them too.
 */
export declare class RunwardError extends Error {
  constructor(message: string, code?: ErrorCode)
  readonly code: ErrorCode
}

/** What a check may return: nothing or `true` passes, `false` fails, or a result object. */
export type CheckReturn = void | undefined | null | boolean | CheckResult

/** A check: sync or async; a throw or rejection fails the check with its message. */
export type Check = (ctx: ProbeContext) => CheckReturn | Promise<CheckReturn>

/**
 * Answers the probe paths and returns `true`; otherwise calls `next()` (or answers 404) and
 * returns `false`.
 */
export type RequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (err?: unknown) => void,
) => boolean

/** What a custom step may return: a `summary` with data beside it, a summary string, or nothing. */
export type CustomStepReturn =
  | void
  | undefined
  | null
  | string
  | number
  | boolean
  | unknown[]
  | { summary?: string; [key: string]: unknown }

/**
 * A custom step for `kind = "custom"` steps: sync or async, called once per attempt with the
 * step's rendered `params` table; a throw or rejection fails the attempt (retries apply).
 */
export type CustomStep = (
  ctx: CustomStepContext,
  params: Record<string, any>,
) => CustomStepReturn | Promise<CustomStepReturn>

/** Options of `Engine.open()`. */
export interface EngineOpenOptions extends EngineOptions {
  /** Custom steps by the `name` runbooks give them. */
  steps?: Record<string, CustomStep>
}

/** Receives each event of a run, in order, as it is appended. A throw is an uncaught exception. */
export type RunEventListener = (event: RunEvent) => void

/** Options of `engine.run()`. */
export interface EngineRunOptions {
  /** Who starts the run, for the evidence and the starter rule of approvals. */
  startedBy?: string
  onEvent?: RunEventListener
}

/** Options of `engine.resume()`. */
export interface EngineResumeOptions {
  /** Resume even though the runbook's definition changed since the run started (recorded). */
  overrideDefinition?: boolean
  /** Who resumes, for the evidence. */
  by?: string
  /** Why, for the evidence. */
  reason?: string
  onEvent?: RunEventListener
}

declare module './binding' {
  namespace Engine {
    /**
     * Opens (creating and migrating it if needed) the state database at `stateDb` and builds
     * an engine. Rejects with `config` for a bad `options.config`, `invalid_input` for bad
     * options.
     */
    function open(stateDb: string, options?: EngineOpenOptions): Promise<Engine>
  }

  interface Engine {
    /**
     * Creates a run and drives it until it finishes or stops at a decision point. Rejects with
     * `invalid_input` for bad parameters and `conflict` for a flag requirement not met;
     * nothing is created then.
     */
    run(
      runbook: Runbook,
      params?: Record<string, unknown> | null,
      options?: EngineRunOptions,
    ): Promise<RunOutcome>
    /**
     * Drives run `runId` from where it stopped. Rejects with `conflict` for a changed
     * definition (unless `overrideDefinition`) or a run another process drives.
     */
    resume(runId: string, runbook: Runbook, options?: EngineResumeOptions): Promise<RunOutcome>
  }

  interface Health {
    /**
     * Adds a check run on the JavaScript thread. Throws with code `invalid_input` once the
     * registry is built (after `start`, `refresh*`, `status`, `serve`, ...).
     */
    addCheck(name: string, check: Check, options?: CheckOptions): this
    /** A request handler for node:http, Express and Fastify (raw request and response). */
    requestHandler(options?: EndpointOverrides): RequestHandler
  }
}
