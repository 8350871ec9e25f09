// Drives one run in its own process, for the crash recovery test of engine.test.mjs: opens an
// engine with a 300 ms lease over the state database `argv[2]`, starts the runbook file
// `argv[3]`, and prints every event of the run as one JSON line. The test kills it mid-run.

import { runward } from './helpers.mjs'

const { Engine, Runbook } = runward

const [, , stateDb, runbookPath] = process.argv
const engine = await Engine.open(stateDb, { owner: 'child', leaseTtlMs: 300 })
const outcome = await engine.run(Runbook.load(runbookPath), null, {
  startedBy: 'child',
  onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
})
process.stdout.write(`${JSON.stringify({ done: outcome.run.status })}\n`)
