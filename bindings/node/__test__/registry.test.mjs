// The registry: checks from code and from runward.toml, JavaScript checks, renderers.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { blockFor, runward, sleep, tempDir, writeConfig } from './helpers.mjs'

const { Health, RunwardError } = runward

/** The single health+json entry of `name`, whatever its measurement. */
function entry(report, name) {
  const key = Object.keys(report.checks).find((k) => k.startsWith(`${name}:`))
  assert.ok(key, `no entry for ${name} in ${JSON.stringify(report)}`)
  return report.checks[key][0]
}

test('a registry from code runs sync and async checks', async () => {
  const h = new Health({ serviceId: 'demo', version: '1.0.0', releaseId: 'r42', description: 'demo service' })
  h.addCheck('sync-true', () => true)
  h.addCheck('sync-undefined', () => {})
  h.addCheck('async', async () => {
    await sleep(10)
    return { status: 'pass', observed: 12, unit: 'ms', measurement: 'responseTime' }
  })
  h.addCheck('optional-down', () => false, { critical: false })
  assert.deepEqual(h.checkNames, ['sync-true', 'sync-undefined', 'async', 'optional-down'])

  await h.refreshAll()
  assert.equal(h.status('readiness'), 'warn')
  assert.equal(h.status(), 'warn')
  assert.equal(h.checkStatus('async'), 'pass')
  assert.equal(h.checkStatus('optional-down'), 'fail')

  const report = h.report('readiness')
  assert.equal(report.status, 'warn')
  assert.equal(report.serviceId, 'demo')
  assert.equal(report.version, '1.0.0')
  assert.equal(report.releaseId, 'r42')
  assert.equal(report.description, 'demo service')
  assert.equal(report.output, 'failing: optional-down')
  const timed = report.checks['async:responseTime'][0]
  assert.equal(timed.componentId, 'async')
  assert.equal(timed.observedValue, 12)
  assert.equal(timed.observedUnit, 'ms')
  assert.equal(timed.status, 'pass')
  assert.match(timed.time, /^\d{4}-\d\d-\d\dT/)
  const down = entry(report, 'optional-down')
  assert.equal(down.critical, false)
  assert.equal(down.output, 'the check returned false')

  assert.deepEqual(h.report('readiness', 'status'), { status: 'warn' })
})

test('a registry from runward.toml plus code checks', async () => {
  const file = writeConfig(`
[service]
id = "from-config"
version = "2.0.0"

[[checks]]
name = "data-dir"
kind = "path"
path = "."
probes = ["readiness", "startup"]

[[checks]]
name = "disk"
kind = "disk"
path = "."
probes = ["liveness"]
`)
  const h = new Health({ config: file, version: '2.0.1' })
  h.addCheck('app', () => true, { probes: ['readiness'] })
  assert.deepEqual(h.checkNames, ['data-dir', 'disk', 'app'])
  assert.deepEqual(h.warnings, [])

  await h.refreshAll()
  assert.equal(h.status('startup'), 'pass')
  assert.equal(h.status('liveness'), 'pass')
  assert.equal(h.status('readiness'), 'pass')
  const report = h.report()
  assert.equal(report.serviceId, 'from-config')
  assert.equal(report.version, '2.0.1', 'options override the configuration')
  assert.equal(entry(report, 'data-dir').componentType, 'system')
  assert.equal(entry(report, 'app').status, 'pass')
})

test('a throwing check fails with its message and the registry keeps working', async () => {
  const h = new Health()
  let calls = 0
  h.addCheck('flaky', () => {
    calls += 1
    if (calls === 1) throw new Error('database is down')
    return true
  })
  h.addCheck('rejects', async () => {
    throw new TypeError('bad answer')
  })
  h.addCheck('throws-string', () => {
    throw 'plain string' // eslint-disable-line no-throw-literal
  })
  await h.refreshAll()
  const report = h.report()
  assert.equal(report.status, 'fail')
  assert.equal(entry(report, 'flaky').output, 'database is down')
  assert.equal(entry(report, 'rejects').output, 'bad answer')
  assert.equal(entry(report, 'throws-string').output, 'plain string')

  await h.refresh('flaky')
  assert.equal(h.checkStatus('flaky'), 'pass')
})

