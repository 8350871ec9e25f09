// The HTTP side: the server on runward's threads, the shutdown sequence, the request handler.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Worker } from 'node:worker_threads'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import express from 'express'
import { get, listen, runward, sleep } from './helpers.mjs'

const { Health } = runward
const packageDir = fileURLToPath(new URL('..', import.meta.url))

async function readyHealth() {
  const h = new Health({ serviceId: 'web' })
  h.addCheck('db', () => true, { probes: ['readiness', 'startup'] })
  await h.refreshAll()
  return h
}

test('serve() answers the probe endpoints', async () => {
  const h = await readyHealth()
  const srv = await h.serve({ addr: '127.0.0.1:0' })
  try {
    assert.ok(srv.port > 0)
    assert.equal(srv.url, `http://127.0.0.1:${srv.port}`)
    const ready = await get(`${srv.url}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.headers['content-type'], 'application/health+json')
    assert.match(ready.headers['cache-control'], /^max-age=\d+$/)
    const body = JSON.parse(ready.body)
    assert.equal(body.status, 'pass')
    assert.equal(body.serviceId, 'web', 'loopback callers see details')
    assert.equal(body.checks['db:status'][0].status, 'pass')

    assert.equal((await get(`${srv.url}/livez`)).status, 200)
    assert.equal((await get(`${srv.url}/startupz`)).status, 200)
    assert.equal((await get(`${srv.url}/readyz/db`)).status, 200)
    assert.equal((await get(`${srv.url}/readyz/nope`)).status, 404)
    const verbose = await get(`${srv.url}/readyz?verbose`)
    assert.match(verbose.body, /\[\+\]db ok\nreadyz check passed/)
    const metrics = await get(`${srv.url}/metrics`)
    assert.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    assert.match(metrics.body, /runward_probe_requests_total\{endpoint="\/readyz",code="200"\} 2/)
  } finally {
    await srv.shutdown({ drainMs: 0 })
  }
})

test('the detail policy hides details from callers without the token', async () => {
  const h = await readyHealth()
  const srv = await h.serve({ addr: '127.0.0.1:0', details: 'token', token: 's3cret' })
  try {
    assert.equal((await get(`${srv.url}/readyz`)).body, '{"status":"pass"}')
    const authorised = await get(`${srv.url}/readyz`, { authorization: 'Bearer s3cret' })
    assert.equal(JSON.parse(authorised.body).serviceId, 'web')
  } finally {
    await srv.shutdown({ drainMs: 0 })
  }
})

test('the server answers /readyz while the event loop is blocked', async () => {
  const h = await readyHealth()
  const srv = await h.serve({ addr: '127.0.0.1:0' })
  try {
    // A worker thread has its own event loop: it asks while this thread is busy and stores
    // the status code in shared memory, which this thread polls without ever yielding.
    const shared = new Int32Array(new SharedArrayBuffer(4))
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads')
      const http = require('node:http')
      const shared = new Int32Array(workerData.buffer)
      parentPort.once('message', () => {
        http.get(workerData.url, { agent: false }, (res) => {
          res.resume()
          res.on('end', () => Atomics.store(shared, 0, res.statusCode))
        }).on('error', () => Atomics.store(shared, 0, -1))
      })
      parentPort.postMessage('ready')
      `,
      { eval: true, workerData: { url: `${srv.url}/readyz`, buffer: shared.buffer } },
    )
    await new Promise((resolve) => worker.once('message', resolve))
    worker.postMessage('go')
    const started = Date.now()
    while (Atomics.load(shared, 0) === 0 && Date.now() - started < 10_000) {
      // busy: the event loop of this thread is blocked until the answer is in
    }
    const took = Date.now() - started
    await worker.terminate()
    assert.equal(Atomics.load(shared, 0), 200, `no answer while blocked (waited ${took} ms)`)
    assert.ok(took < 5000, `took ${took} ms`)
  } finally {
    await srv.shutdown({ drainMs: 0 })
  }
})

test('serve() raises the soft open-files limit to the hard one', () => {
  const script = `
    const { readFileSync } = require('node:fs')
    const { Health } = require(${JSON.stringify(packageDir)})
    new Health().serve({ addr: '127.0.0.1:0' }).then(async (srv) => {
      const line = readFileSync('/proc/self/limits', 'utf8').split('\\n').find((l) => l.startsWith('Max open files'))
      console.log(line.slice('Max open files'.length).trim().split(/\\s+/).slice(0, 2).join(' '))
      await srv.shutdown({ drainMs: 0 })
    })
  `
  const run = spawnSync('sh', ['-c', 'ulimit -Sn 256 && exec "$0" -e "$1"', process.execPath, script], {
    timeout: 10000,
    encoding: 'utf8',
  })
  assert.equal(run.status, 0, run.stderr)
  const [soft, hard] = run.stdout.trim().split(' ')
  assert.equal(soft, hard, `the soft limit of 256 was raised: ${run.stdout}`)
})

