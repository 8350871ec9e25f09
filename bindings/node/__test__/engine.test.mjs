// The durable run engine over a temporary state database: runs, retries, compensation,
// approvals, cancel, custom steps written in JavaScript, pinned definitions, crash recovery
// in a killed child process, and evidence without secrets.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { runward, sleep, tempDir } from './helpers.mjs'

const { Engine, Runbook, Runs, RunwardError } = runward

const HERE = dirname(fileURLToPath(import.meta.url))

/** An engine over a fresh state database; resolves to `{ engine, db, dir }`. */
async function openEngine(options) {
  const dir = tempDir()
  const db = join(dir, 'state.db')
  const engine = await Engine.open(db, options)
  return { engine, db, dir }
}

/** The run with its attempts and events, as `runward runbook show --json` reads it. */
async function show(db, runId) {
  return (await Runs.open(db)).show(runId)
}

/** The lines of a file, or none when it does not exist. */
function lines(path) {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0)
  } catch {
    return []
  }
}

/** An assert.rejects matcher for a runward error. */
function runwardError(code, message) {
  return (err) => {
    assert.ok(err instanceof RunwardError, `not a RunwardError: ${err}`)
    assert.equal(err.name, 'RunwardError')
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  }
}

test('a run succeeds and onEvent gets every event in order before the promise resolves', async () => {
  const { engine, db } = await openEngine()
  const rb = Runbook.parse(`
[runbook]
name = "hello"
[[steps]]
id = "greet"
kind = "command"
shell = "echo hello $RUNWARD_IDEMPOTENCY_KEY"
[[steps]]
id = "nap"
kind = "sleep"
duration = "300ms"
`)
  const events = []
  let ticks = 0
  const timer = setInterval(() => ticks++, 20)
  const outcome = await engine.run(rb, null, { startedBy: 'alice', onEvent: (e) => events.push(e) })
  clearInterval(timer)
  assert.ok(ticks >= 5, `the event loop ran while the run went (${ticks} ticks)`)

  assert.equal(outcome.run.status, 'succeeded')
  assert.equal(outcome.run.started_by, 'alice')
  assert.equal(outcome.approval, undefined)
  const details = await show(db, outcome.run.id)
  assert.deepEqual(
    events.map((e) => [e.seq, e.kind]),
    details.events.map((e) => [e.seq, e.kind]),
    'every stored event, once, in order',
  )
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1))
  assert.equal(events[0].kind, 'run_started')
  assert.equal(events.at(-1).kind, 'run_succeeded')
  for (const e of events) {
    assert.equal(e.run_id, outcome.run.id)
    assert.equal(typeof e.at, 'string')
    assert.equal(typeof e.data, 'object')
  }
  const greet = details.attempts[0]
  assert.equal(greet.output.stdout.bytes.trim(), `hello ${greet.idempotency_key}`)
  assert.equal((await (await Runs.open(db)).verify(outcome.run.id)).first_bad, null)
  assert.equal(await engine.sourceOf(outcome.run.id), null, 'parsed runbooks have no file')
})

test('resume delivers only the events appended during the call', async () => {
  const { engine } = await openEngine()
  const rb = Runbook.parse(`
[runbook]
name = "queued"
[[steps]]
id = "a"
kind = "sleep"
duration = "1ms"
`)
  const run = await engine.create(rb, {}, { startedBy: 'ops' })
  assert.equal(run.status, 'queued')
  const events = []
  const outcome = await engine.resume(run.id, rb, { onEvent: (e) => events.push(e.kind) })
  assert.equal(outcome.run.status, 'succeeded')
  assert.equal(events[0], 'run_started')
  assert.equal(events.at(-1), 'run_succeeded')
  const again = []
  const closed = await engine.resume(run.id, rb, { onEvent: (e) => again.push(e) })
  assert.equal(closed.run.status, 'succeeded')
  assert.deepEqual(again, [], 'a closed run appends nothing')
})

