// Compiled with `tsc --noEmit` (npm run typecheck): the declarations must describe this usage.

import http from 'node:http'
import express from 'express'
import {
  type Approval,
  type ChainReport,
  type CustomStep,
  type CustomStepContext,
  type EngineOpenOptions,
  type CheckStatus,
  type DoctorReport,
  type ErrorCode,
  type Flag,
  type HealthJson,
  type LockdownOptions,
  type LockdownStatus,
  type PlannedStep,
  type Run,
  type RunbookData,
  type RunbookPlan,
  type RunbookStepData,
  type RunDetails,
  type RunEvent,
  type RunListOptions,
  type RunOutcome,
  type RunStatusName,
  type ScheduleStatus,
  type StepKindName,
  type Sweep,
  type SyncReport,
  type TickReport,
  type TransitionEvent,
  Engine,
  Flags,
  Health,
  HealthServer,
  Runbook,
  Runs,
  RunwardError,
  Scheduler,
  ERROR_CODES,
} from '..'

async function main(): Promise<void> {
  const h = new Health({ config: 'runward.toml', serviceId: 'api', heartbeatTimeoutMs: 5000 })
  h.addCheck('sync', () => true)
    .addCheck('async', async (ctx) => {
      const budget: number = ctx.timeoutMs
      return { status: 'warn', output: `slow for ${ctx.name}`, observed: budget, unit: 'ms' }
    }, { probes: ['readiness', 'startup'], critical: false, timeoutMs: 1000, mode: 'on_demand', ttlMs: 500 })
    .addCheck('nothing', () => undefined, { local: true, probes: ['liveness'] })
  h.onTransition((event: TransitionEvent) => {
    const to: CheckStatus = event.to
    console.log(event.check, event.from, to, event.outcome.output)
  })
  h.start()
  await h.refreshAll()
  const one: HealthJson = await h.refresh('sync')
  const status: CheckStatus = h.status('readiness')
  const all: HealthJson = h.report()
  const anonymous: HealthJson = h.report('liveness', 'status')
  const text: string = h.table() + h.verbose('startup') + h.prometheus()
  const doctor: DoctorReport = await h.doctor({ fix: true })
  console.log(one.checks, status, all.serviceId, anonymous.status, text, doctor.exit_code, h.warnings, h.checkNames)
  h.heartbeat()
  h.setValue('queue', 3)
  const total: number = h.addValue('failures', 1)
  h.closeGate('maintenance', 'migration')
  h.openGate('maintenance')

  const srv: HealthServer = await h.serve({ addr: '127.0.0.1:0', details: 'token', token: 'secret' })
  console.log(srv.port, srv.url, srv.address, total)
  srv.unref()
  h.beginShutdown()
  h.markDrained()
  await srv.shutdown({ drainMs: 100 })

  const answer = h.handle({ path: '/readyz', query: 'verbose', peerLoopback: true }, { details: 'public' })
  console.log(answer.status, answer.headers['content-type'], answer.body)

  const handler = h.requestHandler({ details: 'loopback' })
  http.createServer(handler)
  http.createServer((req, res) => {
    if (!handler(req, res, () => res.end('app'))) console.log('not a probe')
  })
  express().use(h.requestHandler())

  try {
    new Health({ config: 'missing.toml' })
  } catch (err) {
    if (err instanceof RunwardError && ERROR_CODES.includes(err.code)) {
      const code: 'config' | 'not_found' | string = err.code
      console.log(code, err.message)
    }
  }
}

