// The ES module entry of the `runward` package: the CommonJS entry's exports, by name.
import runward from './index.js'

export const {
  Engine,
  ERROR_CODES,
  Flags,
  Health,
  HealthServer,
  probePaths,
  Runbook,
  Runs,
  RunwardError,
  Scheduler,
} = runward
export default runward