test('a failing step is retried with a new key per attempt, then succeeds', async () => {
  const { engine, db, dir } = await openEngine()
  const log = join(dir, 'keys')
  const rb = Runbook.parse(`
[runbook]
name = "flaky"
[[steps]]
id = "flaky"
kind = "command"
shell = "echo $RUNWARD_IDEMPOTENCY_KEY >> ${log}; test $(wc -l < ${log}) -ge 3"
retries = 3
backoff = "20ms"
`)
  const kinds = []
  const outcome = await engine.run(rb, null, { onEvent: (e) => kinds.push(e.kind) })
  assert.equal(outcome.run.status, 'succeeded')
  const { attempts } = await show(db, outcome.run.id)
  assert.deepEqual(attempts.map((a) => a.status), ['failed', 'failed', 'succeeded'])
  assert.equal(new Set(lines(log)).size, 3, 'each attempt has its own key')
  assert.equal(kinds.filter((k) => k === 'step_retry_scheduled').length, 2)
})

test('a failure compensates the completed steps in reverse', async () => {
  const { engine, db, dir } = await openEngine()
  const log = join(dir, 'log')
  const rb = Runbook.parse(`
[runbook]
name = "undo"
on_failure = "compensate"
[[steps]]
id = "one"
kind = "command"
shell = "echo do-one >> ${log}"
compensate = { kind = "command", shell = "echo undo-one >> ${log}" }
[[steps]]
id = "two"
kind = "command"
shell = "echo do-two >> ${log}"
compensate = { kind = "command", shell = "echo undo-two >> ${log}" }
[[steps]]
id = "boom"
kind = "command"
argv = ["false"]
`)
  const outcome = await engine.run(rb)
  assert.equal(outcome.run.status, 'compensated')
  assert.deepEqual(lines(log), ['do-one', 'do-two', 'undo-two', 'undo-one'])
  const { attempts } = await show(db, outcome.run.id)
  assert.deepEqual(attempts.slice(0, 2).map((a) => a.status), ['compensated', 'compensated'])
})

/** A runbook whose first step waits for bob or carol, never the starter. */
function approvalRunbook(dir) {
  return Runbook.parse(`
[runbook]
name = "approve"
[[steps]]
id = "ok"
kind = "approval"
approvers = ["alice", "bob", "carol"]
forbid_starter = true
message = "restart?"
[[steps]]
id = "after"
kind = "command"
shell = "echo after >> ${join(dir, 'after')}"
`)
}

test('an approval waits; a wrong approver is refused with policy_denied and changes nothing', async () => {
  const { engine, db, dir } = await openEngine()
  const rb = approvalRunbook(dir)
  const waiting = await engine.run(rb, null, { startedBy: 'alice' })
  assert.equal(waiting.run.status, 'waiting_approval')
  assert.equal(waiting.approval.status, 'pending')
  assert.deepEqual(waiting.approval.approvers, ['alice', 'bob', 'carol'])
  const id = waiting.run.id

  await assert.rejects(engine.approve(id, 'mallory'), runwardError('policy_denied', /mallory/))
  await assert.rejects(engine.approve(id, 'alice'), runwardError('policy_denied', /.+/))
  const pending = await engine.pendingApproval(id)
  assert.equal(pending.id, waiting.approval.id)
  assert.deepEqual(pending.approvals, [], 'refusals change nothing')
  assert.equal((await show(db, id)).run.status, 'waiting_approval')
  assert.deepEqual(lines(join(dir, 'after')), [])

  const approved = await engine.approve(id, 'bob', 'looks fine')
  assert.equal(approved.status, 'approved')
  assert.equal(approved.approvals[0].who, 'bob')
  assert.equal(approved.approvals[0].comment, 'looks fine')
  const done = await engine.resume(id, rb, { by: 'bob' })
  assert.equal(done.run.status, 'succeeded')
  assert.deepEqual(lines(join(dir, 'after')), ['after'])
  const kinds = (await show(db, id)).events.map((e) => e.kind)
  for (const kind of ['approval_requested', 'approval_given', 'approval_used']) {
    assert.ok(kinds.includes(kind), `${kind} missing: ${kinds}`)
  }
})

