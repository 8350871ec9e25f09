// Flags and lockdown on a temporary state database, as `runward flag`, `lockdown` and `unlock`.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { runward, sleep, tempDir } from './helpers.mjs'

const { Flags, RunwardError } = runward

const CODE = /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/
const MINUTE = 60_000

/** Flags on a fresh `.runward/state.db` in a temporary directory. */
function openFlags() {
  return Flags.open(join(tempDir(), '.runward', 'state.db'))
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

/** A well-formed code that is not `code`. */
function wrongCode(code) {
  return code === 'AAAA-BBBB-CCCC-DDDD' ? 'EEEE-FFFF-GGGG-HHHH' : 'AAAA-BBBB-CCCC-DDDD'
}

test('set, get, list, renew and clear', async () => {
  const flags = await openFlags()
  assert.ok(existsSync(flags.path))
  assert.deepEqual(await flags.list(), [])
  assert.equal(await flags.get('restarting'), null)

  const flag = await flags.set('restarting', { ttlMs: 10 * MINUTE, owner: 'deploy-42', reason: 'rolling restart' })
  assert.equal(flag.name, 'restarting')
  assert.equal(flag.owner, 'deploy-42')
  assert.equal(flag.reason, 'rolling restart')
  assert.ok(Date.parse(flag.expires_at) > Date.parse(flag.set_at))
  assert.deepEqual(await flags.get('restarting'), flag)
  await flags.set('draining', { ttlMs: MINUTE, owner: 'deploy-42' })
  assert.deepEqual((await flags.list()).map((f) => f.name), ['draining', 'restarting'])
  assert.equal((await flags.get('draining')).reason, null)

  const renewed = await flags.renew('restarting', { ttlMs: 20 * MINUTE, owner: 'deploy-42' })
  assert.ok(Date.parse(renewed.expires_at) > Date.parse(flag.expires_at))

  assert.equal(await flags.clear('restarting', 'deploy-42'), true)
  assert.equal(await flags.clear('restarting'), false)
  assert.equal(await flags.get('restarting'), null)
  assert.deepEqual((await flags.list()).map((f) => f.name), ['draining'])

  const again = await Flags.open(flags.path)
  assert.equal((await again.get('draining')).owner, 'deploy-42')
})

test('a flag held by another owner is refused', async () => {
  const flags = await openFlags()
  await flags.set('restarting', { ttlMs: MINUTE, owner: 'deploy-42', reason: 'rolling restart' })
  await assert.rejects(flags.set('restarting', { ttlMs: MINUTE, owner: 'deploy-43' }), runwardError('conflict', /deploy-42/))
  await assert.rejects(flags.clear('restarting', 'deploy-43'), runwardError('conflict', /deploy-42/))
  await assert.rejects(flags.renew('restarting', { ttlMs: MINUTE, owner: 'deploy-43' }), runwardError('conflict', /deploy-42/))
  assert.equal((await flags.get('restarting')).owner, 'deploy-42')
})

test('bad arguments reject with invalid_input', async () => {
  const flags = await openFlags()
  await assert.rejects(flags.set('two words', { ttlMs: MINUTE, owner: 'me' }), runwardError('invalid_input', /flag name `two words` contains a space/))
  await assert.rejects(flags.set('restarting', { ttlMs: 0, owner: 'me' }), runwardError('invalid_input', /./))
  await assert.rejects(flags.set('restarting', { owner: 'me' }), runwardError('invalid_input', /missing field `ttlMs`/))
  await assert.rejects(flags.set('restarting'), runwardError('invalid_input', /ttlMs/))
  await assert.rejects(flags.set('restarting', { ttlMs: MINUTE, owner: 'me', ttl: 1 }), runwardError('invalid_input', /unknown field `ttl`/))
  await assert.rejects(flags.lockdown({ reason: 'x' }), runwardError('invalid_input', /missing field `owner`/))
  await assert.rejects(flags.lockdown({ owner: 'admin', codeTtlMs: 0 }), runwardError('invalid_input', /greater than zero/))
  await assert.rejects(flags.unlock('   '), runwardError('invalid_input', /empty/))
  await assert.rejects(flags.rotateUnlockCode({ code: 'X', ttlMs: -1 }), runwardError('invalid_input', /ttlMs/))
  await assert.rejects(flags.rotateUnlockCode({}), runwardError('invalid_input', /current code/))
  await assert.rejects(flags.rotateUnlockCode({ overrideReason: 'lost' }), runwardError('invalid_input', /who/))
  await assert.rejects(flags.rotateUnlockCode({ code: 'X', overrideReason: 'lost', who: 'bob' }), runwardError('invalid_input', /not both/))
  await assert.rejects(flags.requireAbsent('lockdown'), runwardError('invalid_input', /array of strings/))
  assert.deepEqual(await flags.list(), [])
})

test('requireAbsent names the held flag', async () => {
  const flags = await openFlags()
  await flags.requireAbsent(['lockdown', 'restarting'])
  await flags.set('restarting', { ttlMs: MINUTE, owner: 'deploy-42', reason: 'rolling restart' })
  await assert.rejects(
    flags.requireAbsent(['lockdown', 'restarting']),
    runwardError('conflict', /flag `restarting` is set, held by deploy-42 until .*rolling restart/),
  )
  assert.deepEqual((await flags.requirePresent(['restarting'])).map((f) => f.name), ['restarting'])
  await assert.rejects(flags.requirePresent(['restarting', 'draining']), runwardError('conflict', /`draining`/))
})

test('lockdown, then unlock with the returned code', async () => {
  const flags = await openFlags()
  const code = await flags.lockdown({ owner: 'admin', reason: 'suspicious logins', ttlMs: 60 * MINUTE })
  assert.match(code, CODE)
  const lockdown = await flags.get('lockdown')
  assert.equal(lockdown.owner, 'admin')
  assert.equal(lockdown.reason, 'suspicious logins')
  await assert.rejects(flags.requireAbsent(['lockdown']), runwardError('conflict', /lockdown is on/))
  const status = await flags.lockdownStatus()
  assert.deepEqual(status.flag, lockdown)
  assert.equal(status.code.generation, 1)
  assert.ok(!JSON.stringify(status).includes(code))
  await assert.rejects(flags.lockdown({ owner: 'someone-else' }), runwardError('conflict', /lockdown is already on/))
  await assert.rejects(flags.lockdown({ owner: 'admin' }), runwardError('conflict', /already on: held by admin since .* ago\)/))

  assert.deepEqual(await flags.unlock(`  ${code}\n`), lockdown)
  assert.equal(await flags.get('lockdown'), null)
  await flags.requireAbsent(['lockdown'])
  assert.deepEqual(await flags.lockdownStatus(), { flag: null, code: null })
  await assert.rejects(flags.unlock(code), runwardError('not_found', /nothing to unlock/))
})