test('serve() cuts off slow and idle clients and keeps answering probes', async () => {
  const net = await import('node:net')
  const h = await readyHealth()
  const srv = await h.serve({ addr: '127.0.0.1:0', headerReadTimeoutMs: 300, idleTimeoutMs: 500, maxConnections: 8 })
  const open = () =>
    new Promise((resolve, reject) => {
      const socket = net.connect(srv.port, '127.0.0.1', () => resolve(socket))
      socket.on('error', reject)
    })
  const closed = (socket) => new Promise((resolve) => socket.on('close', () => resolve(Date.now())))
  try {
    assert.equal(srv.maxConnections, 8)
    const slow = await open()
    const silent = await open()
    slow.write('GET /readyz HTTP/1.1\r\n')
    const started = Date.now()
    for (const end of await Promise.all([closed(slow), closed(silent)])) {
      assert.ok(end - started < 2500, `closed after ${end - started} ms`)
    }
    const held = []
    const ends = []
    for (let i = 0; i < 12; i++) {
      held.push(await open())
      ends.push(closed(held[i]))
    }
    // Beyond the limit of 8, the oldest idle connections made room: probes still answer.
    assert.equal((await get(`${srv.url}/readyz`)).status, 200)
    await ends[0]
    for (const socket of held) socket.destroy()
  } finally {
    await srv.shutdown({ drainMs: 0 })
  }
})

test('serve() refuses limits out of range', async () => {
  const h = new Health()
  await assert.rejects(h.serve({ addr: '127.0.0.1:0', headerReadTimeoutMs: 0 }), (err) => {
    assert.equal(err.code, 'invalid_input')
    assert.match(err.message, /header_read_timeout_ms/)
    return true
  })
})

test('a server keeps the process alive until unref() or shutdown()', async () => {
  const script = (after) => `
    const { Health } = require(${JSON.stringify(packageDir)})
    new Health().serve({ addr: '127.0.0.1:0' }).then((srv) => { ${after} })
  `
  const run = (after) => spawnSync(process.execPath, ['-e', script(after)], { timeout: 3000, encoding: 'utf8' })
  const unref = run('srv.unref()')
  assert.equal(unref.status, 0, unref.stderr)
  const shutdown = run('srv.shutdown({ drainMs: 0 })')
  assert.equal(shutdown.status, 0, shutdown.stderr)
  const kept = run('')
  assert.equal(kept.signal, 'SIGTERM', 'still running when the timeout killed it')
})

test('on-demand checks revalidate in the background when a request finds them stale', async () => {
  const h = new Health()
  let runs = 0
  h.addCheck('lazy', () => {
    runs += 1
  }, { mode: 'on_demand', ttlMs: 60_000 })
  h.start()
  assert.equal(h.handle({ path: '/readyz' }).status, 503, 'no result yet: fails closed')
  for (let i = 0; i < 50 && h.status() !== 'pass'; i++) await sleep(20)
  assert.equal(h.status(), 'pass')
  h.handle({ path: '/readyz' })
  await sleep(50)
  assert.equal(runs, 1, 'a fresh result is reused')
})

test('answer() and the server run a stale on-demand check first, at any probe period', async () => {
  const h = new Health()
  let up = true
  let runs = 0
  h.addCheck('lazy', () => {
    runs += 1
    return up
  }, { mode: 'on_demand', ttlMs: 100, timeoutMs: 1000 })
  const srv = await h.serve({ addr: '127.0.0.1:0' })
  try {
    for (const period of [50, 300, 600]) {
      assert.equal((await h.answer({ path: '/readyz' })).status, 200, `answer(), probed every ${period} ms`)
      assert.equal((await get(`${srv.url}/readyz`)).status, 200, `server, probed every ${period} ms`)
      await sleep(period)
    }
    const before = runs
    up = false
    await sleep(150)
    assert.equal((await h.answer({ path: '/readyz' })).status, 503, 'the first probe after the TTL reports')
    assert.equal(runs, before + 1)
  } finally {
    await srv.shutdown({ drainMs: 0 })
  }
})