test('a denied approval fails the step on resume', async () => {
  const { engine, dir } = await openEngine()
  const rb = approvalRunbook(dir)
  const waiting = await engine.run(rb, null, { startedBy: 'alice' })
  const denied = await engine.deny(waiting.run.id, 'bob', 'not now')
  assert.equal(denied.status, 'denied')
  assert.equal(denied.denial.who, 'bob')
  const failed = await engine.resume(waiting.run.id, rb)
  assert.equal(failed.run.status, 'failed')
  assert.match(failed.run.error, /denied by bob: not now/)
  assert.deepEqual(lines(join(dir, 'after')), [])
  await assert.rejects(engine.approve(waiting.run.id, 'carol'), runwardError('conflict', /no open approval/))
})

test('cancel stops a running step and runs the cancel path; a waiting run is cancelled at once', async () => {
  const { engine, db, dir } = await openEngine()
  const log = join(dir, 'cancel')
  const rb = Runbook.parse(`
[runbook]
name = "long"
[[steps]]
id = "wait"
kind = "sleep"
duration = "30s"
[[on_cancel]]
id = "cleanup"
kind = "command"
shell = "echo cleaned >> ${log}"
`)
  let runId
  const started = new Promise((resolve) => {
    engine
      .run(rb, null, {
        onEvent: (e) => {
          runId = e.run_id
          if (e.kind === 'step_started') resolve()
        },
      })
      .then((outcome) => (running.outcome = outcome))
  })
  const running = {}
  await started
  const requested = await engine.cancel(runId, rb, 'bob', 'wrong window')
  assert.equal(requested.run.status, 'running', 'the driver acts on the request')
  const t0 = Date.now()
  while (!running.outcome && Date.now() - t0 < 10_000) await sleep(20)
  assert.ok(running.outcome, 'the run stopped')
  assert.equal(running.outcome.run.status, 'cancelled')
  assert.deepEqual(lines(log), ['cleaned'])
  const request = (await show(db, runId)).events.find((e) => e.kind === 'cancel_requested')
  assert.deepEqual([request.data.who, request.data.reason], ['bob', 'wrong window'])
  await assert.rejects(engine.cancel(runId, rb, 'bob'), runwardError('conflict', /already `cancelled`/))

  const approval = approvalRunbook(dir)
  const waiting = await engine.run(approval, null, { startedBy: 'zed' })
  const cancelled = await engine.cancel(waiting.run.id, approval, 'bob')
  assert.equal(cancelled.run.status, 'cancelled')
})

const CUSTOM = `
[runbook]
name = "custom"
[params.target]
default = "db-1"
[[steps]]
id = "snap"
kind = "custom"
name = "snapshot"
params = { target = "{{ params.target }}", keep = 3 }
[[steps]]
id = "check"
kind = "custom"
name = "verify"
params = { target = "{{ params.target }}" }
`

test('custom steps are sync and async JavaScript functions with params and idempotency keys', async () => {
  const calls = []
  const { engine, db } = await openEngine({
    owner: 'tests',
    steps: {
      snapshot: (ctx, params) => {
        calls.push({ ctx, params })
        return { summary: `snapshot of ${params.target}`, keep: params.keep, key: ctx.idempotencyKey }
      },
      verify: async (ctx, params) => {
        calls.push({ ctx, params })
        await sleep(20)
        return `verified ${params.target}`
      },
    },
  })
  assert.equal(engine.owner, 'tests')
  assert.equal(engine.path, db)
  const outcome = await engine.run(Runbook.parse(CUSTOM), { target: 'db-2' })
  assert.equal(outcome.run.status, 'succeeded', outcome.run.error)
  assert.equal(calls.length, 2)
  const { attempts } = await show(db, outcome.run.id)
  const [snap, check] = calls
  assert.deepEqual(snap.params, { target: 'db-2', keep: 3 })
  assert.deepEqual(snap.ctx, {
    runId: outcome.run.id,
    stepId: 'snap',
    attempt: 1,
    idempotencyKey: attempts[0].idempotency_key,
  })
  assert.equal(check.ctx.stepId, 'check')
  assert.equal(attempts[0].output.summary, 'snapshot of db-2')
  assert.deepEqual(attempts[0].output.data, { keep: 3, key: attempts[0].idempotency_key })
  assert.equal(attempts[1].output.summary, 'verified db-2')
  assert.equal(attempts[1].output.data, null)
})