test('a wrong code is refused and lockdown stays', async () => {
  const flags = await openFlags()
  const code = await flags.lockdown({ owner: 'admin' })
  await assert.rejects(flags.unlock(wrongCode(code)), runwardError('policy_denied', /wrong/))
  assert.notEqual(await flags.get('lockdown'), null)
  await flags.unlock(code)
  assert.equal(await flags.get('lockdown'), null)
})

test('rotation gives a new code and the old one stops working', async () => {
  const flags = await openFlags()
  await assert.rejects(flags.rotateUnlockCode({ overrideReason: 'drill', who: 'bob' }), runwardError('not_found', /nothing to rotate/))
  const old = await flags.lockdown({ owner: 'admin' })
  await assert.rejects(flags.rotateUnlockCode({ code: wrongCode(old) }), runwardError('policy_denied', /wrong/))
  const fresh = await flags.rotateUnlockCode({ code: old })
  assert.match(fresh, CODE)
  assert.notEqual(fresh, old)
  assert.equal((await flags.lockdownStatus()).code.generation, 2)
  await assert.rejects(flags.unlock(old), runwardError('policy_denied', /wrong/))
  assert.notEqual(await flags.get('lockdown'), null)
  assert.equal((await flags.unlock(fresh)).owner, 'admin')
  assert.equal(await flags.get('lockdown'), null)
})

test('an expired code gives the expired error', async () => {
  const flags = await openFlags()
  const code = await flags.lockdown({ owner: 'admin', ttlMs: 60 * MINUTE, codeTtlMs: 50 })
  await sleep(200)
  await assert.rejects(flags.unlock(code), runwardError('conflict', /expired/))
  assert.notEqual(await flags.get('lockdown'), null)
  const fresh = await flags.rotateUnlockCode({ code, ttlMs: MINUTE })
  await flags.unlock(fresh)
  assert.equal(await flags.get('lockdown'), null)
})

test('an override without the code is recorded with who and why', async () => {
  const flags = await openFlags()
  await flags.lockdown({ owner: 'admin' })
  const fresh = await flags.rotateUnlockCode({ overrideReason: 'the code was lost', who: 'bob' })
  const { code } = await flags.lockdownStatus()
  assert.equal(code.issued_by, 'bob')
  assert.equal(code.override_reason, 'the code was lost')
  await flags.unlock(fresh)
})
