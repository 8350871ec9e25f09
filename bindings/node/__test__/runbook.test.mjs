// Runbook: loading, parsing and planning, as `runward runbook plan` does it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runward, tempDir } from './helpers.mjs'

const { Runbook, RunwardError } = runward

const SEED = fileURLToPath(new URL('../../../examples/runbooks/controlled-restart.toml', import.meta.url))
const URL_9000 = { service_url: 'http://127.0.0.1:9000' }

const TYPED = `[runbook]
name = "scale"

[params.workers]
type = "integer"
default = 4

[params.dry]
type = "boolean"

[[steps]]
id = "scale"
kind = "command"
argv = ["scale", "{{ params.workers }}", "{{ params.dry }}"]
`

const SECRET = `[runbook]
name = "rotate"

[params.token]
type = "secret"
env = "RUNWARD_NODE_TEST_TOKEN"

[[steps]]
id = "call"
kind = "http"
url = "https://api.example.com/rotate"
headers = { Authorization = "Bearer {{ params.token }}" }
`

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

const HEX64 = /^[0-9a-f]{64}$/

test('load reads the seed runbook', () => {
  const rb = Runbook.load(SEED)
  assert.equal(rb.name, 'controlled-restart')
  assert.deepEqual(rb.stepIds, ['set-restarting', 'drain', 'restart', 'clear-restarting', 'validate-ready'])
  assert.equal(rb.path, SEED)
  assert.match(rb.definitionHash, HEX64)
  assert.throws(() => new Runbook(), /constructor/, 'only load() and parse() make a Runbook')
})

test('parse takes text and an optional path; comments leave the definition hash alone', () => {
  const seed = Runbook.load(SEED)
  const text = readFileSync(SEED, 'utf8')
  const rb = Runbook.parse(text)
  assert.equal(rb.path, null)
  assert.equal(rb.definitionHash, seed.definitionHash)
  const commented = Runbook.parse(`# a comment only\n${text}`, 'restart.toml')
  assert.equal(commented.path, 'restart.toml')
  assert.equal(commented.definitionHash, seed.definitionHash)
  const edited = Runbook.parse(text.replace('min_successes = 3', 'min_successes = 2'))
  assert.notEqual(edited.definitionHash, seed.definitionHash)
})

test('plan resolves parameters and executes nothing', () => {
  const rb = Runbook.load(SEED)
  const plan = rb.plan(URL_9000)
  assert.deepEqual(Object.keys(plan).sort(), [
    'definition_hash',
    'digest',
    'on_cancel',
    'params',
    'requires',
    'runbook',
    'steps',
  ])
  assert.equal(plan.runbook, 'controlled-restart')
  assert.equal(plan.definition_hash, rb.definitionHash)
  assert.deepEqual(plan.params, { restart_command: 'systemctl restart jarvis', service_url: 'http://127.0.0.1:9000' })
  assert.deepEqual(plan.requires, { absent: ['lockdown'], present: [] })
  assert.deepEqual(plan.on_cancel, [])
  assert.equal(plan.steps.length, 5)
  assert.deepEqual(plan.steps.map((s) => s.index), [1, 2, 3, 4, 5])
  assert.deepEqual(plan.steps.map((s) => s.id), rb.stepIds)
  assert.deepEqual(plan.steps.map((s) => s.kind), ['flag', 'drain', 'command', 'flag', 'gate'])
  const gate = plan.steps[4]
  assert.match(gate.effect, /^wait until http:\/\/127\.0\.0\.1:9000\/readyz answers 2xx 3 times in a row/)
  assert.match(plan.steps[1].effect, /http:\/\/127\.0\.0\.1:9000\/internal\/inflight/)
  assert.equal(plan.steps[0].compensation, 'clear flag `restarting`')
  assert.equal(plan.steps[0].title, 'Announce the restart')
  assert.ok(!('compensation' in plan.steps[3]))
  const restart = plan.steps[2].policy
  assert.equal(restart.retries, 1)
  assert.equal(restart.timeout, '30s')
  assert.equal(restart.backoff, '2s')
  assert.deepEqual(restart.outcome_unknown, { probe_first: 'api' })
  assert.equal(plan.steps[1].policy.on_failure, 'continue')
  assert.match(plan.digest, HEX64)
})

test('defaults apply without parameters; undefined values count as not given', () => {
  const rb = Runbook.load(SEED)
  for (const params of [undefined, null, {}, { service_url: undefined }]) {
    assert.equal(rb.plan(params).params.service_url, 'http://127.0.0.1:8000')
  }
  assert.deepEqual(rb.plan(), rb.plan({}))
})

test('the digest changes with the parameters, the definition hash does not', () => {
  const rb = Runbook.load(SEED)
  const a = rb.plan(URL_9000)
  const b = rb.plan({ service_url: 'http://127.0.0.1:9001' })
  assert.notEqual(a.digest, b.digest)
  assert.equal(a.definition_hash, b.definition_hash)
  assert.equal(rb.plan(URL_9000).digest, a.digest, 'a plan is deterministic')
})