test('a throwing or rejecting custom step fails its attempts with the message; retries apply', async () => {
  let calls = 0
  const { engine, db } = await openEngine({
    steps: {
      snapshot: () => {
        calls++
        throw new Error('disk full')
      },
      verify: async () => {
        throw new Error('never reached')
      },
    },
  })
  const rb = Runbook.parse(CUSTOM.replace('params = { target = "{{ params.target }}", keep = 3 }', 'retries = 1\nbackoff = "10ms"'))
  const failed = await engine.run(rb)
  assert.equal(failed.run.status, 'failed')
  assert.match(failed.run.error, /disk full/)
  assert.equal(calls, 2, 'one retry')
  const { attempts } = await show(db, failed.run.id)
  assert.deepEqual(attempts.map((a) => [a.step_id, a.status, a.error]), [
    ['snap', 'failed', 'disk full'],
    ['snap', 'failed', 'disk full'],
  ])

  const { engine: other } = await openEngine({ steps: { snapshot: () => 'ok', verify: () => Promise.reject(new Error('checksum mismatch')) } })
  const rejected = await other.run(Runbook.parse(CUSTOM))
  assert.equal(rejected.run.status, 'failed')
  assert.match(rejected.run.error, /checksum mismatch/)

  const { engine: bare } = await openEngine({ steps: { snapshot: () => 'ok' } })
  const missing = await bare.run(Runbook.parse(CUSTOM))
  assert.equal(missing.run.status, 'failed')
  assert.match(missing.run.error, /no custom step `verify`.*snapshot/)
})

test('resuming with a changed definition is refused with conflict, then allowed by override', async () => {
  const { engine, db } = await openEngine()
  const text = (cmd) => `[runbook]\nname = "pin"\n[[steps]]\nid = "a"\nkind = "command"\nargv = ["${cmd}"]\n`
  const old = Runbook.parse(text('false'))
  const failed = await engine.run(old)
  assert.equal(failed.run.status, 'failed')
  const changed = Runbook.parse(text('true'))
  await assert.rejects(engine.resume(failed.run.id, changed), runwardError('conflict', /changed since/))
  assert.equal((await show(db, failed.run.id)).run.status, 'failed', 'a refused resume changes nothing')
  const done = await engine.resume(failed.run.id, changed, {
    overrideDefinition: true,
    by: 'ops',
    reason: 'fixed the command',
  })
  assert.equal(done.run.status, 'succeeded')
  const resumed = (await show(db, failed.run.id)).events.find((e) => e.kind === 'run_resumed')
  assert.equal(resumed.data.definition_overridden, changed.definitionHash)
})

test('retry and skip continue a failed run', async () => {
  const { engine, db, dir } = await openEngine()
  const gate = join(dir, 'ready')
  const rb = Runbook.parse(`
[runbook]
name = "operator"
[[steps]]
id = "needs-file"
kind = "command"
argv = ["test", "-e", "${gate}"]
[[steps]]
id = "always-fails"
kind = "command"
argv = ["false"]
`)
  const failed = await engine.run(rb)
  assert.equal(failed.run.status, 'failed')
  writeFileSync(gate, '')
  const again = await engine.retry(failed.run.id, rb, 'bob', 'created the file')
  assert.equal(again.run.status, 'failed')
  assert.match(again.run.error, /always-fails/)
  await assert.rejects(engine.skip(failed.run.id, rb, 'bob', ' '), runwardError('invalid_input', /reason/))
  const done = await engine.skip(failed.run.id, rb, 'bob', 'done by hand')
  assert.equal(done.run.status, 'succeeded')
  const { attempts } = await show(db, failed.run.id)
  assert.equal(attempts.at(-1).status, 'skipped')
})

