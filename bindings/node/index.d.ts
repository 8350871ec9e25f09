// The public types of the `runward` package: the generated `binding.d.ts`, the JSON shapes
// of `types.d.ts`, and the JavaScript layer of `index.js`.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { CheckOptions, EndpointOverrides, ProbeContext } from './binding'
import type { CheckResult } from './types'

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

declare module './binding' {
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
