// examples/node/express_app.js end to end: a real Node process on loopback.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import http from 'node:http'
import { get, sleep, tempDir } from './helpers.mjs'

const packageDir = fileURLToPath(new URL('..', import.meta.url))
const exampleDir = join(packageDir, '..', '..', 'examples', 'node')

/** POST `body` as JSON; resolves to `{ status, body }`. */
function post(url, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body)
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode, body: text }))
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
}

/** Polls `condition` until it is true or `ms` pass; resolves to the last result. */
async function waitFor(condition, ms = 10000) {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await condition().catch(() => false)) return true
    await sleep(50)
  }
  return condition().catch(() => false)
}

/**
 * Starts the example with its config copied into a temporary directory (so the data directory
 * is created there), `runward` resolved to this package and Express taken from this package's
 * devDependencies. Resolves to `{ child, url, dir, output }`.
 */
async function startExample() {
  const dir = tempDir()
  copyFileSync(join(exampleDir, 'runward.toml'), join(dir, 'runward.toml'))
  const modules = join(dir, 'modules')
  mkdirSync(modules)
  symlinkSync(packageDir, join(modules, 'runward'), 'dir')
  const child = spawn(process.execPath, [join(exampleDir, 'express_app.js')], {
    cwd: dir,
    env: {
      ...process.env,
      PORT: '0',
      RUNWARD_CONFIG: join(dir, 'runward.toml'),
      SHUTDOWN_GRACE_MS: '1000',
      NODE_PATH: [modules, join(packageDir, 'node_modules')].join(delimiter),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const app = { child, dir, url: null, output: '' }
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (chunk) => (app.output += chunk))
  child.stderr.on('data', (chunk) => (app.output += chunk))
  app.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const listening = await waitFor(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return true
    const m = app.output.match(/listening on (http:\/\/\S+)/)
    if (m) app.url = m[1]
    return Boolean(m)
  }, 30000)
  if (!listening || !app.url) {
    await stop(app)
    assert.fail(`the example did not start:\n${app.output}`)
  }
  return app
}

/** Kills the example if it still runs, and removes its directory. */
async function stop(app) {
  if (app.child.exitCode === null && app.child.signalCode === null) {
    app.child.kill('SIGKILL')
    await app.exited
  }
  rmSync(app.dir, { recursive: true, force: true })
}

test('the Express example serves the API and the probes, and shuts down in sequence', async () => {
  const app = await startExample()
  try {
    // Readiness: the optional MemoryKernel is down, so `warn` (200), not `fail`.
    const warn = await waitFor(async () => {
      const r = await get(`${app.url}/readyz`)
      return r.status === 200 && JSON.parse(r.body).status === 'warn'
    })
    assert.ok(warn, `readiness never turned warn:\n${app.output}`)
    const ready = await get(`${app.url}/readyz`)
    assert.equal(ready.headers['content-type'], 'application/health+json')
    const byCheck = {}
    for (const entries of Object.values(JSON.parse(ready.body).checks)) {
      for (const entry of entries) byCheck[entry.componentId] = entry
    }
    assert.deepEqual(Object.keys(byCheck).sort(), ['data-dir', 'job-queue', 'memory-kernel'])
    assert.equal(byCheck['data-dir'].status, 'pass')
    assert.equal(byCheck['job-queue'].status, 'pass')
    assert.equal(byCheck['memory-kernel'].status, 'fail')
    assert.equal(byCheck['memory-kernel'].critical, false)
    assert.equal(byCheck['memory-kernel'].outage, 'connection_refused')

    assert.equal((await get(`${app.url}/readyz/job-queue`)).status, 200)
    assert.equal((await get(`${app.url}/readyz/nope`)).status, 404)
    assert.equal((await get(`${app.url}/startupz`)).status, 200)
    assert.equal((await get(`${app.url}/livez`)).status, 200)
    assert.equal((await get(`${app.url}/healthz`)).status, 200)

    // The API, on the same port.
    const list = await get(`${app.url}/api/tickets`)
    assert.equal(list.status, 200)
    assert.deepEqual(JSON.parse(list.body).map((t) => t.title), ['Printer offline', 'Reset password'])
    const created = await post(`${app.url}/api/tickets`, { title: 'VPN drops' })
    assert.equal(created.status, 201)
    assert.equal(JSON.parse(created.body).id, 3)
    assert.equal((await post(`${app.url}/api/tickets`, { title: '' })).status, 400)
    assert.equal(JSON.parse((await get(`${app.url}/api/tickets/3`)).body).title, 'VPN drops')
    assert.equal((await get(`${app.url}/api/tickets/99`)).status, 404)
    assert.equal(JSON.parse((await get(`${app.url}/api/tickets/3/draft`)).body).enrichment, 'fallback')
    assert.ok(existsSync(join(app.dir, 'data', 'tickets.json')))

    // Metrics from the snapshot, with the counter the job queue pushes.
    assert.ok(
      await waitFor(async () => (await get(`${app.url}/metrics`)).body.includes('runward_app_value{name="notifications_sent"} 1')),
      'the job queue never reported its notification',
    )
    const metrics = (await get(`${app.url}/metrics`)).body
    assert.match(metrics, /runward_check_status\{check="data-dir",status="pass"\} 1/)
    assert.match(metrics, /runward_check_status\{check="memory-kernel",status="fail"\} 1/)

    // SIGTERM: readiness fails at once, liveness holds during the grace period, then exit 0.
    app.child.kill('SIGTERM')
    assert.ok(await waitFor(async () => (await get(`${app.url}/readyz`)).status === 503, 5000), app.output)
    assert.equal((await get(`${app.url}/livez`)).status, 200)
    let timer
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 15000, 'timeout')))
    const exit = await Promise.race([app.exited, timeout]).finally(() => clearTimeout(timer))
    assert.deepEqual(exit, { code: 0, signal: null }, app.output)
    assert.match(app.output, /shutdown complete/)
  } finally {
    await stop(app)
  }
})
