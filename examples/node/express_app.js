'use strict'

// A small Express tickets API with runward's probes on the same port.
//
//   npm install && node express_app.js       # 127.0.0.1:$PORT (default 3000)
//   curl -s localhost:3000/api/tickets
//   curl -s 'localhost:3000/readyz?verbose'
//
// Checks: the data directory and the optional MemoryKernel service come from runward.toml next
// to this file (or $RUNWARD_CONFIG); the job queue is an async check added below. SIGTERM
// starts the shutdown sequence: readiness fails at once, the API keeps serving for
// $SHUTDOWN_GRACE_MS (default 2000) so load balancers stop sending traffic, then the server
// closes, queued jobs drain and the process exits 0.

const fs = require('node:fs')
const path = require('node:path')
const express = require('express')
const { Health } = require('runward')

const configFile = path.resolve(process.env.RUNWARD_CONFIG || path.join(__dirname, 'runward.toml'))
const dataDir = path.join(path.dirname(configFile), 'data') // the `data-dir` check's directory
const graceMs = Number(process.env.SHUTDOWN_GRACE_MS ?? 2000)
const QUEUE_WARN_DEPTH = 100

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Tickets in memory, saved to data/tickets.json after each change (write, then rename).
class TicketStore {
  constructor(file) {
    this.file = file
    this.saving = Promise.resolve()
    try {
      this.tickets = JSON.parse(fs.readFileSync(file, 'utf8'))
    } catch (err) {
      if (err.code !== 'ENOENT') throw err
      this.tickets = [
        { id: 1, title: 'Printer offline', status: 'open' },
        { id: 2, title: 'Reset password', status: 'closed' },
      ]
    }
  }

  list(status) {
    return status === undefined ? this.tickets : this.tickets.filter((t) => t.status === status)
  }

  get(id) {
    return this.tickets.find((t) => t.id === id)
  }

  async create(title) {
    const ticket = { id: Math.max(0, ...this.tickets.map((t) => t.id)) + 1, title, status: 'open' }
    this.tickets.push(ticket)
    await this.save()
    return ticket
  }

  save() {
    const text = JSON.stringify(this.tickets, null, 2)
    const tmp = `${this.file}.tmp`
    // One write at a time, in order.
    this.saving = this.saving.then(async () => {
      await fs.promises.writeFile(tmp, text)
      await fs.promises.rename(tmp, this.file)
    })
    return this.saving
  }
}

// Notifications sent after a ticket is created, one at a time.
class JobQueue {
  constructor(health) {
    this.health = health
    this.pending = []
    this.running = false
  }

  push(job) {
    this.pending.push(job)
    if (!this.running) this.run()
  }

  async run() {
    this.running = true
    while (this.pending.length > 0) {
      this.pending.shift()
      await sleep(10) // stands in for real work (e-mail, webhooks)
      this.health.addValue('notifications_sent', 1)
    }
    this.running = false
  }

  async drain(timeoutMs) {
    const until = Date.now() + timeoutMs
    while ((this.running || this.pending.length > 0) && Date.now() < until) await sleep(20)
  }
}

fs.mkdirSync(dataDir, { recursive: true })
const health = new Health({ config: configFile })
const store = new TicketStore(path.join(dataDir, 'tickets.json'))
const jobs = new JobQueue(health)

// Runs on the event loop: a blocked loop times it out and fails readiness.
health.addCheck(
  'job-queue',
  async () => {
    const depth = jobs.pending.length
    if (depth > QUEUE_WARN_DEPTH) {
      return { status: 'warn', output: `${depth} notifications queued`, observed: depth, measurement: 'queueDepth' }
    }
    return { status: 'pass', observed: depth, measurement: 'queueDepth' }
  },
  { intervalMs: 2000, timeoutMs: 1000 },
)

const app = express()
app.use(health.requestHandler()) // /livez /readyz /readyz/<check> /startupz /healthz /metrics
app.use(express.json())

app.get('/api/tickets', (req, res) => {
  res.json(store.list(req.query.status))
})

app.get('/api/tickets/:id', (req, res) => {
  const ticket = store.get(Number(req.params.id))
  if (!ticket) return res.status(404).json({ error: 'no such ticket' })
  res.json(ticket)
})

app.post('/api/tickets', async (req, res) => {
  const title = req.body && req.body.title
  if (typeof title !== 'string' || title.trim() === '') {
    return res.status(400).json({ error: '`title` must be a non-empty string' })
  }
  const ticket = await store.create(title)
  jobs.push(ticket.id)
  res.status(201).json(ticket)
})

app.get('/api/tickets/:id/draft', (req, res) => {
  const ticket = store.get(Number(req.params.id))
  if (!ticket) return res.status(404).json({ error: 'no such ticket' })
  // Enrichment is optional: its last result comes from the snapshot (no I/O); drafting falls
  // back to a plain template whenever it is not passing.
  const enriched = health.checkStatus('memory-kernel') === 'pass'
  res.json({
    ticket: ticket.id,
    draft: `Hello, we are looking into "${ticket.title}".`,
    enrichment: enriched ? 'memory-kernel' : 'fallback',
  })
})

app.use((req, res) => res.status(404).json({ error: 'not found' }))

health.start()
// Liveness fails when this stops for [health] heartbeat_timeout_ms: a stuck loop restarts.
const beat = setInterval(() => health.heartbeat(), 1000)
health.heartbeat()

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST || '127.0.0.1', (err) => {
  if (err) throw err
  const { address, port } = server.address()
  console.log(`listening on http://${address}:${port}`)
})

let stopping = false
async function shutdown(signal) {
  if (stopping) process.exit(1) // a second signal: stop now
  stopping = true
  // Readiness fails at once; keep serving until load balancers have noticed.
  health.beginShutdown()
  console.log(`${signal}: readiness failing; stopping in ${graceMs} ms`)
  await sleep(graceMs)
  await new Promise((resolve) => {
    server.close(resolve) // in-flight requests finish
    server.closeIdleConnections()
  })
  await jobs.drain(5000)
  await store.saving
  health.markDrained()
  health.stop()
  clearInterval(beat)
  console.log('shutdown complete')
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