function planRunbook(): void {
  const rb: Runbook = Runbook.load('controlled-restart.toml')
  const inline = Runbook.parse('[runbook]\nname = "x"\n', 'inline.toml')
  const where: string | null = inline.path
  const ids: string[] = rb.stepIds
  const plan: RunbookPlan = rb.plan({ service_url: 'http://127.0.0.1:9000', workers: 8 })
  const first: PlannedStep = plan.steps[0]
  const kind: StepKindName = first.kind
  const undo: string | undefined = first.compensation
  const onFailure = first.policy.on_failure
  const target: string | undefined = typeof onFailure === 'object' ? onFailure.goto : undefined
  const text: string = rb.planText() + rb.planText(null) + inline.planText({ dry: 'yes' })
  console.log(rb.name, rb.definitionHash, where, ids, plan.digest, plan.requires.absent, kind, undo, target, text)
  try {
    rb.plan({ nope: 'x' })
  } catch (err) {
    if (err instanceof RunwardError && err.code === 'invalid_input') console.log(err.message)
  }
}

function buildRunbook(): void {
  const step: RunbookStepData = { id: 'hello', kind: 'command', argv: ['echo', '{{ params.who }}'], retries: 1 }
  const data: RunbookData = {
    runbook: { name: 'greet', requires_flags_absent: ['lockdown'] },
    params: { who: { default: 'ops' }, times: { type: 'integer', default: 2 } },
    steps: [step, { id: 'nap', kind: 'sleep', duration: '1s', compensate: { kind: 'sleep', duration: '1ms' } }],
    on_cancel: [],
  }
  const rb: Runbook = Runbook.fromObject(data)
  const inline = Runbook.fromObject({ runbook: { name: 'x', description: undefined }, steps: [{ id: 'a', kind: 'sleep' }] })
  // @ts-expect-error a runbook needs its `runbook` table
  Runbook.fromObject({ steps: [] })
  // @ts-expect-error step kinds are known names
  Runbook.fromObject({ runbook: { name: 'x' }, steps: [{ id: 'a', kind: 'teleport' }] })
  console.log(rb.definitionHash, inline.stepIds, rb.plan({ who: 'alice' }).digest)
}

void main
void planRunbook
void buildRunbook

async function useFlags(): Promise<void> {
  const flags: Flags = await Flags.open('.runward/state.db')
  const path: string = flags.path
  const flag: Flag = await flags.set('restarting', { ttlMs: 600_000, owner: 'deploy-42', reason: 'rolling restart' })
  const renewed: Flag = await flags.renew('restarting', { ttlMs: 600_000, owner: 'deploy-42' })
  const found: Flag | null = await flags.get('restarting')
  const names: string[] = (await flags.list()).map((f) => f.name)
  const cleared: boolean = (await flags.clear('restarting', 'deploy-42')) || (await flags.clear('draining'))
  const held: Flag[] = await flags.requirePresent(['restarting'])
  try {
    await flags.requireAbsent(['lockdown', 'restarting'])
  } catch (err) {
    if (err instanceof RunwardError && err.code === 'conflict') console.log(err.message)
  }
  const options: LockdownOptions = { owner: 'admin', reason: 'suspicious logins', ttlMs: 3_600_000, codeTtlMs: 600_000 }
  let code: string = await flags.lockdown(options)
  code = await flags.rotateUnlockCode({ code, ttlMs: 600_000 })
  code = await flags.rotateUnlockCode({ overrideReason: 'lost', who: 'bob' })
  const status: LockdownStatus = await flags.lockdownStatus()
  const generation: number | undefined = status.code?.generation
  const ended: Flag | null = await flags.unlock(code).catch((err: RunwardError) => {
    const why: ErrorCode = err.code
    console.log(why === 'policy_denied' ? 'wrong code' : why === 'conflict' ? 'expired' : why)
    return null
  })
  console.log(path, flag.expires_at, renewed.set_at, found?.reason, names, cleared, held, generation, ended)
}

void useFlags