test('a flag requirement or bad arguments reject with their code and create nothing', async () => {
  const { engine, db } = await openEngine()
  const flags = await runward.Flags.open(db)
  await flags.set('maintenance', { owner: 'admin', ttlMs: 60_000, reason: 'incident' })
  const guarded = Runbook.parse(`
[runbook]
name = "guarded"
requires_flags_absent = ["maintenance"]
[[steps]]
id = "a"
kind = "sleep"
duration = "1ms"
`)
  await assert.rejects(engine.run(guarded), runwardError('conflict', /incident/))
  await assert.rejects(engine.run({ name: 'fake' }), runwardError('invalid_input', /expected a Runbook/))
  await assert.rejects(engine.run(guarded, { nope: 1 }), runwardError('invalid_input', /nope/))
  await assert.rejects(engine.run(guarded, null, { startedby: 'x' }), runwardError('invalid_input', /startedby/))
  await assert.rejects(engine.run(guarded, null, { onEvent: 'loud' }), runwardError('invalid_input', /onEvent/))
  await assert.rejects(engine.resume('no-such-run', guarded), runwardError('not_found', /no-such-run/))
  await assert.rejects(Engine.open(db, { leaseTTL: 5 }), runwardError('invalid_input', /leaseTTL/))
  await assert.rejects(Engine.open(db, { leaseTtlMs: 0 }), runwardError('invalid_input', /between 100ms and 1day/))
  const config = join(dirname(db), 'bad-lease.toml')
  writeFileSync(config, '[engine]\nlease_ttl = "0s"\n')
  await assert.rejects(Engine.open(db, { config }), runwardError('config', /bad-lease\.toml:2:.*`lease_ttl`/))
  await assert.rejects(Engine.open(db, { steps: { x: 42 } }), runwardError('invalid_input', /custom step `x`/))
  assert.deepEqual(await (await Runs.open(db)).list(), [])
})

test('with a configuration, gates read its health checks', async () => {
  const dir = tempDir()
  const config = join(dir, 'runward.toml')
  writeFileSync(config, `[[checks]]\nname = "data-dir"\nkind = "path"\npath = "."\nprobes = ["readiness"]\n`)
  const rb = Runbook.parse(`
[runbook]
name = "gated"
[[steps]]
id = "ready"
kind = "gate"
check = "data-dir"
interval = "10ms"
timeout = "5s"
min_successes = 1
`)
  const engine = await Engine.open(join(dir, 'state.db'), { config })
  const outcome = await engine.run(rb)
  assert.equal(outcome.run.status, 'succeeded', outcome.run.error)
  const bare = await Engine.open(join(dir, 'state.db'))
  const failed = await bare.run(rb)
  assert.equal(failed.run.status, 'failed')
  await assert.rejects(Engine.open(join(dir, 'state.db'), { config: join(dir, 'missing.toml') }), runwardError('not_found', /missing\.toml/))
})