test('a check that never resolves fails with outage timeout within its deadline', async () => {
  const h = new Health()
  h.addCheck('hangs', () => new Promise(() => {}), { timeoutMs: 150 })
  const started = Date.now()
  const report = await h.refresh('hangs')
  const took = Date.now() - started
  assert.ok(took < 1500, `took ${took} ms`)
  assert.equal(report.status, 'fail')
  const check = entry(report, 'hangs')
  assert.equal(check.outage, 'timeout')
  assert.equal(check.dependencyState, 'offline')
  assert.match(check.output, /150 ms deadline/)
})

test('a blocked event loop makes a JavaScript check time out', async () => {
  const h = new Health()
  h.addCheck('js', () => true, { timeoutMs: 100 })
  const pending = h.refresh('js')
  blockFor(400)
  const report = await pending
  assert.equal(entry(report, 'js').outage, 'timeout')
  // Once the loop runs again, the check passes.
  await h.refresh('js')
  assert.equal(h.checkStatus('js'), 'pass')
})

test('result objects carry outage, state, remediation and details', async () => {
  const h = new Health()
  h.addCheck('vector-db', () => ({
    status: 'fail',
    output: 'schema v1 not supported',
    outage: 'version_mismatch',
    remediation: 'upgrade the index',
    details: { found: 'v1' },
  }))
  h.addCheck('bad-result', () => ({ status: 'ok' }))
  h.addCheck('not-json', () => ({ status: 'pass', details: { n: 1n } }))
  await h.refreshAll()
  const report = h.report()
  const vdb = entry(report, 'vector-db')
  assert.equal(vdb.outage, 'version_mismatch')
  assert.equal(vdb.dependencyState, 'version_mismatch')
  assert.match(entry(report, 'bad-result').output, /unknown variant `ok`/)
  assert.match(entry(report, 'not-json').output, /not JSON/)
  const doctor = await h.doctor()
  const check = doctor.checks.find((c) => c.name === 'vector-db')
  assert.equal(check.remediation, 'upgrade the index')
})

test('startup latches, gates and shutdown drive readiness', async () => {
  const h = new Health()
  h.addCheck('up', () => true, { probes: ['startup', 'readiness'] })
  assert.equal(h.status('readiness'), 'fail', 'unknown before the first result fails closed')
  assert.equal(h.status('startup'), 'fail')
  await h.refreshAll()
  assert.equal(h.status('startup'), 'pass')
  h.closeGate('maintenance', 'schema migration')
  assert.equal(h.status('readiness'), 'fail')
  assert.deepEqual(h.report('readiness').notes, ['gate `maintenance` closed: schema migration'])
  h.openGate('maintenance')
  assert.equal(h.status('readiness'), 'pass')
  h.beginShutdown()
  assert.equal(h.status('readiness'), 'fail')
  assert.equal(h.status('liveness'), 'pass')
})

test('the heartbeat feeds liveness', async () => {
  const h = new Health({ heartbeatTimeoutMs: 150 })
  h.heartbeat()
  assert.equal(h.status('liveness'), 'pass')
  await sleep(400)
  assert.equal(h.status('liveness'), 'fail')
  const heartbeat = h.report('liveness').checks['heartbeat:status'][0]
  assert.equal(heartbeat.status, 'fail')
  assert.match(heartbeat.output, /no host heartbeat/)
  h.heartbeat()
  assert.equal(h.status('liveness'), 'pass')
})

test('periodic checks run in the background after start()', async () => {
  const h = new Health()
  let runs = 0
  h.addCheck('ticker', () => {
    runs += 1
  }, { intervalMs: 50, jitterMs: 0 })
  h.start()
  h.start()
  await sleep(400)
  h.stop()
  assert.ok(runs >= 3, `ran ${runs} times`)
  assert.equal(h.status(), 'pass')
})

test('transitions reach onTransition callbacks on the JavaScript thread', async () => {
  const h = new Health()
  let up = true
  h.addCheck('toggle', () => up)
  const events = []
  h.onTransition((event) => events.push(event))
  await h.refresh('toggle')
  up = false
  await h.refresh('toggle')
  await sleep(50)
  assert.deepEqual(
    events.map((e) => [e.check, e.from, e.to]),
    [
      ['toggle', 'unknown', 'pass'],
      ['toggle', 'pass', 'fail'],
    ],
  )
  const last = events[1]
  assert.equal(last.consecutiveFailures, 1)
  assert.equal(typeof last.previousDurationMs, 'number')
  assert.match(last.at, /^\d{4}-/)
  assert.equal(last.outcome.status, 'fail')
  assert.equal(last.outcome.output, 'the check returned false')
})

