// Runbook.fromObject: a runbook built from an object shaped like a runbook file, with every
// check of the parser, and run by the engine like a parsed one.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runward, tempDir } from './helpers.mjs'

const { Engine, Runbook, Runs, RunwardError } = runward

const SEED = fileURLToPath(new URL('../../../examples/runbooks/controlled-restart.toml', import.meta.url))
const URL_9000 = { service_url: 'http://127.0.0.1:9000' }

/** examples/runbooks/controlled-restart.toml as an object. */
function seedObject() {
  return {
    runbook: {
      name: 'controlled-restart',
      description: 'Drain in-flight tasks, restart the service, validate readiness',
      requires_flags_absent: ['lockdown'],
      on_failure: 'compensate',
    },
    params: {
      service_url: { type: 'string', default: 'http://127.0.0.1:8000', description: 'Base URL of the service' },
      restart_command: {
        type: 'string',
        default: 'systemctl restart jarvis',
        description: 'The command that restarts the service',
      },
    },
    steps: [
      {
        id: 'set-restarting',
        title: 'Announce the restart',
        kind: 'flag',
        action: 'set',
        flag: 'restarting',
        ttl: '10m',
        reason: 'controlled restart',
      },
      {
        id: 'drain',
        title: 'Drain in-flight tasks',
        kind: 'drain',
        url: '{{ params.service_url }}/internal/inflight',
        pointer: '/inflight',
        until: 0,
        interval: '1s',
        timeout: '90s',
        on_failure: 'continue',
      },
      {
        id: 'restart',
        title: 'Restart the service',
        kind: 'command',
        shell: '{{ params.restart_command }}',
        timeout: '30s',
        retries: 1,
        backoff: '2s',
        outcome_unknown: 'probe_first:api',
      },
      { id: 'clear-restarting', kind: 'flag', action: 'clear', flag: 'restarting' },
      {
        id: 'validate-ready',
        title: 'Validate /readyz',
        kind: 'gate',
        http: '{{ params.service_url }}/readyz',
        interval: '1s',
        timeout: '60s',
        min_successes: 3,
      },
    ],
  }
}

/** An assert.throws matcher for a runward error. */
function runwardError(code, message) {
  return (err) => {
    assert.ok(err instanceof RunwardError, `not a RunwardError: ${err}`)
    assert.equal(err.name, 'RunwardError')
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  }
}

test('fromObject builds the runbook the file describes, with its definition hash', () => {
  const file = Runbook.load(SEED)
  const rb = Runbook.fromObject(seedObject())
  assert.ok(rb instanceof Runbook)
  assert.equal(rb.name, 'controlled-restart')
  assert.deepEqual(rb.stepIds, file.stepIds)
  assert.equal(rb.path, null)
  assert.equal(rb.definitionHash, file.definitionHash)
  assert.deepEqual(rb.plan(URL_9000), file.plan(URL_9000))
  assert.equal(rb.planText(), file.planText())

  // Key order does not matter; `undefined` counts as left out.
  const { runbook, params, steps } = seedObject()
  const reordered = { steps, params, runbook: { ...runbook, description: undefined } }
  delete runbook.description
  assert.equal(Runbook.fromObject(reordered).definitionHash, Runbook.fromObject({ runbook, params, steps }).definitionHash)
  assert.notEqual(Runbook.fromObject(reordered).definitionHash, file.definitionHash, 'the description is part of it')

  const edited = seedObject()
  edited.steps[4].min_successes = 2
  assert.notEqual(Runbook.fromObject(edited).definitionHash, file.definitionHash)
})

test('an unknown step kind throws code config naming it', () => {
  const data = { runbook: { name: 'x' }, steps: [{ id: 'a', kind: 'teleport' }] }
  assert.throws(() => Runbook.fromObject(data), runwardError('config', /unknown step kind.*teleport|teleport.*unknown step kind/))
  const onCancel = { runbook: { name: 'x' }, steps: [{ id: 'a', kind: 'sleep', duration: '1ms' }], on_cancel: [{ id: 'b', kind: 'warp' }] }
  assert.throws(() => Runbook.fromObject(onCancel), runwardError('config', /warp/))
})