async function useSchedulesAndRuns(): Promise<void> {
  const scheduler: Scheduler = await Scheduler.fromConfig('runward.toml')
  const synced: SyncReport = await scheduler.sync()
  const statuses: ScheduleStatus[] = await scheduler.list()
  for (const s of statuses) console.log(s.name, s.spec, s.time_zone, s.next_due, s.last_fire?.status)
  const report: TickReport = await scheduler.tick(Date.now())
  const later: TickReport = await scheduler.tick()
  const runIds: string[] = report.claimed.map((c) => c.run_id)
  const reasons: string[] = [...report.skipped, ...report.missed].map((r) => r.reason)

  const runs: Runs = await Runs.open('.runward/state.db')
  const status: RunStatusName[] = ['queued', 'failed']
  const options: RunListOptions = { status, sinceMs: 86_400_000, runbook: 'controlled-restart', limit: 10 }
  const listed: Run[] = await runs.list(options)
  const all: Run[] = await runs.list()
  const starters: (string | null)[] = all.map((r) => r.started_by)
  const details: RunDetails = await runs.show(runIds[0])
  const kinds: string[] = details.events.map((e) => e.kind)
  const markdown: string = await runs.export(runIds[0])
  const json: string = await runs.export(runIds[0], 'json')
  const chain: ChainReport = await runs.verify(runIds[0])
  const intact: boolean = chain.first_bad === null
  await runs.show('missing').catch((err: RunwardError) => console.log(err.code === 'not_found'))
  console.log(synced.added, later.now, reasons, listed, starters, kinds, markdown, json, intact, runs.path, scheduler.config)
}

void useSchedulesAndRuns

async function useEngine(): Promise<void> {
  const snapshot: CustomStep = (ctx: CustomStepContext, params) => ({
    summary: `snapshot of ${params.target} (${ctx.runId}/${ctx.stepId}#${ctx.attempt})`,
    key: ctx.idempotencyKey,
  })
  const options: EngineOpenOptions = {
    owner: 'worker-1',
    leaseTtlMs: 30_000,
    config: 'runward.toml',
    steps: {
      snapshot,
      verify: async (_ctx, params) => `verified ${String(params.target)}`,
      noop: () => undefined,
    },
  }
  const engine: Engine = await Engine.open('.runward/state.db', options)
  const bare: Engine = await Engine.open('.runward/state.db')
  // @ts-expect-error custom steps are functions
  await Engine.open('.runward/state.db', { steps: { snapshot: 'snapshot.sh' } })
  const rb = Runbook.load('controlled-restart.toml')
  const seqs: number[] = []
  const outcome: RunOutcome = await engine.run(rb, { service_url: 'http://127.0.0.1:9000' }, {
    startedBy: 'alice',
    onEvent: (event: RunEvent) => seqs.push(event.seq),
  })
  const status: RunStatusName = outcome.run.status
  const waiting: Approval | undefined = outcome.approval
  const id: string = outcome.run.id
  const created: Run = await bare.create(rb, null, { startedBy: 'cron' })
  const pending: Approval = await engine.pendingApproval(id)
  const approved: Approval = await engine.approve(id, 'bob', 'ok')
  const denied: Approval = await engine.deny(id, 'carol')
  const resumed: RunOutcome = await engine.resume(id, rb, {
    overrideDefinition: true,
    by: 'ops',
    reason: 'fixed',
    onEvent: (e) => console.log(e.kind, e.data, e.at),
  })
  const retried: RunOutcome = await engine.retry(id, rb, 'bob')
  const skipped: RunOutcome = await engine.skip(id, rb, 'bob', 'done by hand')
  const cancelled: RunOutcome = await engine.cancel(id, rb, 'bob', 'wrong window')
  const sweep: Sweep = await engine.sweep()
  const orphans: string[] = sweep.orphaned.map((r) => r.id)
  const source: string | null = await engine.sourceOf(id)
  await engine.approve(id, 'mallory').catch((err: RunwardError) => console.log(err.code === 'policy_denied'))
  console.log(status, waiting, created, pending, approved.status, denied.denial, resumed, retried, skipped)
  console.log(cancelled, orphans, sweep.approvals_timed_out, source, engine.owner, engine.path, seqs)
}

void useEngine