test('thresholds damp flapping', async () => {
  const h = new Health()
  let up = true
  h.addCheck('damped', () => up, { failureThreshold: 2 })
  await h.refresh('damped')
  up = false
  await h.refresh('damped')
  assert.equal(h.checkStatus('damped'), 'pass')
  await h.refresh('damped')
  assert.equal(h.checkStatus('damped'), 'fail')
})

test('renderers: table, verbose and prometheus read the snapshot', async () => {
  const h = new Health({ serviceId: 'render' })
  h.addCheck('db', () => true)
  h.addCheck('cache', () => false, { critical: false })
  h.setValue('queue_depth', 3)
  assert.equal(h.addValue('jobs_failed', 2), 2)
  assert.equal(h.addValue('jobs_failed', 1), 3)
  await h.refreshAll()

  const table = h.table('readiness')
  assert.match(table, /^readiness: warn {2}\(render\)\n/)
  assert.match(table, /CHECK\s+STATUS\s+ROLE\s+TOOK\s+OUTPUT/)
  assert.match(table, /cache\s+fail\s+optional/)
  assert.match(table, /value queue_depth = 3/)

  const verbose = h.verbose('readiness')
  assert.match(verbose, /\[\+\]db ok/)
  assert.match(verbose, /\[-\]cache failed: the check returned false/)
  assert.match(verbose, /readyz check passed/)

  const metrics = h.prometheus()
  assert.match(metrics, /# TYPE runward_check_status gauge/)
  assert.match(metrics, /runward_check_status\{check="db",status="pass"\} 1/)
  assert.match(metrics, /runward_check_up\{check="cache"\} 0/)
  assert.match(metrics, /runward_check_runs_total\{check="db"\} 1/)
  assert.match(metrics, /runward_app_value\{name="queue_depth"\} 3/)
  assert.match(metrics, /runward_app_value\{name="jobs_failed"\} 3/)
  const report = h.report()
  assert.equal(report.checks['queue_depth:value'][0].observedValue, 3)
})

test('a dependency check on liveness is reported as a warning; a local one is not', () => {
  const h = new Health()
  h.addCheck('remote', () => true, { probes: ['liveness'] })
  h.addCheck('loop-lag', () => true, { probes: ['liveness'], local: true })
  assert.equal(h.warnings.length, 1)
  assert.match(h.warnings[0], /check `remote` is a dependency check on liveness/)
})

test('doctor runs every check and applies fixers with fix: true', async () => {
  const dir = tempDir()
  const file = writeConfig(`
[[checks]]
name = "state"
kind = "path"
path = "${dir}/state"
create = true
`)
  const h = new Health({ config: file })
  h.addCheck('app', () => true)
  const before = await h.doctor()
  assert.equal(before.status, 'fail')
  assert.equal(before.exit_code, 1)
  const state = before.checks.find((c) => c.name === 'state')
  assert.equal(state.status, 'fail')
  assert.match(state.remediation, /doctor --fix/)
  assert.deepEqual(state.fix, { description: `create directory ${dir}/state`, applied: false, failed: false })
  assert.equal(before.checks.find((c) => c.name === 'app').status, 'pass')

  const after = await h.doctor({ fix: true })
  assert.equal(after.status, 'pass')
  assert.equal(after.exit_code, 0)
  const fixed = after.checks.find((c) => c.name === 'state')
  assert.equal(fixed.fix.applied, true)
  assert.equal(fixed.fix.failed, false)
})

test('checks cannot be added once the registry is built', async () => {
  const h = new Health()
  h.addCheck('a', () => true)
  assert.equal(h.status(), 'fail')
  assert.throws(
    () => h.addCheck('b', () => true),
    (err) => err instanceof RunwardError && err.code === 'invalid_input' && /already built/.test(err.message),
  )
  assert.deepEqual(h.checkNames, ['a'])
})