test('shutdown fails readiness at once and keeps liveness until drained', async () => {
  const h = await readyHealth()
  const srv = await h.serve({ addr: '127.0.0.1:0' })
  const url = srv.url
  assert.equal((await get(`${url}/readyz`)).status, 200)
  const stopped = srv.shutdown({ drainMs: 10_000 })
  await sleep(50)
  const ready = await get(`${url}/readyz`)
  assert.equal(ready.status, 503)
  assert.match(ready.body, /shutting down/)
  assert.equal((await get(`${url}/livez`)).status, 200)
  const started = Date.now()
  h.markDrained()
  await stopped
  assert.ok(Date.now() - started < 2000, 'stops soon after markDrained()')
  await assert.rejects(get(`${url}/livez`), /ECONNREFUSED/)
  await srv.shutdown()
})

test('handle() answers like the server', async () => {
  const h = await readyHealth()
  const anonymous = h.handle({ path: '/readyz' })
  assert.deepEqual(anonymous, {
    status: 200,
    headers: { 'content-type': 'application/health+json', 'cache-control': anonymous.headers['cache-control'] },
    body: '{"status":"pass"}',
  })
  const local = h.handle({ path: '/readyz/', query: 'verbose', peerLoopback: true })
  assert.equal(local.headers['content-type'], 'text/plain; charset=utf-8')
  assert.match(local.body, /\[\+\]db ok/)
  // Anonymous callers never learn a check's name.
  const verbose = h.handle({ path: '/readyz', query: 'verbose' })
  assert.match(verbose.body, /^1 check\(s\): 1 ok/)
  assert.doesNotMatch(verbose.body, /db/)
  const unknown = h.handle({ path: '/readyz/nope' })
  assert.equal(unknown.status, 404)
  assert.doesNotMatch(unknown.body, /db/)
  assert.match(h.handle({ path: '/readyz/nope', peerLoopback: true }).body, /db/)
  assert.match(h.handle({ path: '/metrics' }).body, /check="db"/)
  const without = h.handle({ path: '/metrics' }, { checkMetrics: false }).body
  assert.doesNotMatch(without, /check="/)
  assert.match(without, /runward_probe_up\{probe="readiness"\}/)
  assert.equal(h.handle({ path: '/elsewhere' }).status, 404)
  assert.equal(JSON.parse(h.handle({ path: '/healthz' }, { details: 'public' }).body).serviceId, 'web')
})

test('the request handler serves a plain node:http server', async () => {
  const h = await readyHealth()
  const handler = h.requestHandler()
  const alone = http.createServer(handler)
  const mounted = http.createServer((req, res) => {
    handler(req, res, () => {
      res.end('app')
    })
  })
  const aloneUrl = await listen(alone)
  const mountedUrl = await listen(mounted)
  try {
    const ready = await get(`${aloneUrl}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.headers['content-type'], 'application/health+json')
    assert.equal(JSON.parse(ready.body).checks['db:status'][0].status, 'pass', 'loopback peers see details')
    assert.equal((await get(`${aloneUrl}/other`)).status, 404)
    assert.equal((await get(`${mountedUrl}/other`)).body, 'app')
    assert.equal((await get(`${mountedUrl}/livez`)).status, 200)
    h.beginShutdown()
    assert.equal((await get(`${mountedUrl}/readyz`)).status, 503)
  } finally {
    alone.close()
    mounted.close()
  }
})

test('the request handler mounts in Express', async () => {
  const h = await readyHealth()
  const app = express()
  app.use(h.requestHandler({ details: 'none' }))
  app.get('/hello', (req, res) => res.send('hello'))
  const server = http.createServer(app)
  const url = await listen(server)
  try {
    const ready = await get(`${url}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.body, '{"status":"pass"}')
    // `details: 'none'`: even ?verbose names no check.
    assert.equal(
      (await get(`${url}/readyz/db?verbose`)).body,
      '1 check(s): 1 ok, 0 warn, 0 failing or unknown; names and reasons withheld\nreadyz check passed\n',
    )
    assert.equal((await get(`${url}/hello`)).body, 'hello')
    assert.match((await get(`${url}/metrics`)).body, /runward_check_up\{check="db"\} 1/)
  } finally {
    server.close()
  }
})

test('the request handler mounts in Fastify through the raw request and response', async () => {
  const { default: Fastify } = await import('fastify')
  const h = await readyHealth()
  const handler = h.requestHandler()
  const app = Fastify()
  app.addHook('onRequest', (request, reply, done) => {
    if (handler(request.raw, reply.raw, done)) reply.hijack()
  })
  app.get('/hello', async () => 'hello')
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  try {
    const ready = await get(`${url}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.headers['content-type'], 'application/health+json')
    assert.equal(JSON.parse(ready.body).status, 'pass')
    assert.equal((await get(`${url}/hello`)).body, 'hello')
    assert.equal((await get(`${url}/readyz/nope`)).status, 404)
  } finally {
    await app.close()
  }
})