test('a null value throws code config naming the key', () => {
  assert.throws(
    () => Runbook.fromObject({ runbook: { name: 'x', description: null }, steps: [{ id: 'a', kind: 'sleep', duration: '1ms' }] }),
    runwardError('config', /`runbook\.description` is null/),
  )
  const data = seedObject()
  data.steps[2].title = null
  assert.throws(() => Runbook.fromObject(data), runwardError('config', /`steps\[2\]\.title` is null/))
  const params = seedObject()
  params.params.service_url.default = null
  assert.throws(() => Runbook.fromObject(params), runwardError('config', /`params\.service_url\.default` is null/))
})

test("the parser's checks apply and name the key", () => {
  const step = { id: 'a', kind: 'sleep', duration: '1ms' }
  assert.throws(() => Runbook.fromObject({ runbook: { name: 'x' } }), runwardError('config', /has no steps/))
  assert.throws(() => Runbook.fromObject({ runbook: { name: 'x' }, steps: [step, step] }), runwardError('config', /`a`/))
  assert.throws(
    () => Runbook.fromObject({ runbook: { name: 'x' }, steps: [{ id: 'a', kind: 'command', argv: ['echo', '{{ params.who }}'] }] }),
    runwardError('config', /\{\{ params\.who \}\}.*not defined/),
  )
  assert.throws(
    () => Runbook.fromObject({ runbook: { name: 'x' }, steps: [{ ...step, on_failure: 'explode' }] }),
    runwardError('config', /on_failure/),
  )
  assert.throws(() => Runbook.fromObject({ runbook: { name: 'x', colour: 'red' }, steps: [step] }), runwardError('config', /colour/))
})

test('data that is not a runbook object throws with a code', () => {
  for (const data of [undefined, null, [], 'name = "x"', 42]) {
    assert.throws(() => Runbook.fromObject(data), runwardError('config', /a runbook is a table/), String(data))
  }
  const step = { id: 'a', kind: 'sleep', duration: '1ms' }
  assert.throws(
    () => Runbook.fromObject({ runbook: { name: 'x' }, steps: [{ ...step, title: () => 'no' }] }),
    runwardError('invalid_input', /JSON values/),
  )
  assert.throws(
    () => Runbook.fromObject({ runbook: { name: 'x' }, steps: [step, undefined] }),
    runwardError('invalid_input', /JSON values/),
  )
})

test('a runbook built from an object runs to success with Engine', async () => {
  const dir = tempDir()
  const db = join(dir, 'state.db')
  const engine = await Engine.open(db)
  const rb = Runbook.fromObject({
    runbook: { name: 'built', description: 'made in JavaScript' },
    params: { who: { default: 'ops' }, times: { type: 'integer', default: 1 } },
    steps: [
      { id: 'greet', kind: 'command', argv: ['echo', 'hello {{ params.who }} x{{ params.times }}'] },
      { id: 'nap', kind: 'sleep', duration: '10ms', compensate: { kind: 'sleep', duration: '1ms' } },
    ],
  })
  const events = []
  const outcome = await engine.run(rb, { who: 'alice', times: '2' }, { startedBy: 'node', onEvent: (e) => events.push(e.kind) })
  assert.equal(outcome.run.status, 'succeeded', outcome.run.error ?? '')
  assert.equal(outcome.run.runbook, 'built')
  assert.equal(outcome.run.definition_hash, rb.definitionHash)
  assert.deepEqual(outcome.run.params, { times: 2, who: 'alice' })
  assert.ok(events.length > 0)
  const details = await (await Runs.open(db)).show(outcome.run.id)
  assert.deepEqual(details.attempts.map((a) => [a.step_id, a.status]), [['greet', 'succeeded'], ['nap', 'succeeded']])
  assert.equal(details.attempts[0].output.stdout.bytes.trim(), 'hello alice x2')
  assert.equal(await engine.sourceOf(outcome.run.id), null, 'a runbook from an object has no file')
})
