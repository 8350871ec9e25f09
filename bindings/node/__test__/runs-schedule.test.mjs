// Scheduler and Runs over a temporary runward.toml and state database, as `runward schedule
// list|tick` and `runward runbook list|show|export` use them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runward, tempDir } from './helpers.mjs'

const { Runs, Scheduler, RunwardError } = runward

const SEED = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'runbooks', 'controlled-restart.toml')

const CONFIG = `[state]
dir = "state"

[[schedules]]
name = "nightly-restart"
spec = "@every:60"
runbook = "controlled-restart.toml"
params = { service_url = "http://127.0.0.1:9000" }
`

/** A temporary directory with the seed runbook and a runward.toml scheduling it; its path. */
function writeSchedule(extra = '') {
  const dir = tempDir()
  copyFileSync(SEED, join(dir, 'controlled-restart.toml'))
  const config = join(dir, 'runward.toml')
  writeFileSync(config, CONFIG + extra)
  return config
}

/** The state database of a config written by `writeSchedule`. */
function stateDb(config) {
  return join(dirname(config), 'state', 'state.db')
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

test('a tick claims a due time once; the run is listed, shown, exported and verified', async () => {
  const config = writeSchedule()
  const scheduler = await Scheduler.fromConfig(config)
  assert.equal(scheduler.config, config)
  assert.deepEqual(await scheduler.sync(), { added: ['nightly-restart'], updated: [], unchanged: [] })

  // Milliseconds since the epoch: one or two due times of `@every:60` pass by then.
  const now = Date.now() + 120_000
  const first = await scheduler.tick(now)
  assert.deepEqual(first.synced.unchanged, ['nightly-restart'])
  assert.equal(first.schedules, 1)
  assert.equal(first.claimed.length, 1, JSON.stringify(first))
  assert.deepEqual(first.errors, [])
  assert.ok(first.missed.length <= 1 && first.missed.every((m) => m.reason.length > 0), JSON.stringify(first))
  const claim = first.claimed[0]
  assert.equal(claim.schedule, 'nightly-restart')
  assert.equal(first.now, new Date(now).toISOString())

  const again = await scheduler.tick(now)
  for (const key of ['claimed', 'lost', 'skipped', 'missed', 'errors']) {
    assert.deepEqual(again[key], [], key)
  }
  // Another process (a fresh scheduler) finds the due time in the ledger, never claims it.
  const other = await (await Scheduler.fromConfig(config)).tick(now)
  assert.deepEqual(other.claimed, [])

  const [entry, ...rest] = await scheduler.list()
  assert.deepEqual(rest, [])
  assert.equal(entry.name, 'nightly-restart')
  assert.deepEqual([entry.spec, entry.time_zone, entry.enabled], ['@every:60', 'UTC', true])
  assert.deepEqual(entry.params, { service_url: 'http://127.0.0.1:9000' })
  assert.equal(typeof entry.next_due, 'string')
  assert.equal(entry.last_fire.status, 'dispatched')
  assert.equal(entry.last_fire.run_id, claim.run_id)

  const runs = await Runs.open(stateDb(config))
  assert.equal(runs.path, stateDb(config))
  const listed = await runs.list({ status: ['queued'], sinceMs: 3_600_000, runbook: 'controlled-restart' })
  assert.equal(listed.length, 1)
  const [run] = listed
  assert.equal(run.id, claim.run_id)
  assert.equal(run.status, 'queued')
  assert.equal(run.started_by, 'schedule:nightly-restart')
  assert.deepEqual(run.fire, { schedule: 'nightly-restart', due_at: claim.due_at })
  assert.deepEqual(await runs.list({ status: ['failed', 'succeeded'] }), [])
  assert.deepEqual(await runs.list({ runbook: 'other' }), [])
  assert.deepEqual((await runs.list({ limit: 1 })).map((r) => r.id), [run.id])
  assert.deepEqual((await runs.list()).map((r) => r.id), [run.id])

  const details = await runs.show(run.id)
  assert.deepEqual(details.run, run)
  assert.deepEqual(details.attempts, [])

  const markdown = await runs.export(run.id)
  assert.ok(markdown.startsWith(`# Run ${run.id}`), markdown)
  assert.ok(markdown.includes('| started by | schedule:nightly-restart |'), markdown)
  assert.ok((await runs.export(run.id, 'markdown')).startsWith('# Run '))
  const document = JSON.parse(await runs.export(run.id, 'json'))
  assert.equal(document.run.id, run.id)
  assert.equal(document.chain.first_bad, null)

  const report = await runs.verify(run.id)
  assert.equal(report.run_id, run.id)
  assert.equal(report.first_bad, null)
  assert.equal(report.events, details.events.length)
})

test('unknown statuses, runs and formats reject with their codes', async () => {
  const config = writeSchedule()
  await (await Scheduler.fromConfig(config)).tick(Date.now() + 120_000)
  const runs = await Runs.open(stateDb(config))

  await assert.rejects(runs.list({ status: ['finished'] }), runwardError('invalid_input', /unknown run status `finished`.*compensation_failed/))
  await assert.rejects(runs.list({ status: 'queued' }), runwardError('invalid_input', /invalid run list options/))
  await assert.rejects(runs.list({ state: ['queued'] }), runwardError('invalid_input', /unknown field `state`/))

  const missing = '00000000-0000-0000-0000-000000000000'
  for (const call of [(id) => runs.show(id), (id) => runs.export(id), (id) => runs.verify(id)]) {
    await assert.rejects(call(missing), runwardError('not_found', new RegExp(missing)))
  }

  const [run] = await runs.list()
  await assert.rejects(runs.export(run.id, 'pdf'), runwardError('invalid_input', /markdown or json/))
})

test('a bad time or configuration rejects with its code', async () => {
  const config = writeSchedule()
  const scheduler = await Scheduler.fromConfig(config)
  await assert.rejects(scheduler.tick(Number.NaN), runwardError('invalid_input', /milliseconds since the Unix epoch/))

  const bad = writeSchedule('misfire = "sometimes"\n')
  await assert.rejects(Scheduler.fromConfig(bad), runwardError('config', /runward\.toml:9:.*skip, fire_once, fire_all/))
  await assert.rejects(Scheduler.fromConfig(join(tempDir(), 'missing.toml')), runwardError('not_found', /missing\.toml/))
})