test('planText is the CLI rendering', () => {
  const rb = Runbook.load(SEED)
  const text = rb.planText(URL_9000)
  assert.ok(text.startsWith(`plan for runbook \`controlled-restart\` (definition ${rb.definitionHash.slice(0, 12)})\n`), text)
  assert.ok(text.includes('     undo: clear flag `restarting`\n'), text)
  assert.ok(text.includes('requires flags absent: lockdown\n'), text)
  assert.ok(text.includes('  5. validate-ready [gate] wait until http://127.0.0.1:9000/readyz answers 2xx'), text)
  assert.ok(text.endsWith(`digest: ${rb.plan(URL_9000).digest}\n`), text)
})

test('typed parameters are converted from strings', () => {
  const rb = Runbook.parse(TYPED)
  const plan = rb.plan({ workers: '8', dry: 'yes' })
  assert.deepEqual(plan.params, { dry: true, workers: 8 })
  assert.ok(plan.steps[0].effect.startsWith('run `scale 8 true`'), plan.steps[0].effect)
  const native = rb.plan({ workers: 8, dry: true })
  assert.equal(native.digest, plan.digest, '`--param` strings and JavaScript values plan alike')
  assert.equal(rb.plan({ dry: false }).params.workers, 4, 'defaults apply')
})

test('an unknown, missing or mistyped parameter throws code invalid_input', () => {
  const rb = Runbook.parse(TYPED)
  assert.throws(() => rb.plan({ dry: true, nope: 'x' }), runwardError('invalid_input', /has no parameter `nope`; declared: .*workers/))
  assert.throws(() => rb.plan(), runwardError('invalid_input', /missing parameter `dry`/))
  assert.throws(() => rb.plan({ dry: true, workers: 'soon' }), runwardError('invalid_input', /`workers` must be an integer/))
  assert.throws(() => rb.plan({ dry: true, workers: 8.5 }), runwardError('invalid_input', /`workers` must be an integer/))
  assert.throws(() => rb.planText({ dry: 'maybe' }), runwardError('invalid_input', /`dry` must be true or false/))
  assert.throws(() => rb.plan(['dry=true']), runwardError('invalid_input', /must be an object/))
  assert.throws(() => rb.planText('dry=true'), runwardError('invalid_input', /must be an object/))
})

test('a malformed runbook throws code config naming file and line', () => {
  const text = '[runbook]\nname = "x"\n\n[[steps]]\nid = "a"\nkind = "teleport"\n'
  assert.throws(() => Runbook.parse(text, 'rb.toml'), runwardError('config', /^rb\.toml:6:\d+: .*unknown step kind/))
  const file = join(tempDir(), 'broken.toml')
  writeFileSync(file, '[runbook\nname = 1\n')
  assert.throws(() => Runbook.load(file), runwardError('config', new RegExp(`^${file}:1:`)))
  assert.throws(() => Runbook.parse('[runbook]\nname = "x"\n'), runwardError('config', /has no steps/))
  assert.throws(
    () => Runbook.parse('[runbook]\nname = "x"\n[[steps]]\nid = "a"\nkind = "command"\nargv = ["echo", "{{ params.who }}"]\n'),
    runwardError('config', /\{\{ params\.who \}\}.*not defined/),
  )
})

test('a missing file throws code not_found', () => {
  assert.throws(() => Runbook.load(join(tempDir(), 'nope.toml')), runwardError('not_found', /cannot read runbook/))
})

test('a secret parameter appears only as a reference', () => {
  const rb = Runbook.parse(SECRET)
  delete process.env.RUNWARD_NODE_TEST_TOKEN
  assert.equal(rb.plan().params.token, '[secret $RUNWARD_NODE_TEST_TOKEN, not set]')
  process.env.RUNWARD_NODE_TEST_TOKEN = 'hunter2'
  try {
    const plan = rb.plan()
    assert.equal(plan.params.token, '[secret $RUNWARD_NODE_TEST_TOKEN]')
    const text = rb.planText()
    assert.ok(text.includes('token = [secret $RUNWARD_NODE_TEST_TOKEN]'), text)
    assert.ok(!JSON.stringify(plan).includes('hunter2'))
    assert.ok(!text.includes('hunter2'))
  } finally {
    delete process.env.RUNWARD_NODE_TEST_TOKEN
  }
  assert.equal(rb.plan({ token: 'OTHER_NODE_TEST_TOKEN' }).params.token, '[secret $OTHER_NODE_TEST_TOKEN, not set]')
  assert.throws(() => rb.plan({ token: 42 }), runwardError('invalid_input', /name of an environment variable/))
})

test('a secret with a default value is a config error', () => {
  const text = SECRET.replace('env = "RUNWARD_NODE_TEST_TOKEN"', 'default = "hunter2"')
  assert.throws(() => Runbook.parse(text, 'rotate.toml'), runwardError('config', /^rotate\.toml:6:\d+: `default`: secret parameter `token`/))
})
