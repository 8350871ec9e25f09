// Every thrown error carries the core's error kind as its `code`, and the core's message.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { runward, tempDir, writeConfig } from './helpers.mjs'

const { Health, RunwardError, ERROR_CODES } = runward

/** An assert.throws / rejects matcher for a runward error. */
function runwardError(code, message) {
  return (err) => {
    assert.ok(err instanceof Error, `not an Error: ${err}`)
    assert.ok(err instanceof RunwardError, `not a RunwardError: ${err}`)
    assert.equal(err.name, 'RunwardError')
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  }
}

test('a malformed runward.toml throws code config naming file and line', () => {
  const file = writeConfig('[service]\nid = "x"\n[[checks]\n')
  assert.throws(() => new Health({ config: file }), runwardError('config', new RegExp(`^${file}:3:`)))
})

test('an unknown check kind names its line and the known kinds', () => {
  const file = writeConfig('[service]\nid = "x"\n\n[[checks]]\nname = "a"\nkind = "htp"\n')
  assert.throws(
    () => new Health({ config: file }),
    runwardError('config', new RegExp(`^${file}:6:.*unknown check kind \`htp\`.*http, tcp`)),
  )
})

test('a bad key of a check points at its line', () => {
  const file = writeConfig('[[checks]]\nname = "a"\nkind = "disk"\npath = "."\ntimeout_ms = "soon"\n')
  assert.throws(() => new Health({ config: file }), runwardError('config', new RegExp(`^${file}:5:.*timeout_ms`)))
})

test('a missing configuration file throws code not_found', () => {
  const missing = join(tempDir(), 'nope.toml')
  assert.throws(() => new Health({ config: missing }), runwardError('not_found', /cannot read configuration/))
})

test('unknown check names reject or throw with code not_found', async () => {
  const h = new Health()
  h.addCheck('db', () => true)
  await assert.rejects(h.refresh('dbb'), runwardError('not_found', /no check named `dbb`; known checks: db/))
  assert.throws(() => h.checkStatus('nope'), runwardError('not_found', /no check named `nope`/))
})

test('invalid arguments throw code invalid_input', () => {
  const h = new Health()
  assert.throws(() => new Health({ serviceID: 'x' }), runwardError('invalid_input', /unknown field `serviceID`/))
  assert.throws(() => h.addCheck('a', () => true, { timeoutMS: 5 }), runwardError('invalid_input', /timeoutMS/))
  assert.throws(() => h.addCheck('a', () => true, { mode: 'hourly' }), runwardError('invalid_input', /periodic, on_demand/))
  assert.throws(() => h.addCheck('a', () => true, { probes: ['ready', 'alive'] }), runwardError('invalid_input', /unknown probe kind `alive`/))
  assert.throws(() => h.addCheck('a', () => true, { timeoutMs: 0 }), runwardError('invalid_input', /zero timeout/))
  assert.throws(() => h.addCheck('a b', () => true), runwardError('invalid_input', /check name `a b` contains a space/))
  assert.throws(() => h.addCheck('a', 'not a function'), runwardError('invalid_input', /needs a function/))
  h.addCheck('a', () => true)
  assert.throws(() => h.addCheck('a', () => true), runwardError('invalid_input', /two checks are named `a`/))
  assert.deepEqual(h.checkNames, ['a'], 'a rejected check is not kept')
  assert.throws(() => h.status('sideways'), runwardError('invalid_input', /unknown probe kind `sideways`/))
  assert.throws(() => h.report(null, 'everything'), runwardError('invalid_input', /expected one of full, status/))
  assert.throws(() => h.requestHandler({ detail: 'none' }), runwardError('invalid_input', /unknown field `detail`/))
})

test('a port in use rejects serve() with code io', async () => {
  const h = new Health()
  const first = await h.serve({ addr: '127.0.0.1:0' })
  try {
    await assert.rejects(h.serve({ addr: first.address }), runwardError('io', /cannot listen on/))
  } finally {
    await first.shutdown({ drainMs: 0 })
  }
})

test('RunwardError covers every code and can be built by hand', () => {
  assert.deepEqual(ERROR_CODES, [
    'config',
    'not_found',
    'invalid_input',
    'policy_denied',
    'timeout',
    'io',
    'storage',
    'shutdown',
    'conflict',
    'lease_lost',
    'busy',
    'internal',
  ])
  const err = new RunwardError('custom', 'timeout')
  assert.ok(err instanceof RunwardError)
  assert.equal(err.code, 'timeout')
  assert.ok(!(new Error('plain') instanceof RunwardError))
})