test('a run whose process was killed mid-step is orphaned by sweep and resumed to completion', async () => {
  const dir = tempDir()
  const db = join(dir, 'state.db')
  const path = join(dir, 'crash.toml')
  writeFileSync(
    path,
    `[runbook]
name = "crash"
[[steps]]
id = "before"
kind = "command"
shell = "echo before >> ${join(dir, 'log')}"
[[steps]]
id = "nap"
kind = "sleep"
duration = "2s"
outcome_unknown = "rerun"
[[steps]]
id = "after"
kind = "command"
shell = "echo after >> ${join(dir, 'log')}"
`,
  )
  const child = spawn(process.execPath, [join(HERE, 'engine-child.mjs'), db, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal)))
  let runId
  for await (const line of createInterface({ input: child.stdout })) {
    const event = JSON.parse(line)
    assert.equal(event.done, undefined, 'the child finished before it was killed')
    runId = event.run_id
    if (event.kind === 'step_started' && event.data.step === 'nap') break
  }
  child.kill('SIGKILL')
  assert.equal(await exited, 'SIGKILL')

  const engine = await Engine.open(db, { owner: 'rescuer', leaseTtlMs: 300 })
  const rb = Runbook.load(path)
  await assert.rejects(engine.resume(runId, rb), runwardError('conflict', /lease/), 'the dead lease still holds')
  await sleep(400)
  const sweep = await engine.sweep()
  assert.deepEqual(sweep.orphaned.map((r) => r.id), [runId])
  assert.equal(sweep.orphaned[0].status, 'orphaned')
  assert.equal(await engine.sourceOf(runId), path)

  const events = []
  const done = await engine.resume(runId, rb, { by: 'rescuer', onEvent: (e) => events.push(e.kind) })
  assert.equal(done.run.status, 'succeeded')
  assert.deepEqual(lines(join(dir, 'log')), ['before', 'after'], 'completed steps are not repeated')
  assert.ok(events.includes('run_resumed'), events.join(','))
  const { attempts } = await show(db, runId)
  assert.deepEqual(
    attempts.map((a) => [a.step_id, a.status]),
    [
      ['before', 'succeeded'],
      ['nap', 'succeeded'],
      ['after', 'succeeded'],
    ],
  )
})

test('secret values never reach the evidence', async () => {
  const secret = 'tok-2718281828-secret'
  process.env.RUNWARD_NODE_ENGINE_TOKEN = secret
  const seen = []
  const { engine, db } = await openEngine({
    steps: {
      leak: (ctx, params) => {
        seen.push(params.token)
        return { summary: `token=${params.token}`, echoed: params.token, nested: [{ t: params.token }] }
      },
      fail: (ctx, params) => {
        throw new Error(`refused ${params.token}`)
      },
    },
  })
  const rb = Runbook.parse(`
[runbook]
name = "secret"
[params.token]
type = "secret"
env = "RUNWARD_NODE_ENGINE_TOKEN"
[[steps]]
id = "echo"
kind = "command"
shell = "echo token=$RUNWARD_NODE_ENGINE_TOKEN; echo $RUNWARD_NODE_ENGINE_TOKEN | base64"
[[steps]]
id = "js"
kind = "custom"
name = "leak"
params = { token = "{{ params.token }}" }
[[steps]]
id = "throws"
kind = "custom"
name = "fail"
params = { token = "{{ params.token }}" }
`)
  const events = []
  const outcome = await engine.run(rb, {}, { onEvent: (e) => events.push(e) })
  assert.equal(outcome.run.status, 'failed')
  assert.deepEqual(seen, [secret], 'the custom step received the secret value')
  const runs = await Runs.open(db)
  const evidence = [
    JSON.stringify(outcome),
    JSON.stringify(events),
    JSON.stringify(await runs.show(outcome.run.id)),
    await runs.export(outcome.run.id, 'markdown'),
    await runs.export(outcome.run.id, 'json'),
  ]
  for (const text of evidence) {
    assert.ok(!text.includes(secret), text)
    assert.ok(!text.includes(Buffer.from(`${secret}\n`).toString('base64').slice(0, 20)), text)
  }
  assert.match(evidence[2], /RUNWARD_NODE_ENGINE_TOKEN/, 'the reference is kept')
  assert.match(evidence[2], /\[REDACTED\]/)
  assert.match(outcome.run.error, /refused \[REDACTED\]/)
})
