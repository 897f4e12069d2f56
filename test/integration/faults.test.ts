/**
 * Fault injection against a stack of this file's own (PgBouncer and Postgres are killed and restarted: never
 * the shared stack), with the loopback fault proxy of test/support/ in front of PgBouncer for stalls and cuts.
 * Every test ends with nothing of the app left in PgBouncer's SHOW CLIENTS or running in pg_stat_activity.
 */
import postgres from 'postgres'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Stack } from '../../scripts/stack.ts'
import { closePools, type PoolerEvent, poolStats } from '../../src'
import { probeCount } from '../../src/internal'
import { type FaultProxy, faultProxy } from '../support/fault-proxy'
import {
  type Answer,
  ask,
  bouncerClients,
  bouncerSet,
  faultApp,
  ownStack,
  serverActivity,
  until,
} from '../support/fault-stack'

const APP = 'hp-faults'
let stack: Stack & { control: NonNullable<Stack['control']> }
let proxy: FaultProxy
const bouncerPort = () => Number(new URL(stack.databaseUrl).port)

beforeAll(async () => {
  stack = await ownStack()
  proxy = await faultProxy(bouncerPort())
}, 60_000)
afterAll(async () => {
  await proxy?.close()
  await stack?.stop()
})
afterEach(async () => {
  proxy.resume()
  proxy.delay(0)
  await stack.control.startPostgres()
  await stack.control.startBouncer()
  // Nothing of the app left behind: no client in PgBouncer, no statement running on the server.
  expect(await until(() => bouncerClients(stack, APP))).toEqual([])
  expect(await until(() => serverActivity(stack, 'hpfault'))).toEqual([])
})

const quiet = () => vi.spyOn(console, 'error').mockImplementation(() => {})

describe('a live connection dies', () => {
  it('PgBouncer killed while a statement runs: 503 CONNECTION_LOST with Retry-After, at once', async () => {
    quiet()
    const events: PoolerEvent[] = []
    const app = faultApp({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e) })
    expect((await ask(app, '/one')).status).toBe(200)
    const running = ask(app, '/sleep/5/hpfault1')
    await new Promise((r) => setTimeout(r, 300))
    const killedAt = Date.now()
    await stack.control.killBouncer('SIGKILL')
    const a = await running
    expect(a.status).toBe(503)
    expect(a.body).toEqual({
      error: { code: 'CONNECTION_LOST', message: 'The connection to the database was lost. Retry shortly.' },
    })
    expect(a.retryAfter).toBe('1')
    // Answered as soon as the socket closed (issue: 0.5 s), not after closeTimeout (5 s) on a dead socket.
    expect(Date.now() - killedAt).toBeLessThan(1000)
    expect(events.filter((e) => e.type === 'close').map((e) => e.type === 'close' && e.reason)).toEqual([
      'done',
      'error',
    ])

    // While it is down: 503s (refused), nothing hangs.
    const down = await Promise.all([1, 2, 3].map(() => ask(app, '/one')))
    for (const d of down) {
      expect(d.status).toBe(503)
      expect(d.ms).toBeLessThan(5000)
    }
    // Restarted: the next request is served.
    await stack.control.startBouncer()
    const back = await ask(app, '/one')
    expect(back.status).toBe(200)
    expect(back.ms).toBeLessThan(1000)
    // The statement that ran when PgBouncer died is gone too (its server connection was closed).
  })

  it('PgBouncer killed under load: every request answers 200 or 503, none hangs, service comes back', async () => {
    quiet()
    const app = faultApp({ url: stack.databaseUrl, applicationName: APP })
    const answers: Answer[] = []
    let stop = false
    const worker = async () => {
      while (!stop) answers.push(await ask(app, '/sleep/0.02/hpfault2'))
    }
    const workers = Array.from({ length: 8 }, worker)
    await new Promise((r) => setTimeout(r, 300))
    await stack.control.killBouncer('SIGKILL')
    await new Promise((r) => setTimeout(r, 300))
    await stack.control.startBouncer()
    const restartedAt = Date.now()
    let firstOk = 0
    while (!firstOk && Date.now() - restartedAt < 5000) {
      const a = await ask(app, '/one')
      if (a.status === 200) firstOk = Date.now()
    }
    stop = true
    await Promise.all(workers)
    expect(firstOk).toBeGreaterThan(0)
    expect(firstOk - restartedAt).toBeLessThan(1000) // issue: 200 ms; margin for a loaded 2-core machine
    const statuses = new Set(answers.map((a) => a.status))
    expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true)
    expect(statuses.has(503)).toBe(true)
    expect(answers.every((a) => a.ms < 5000)).toBe(true)
  })

  it('Postgres stopped behind PgBouncer: 503 or 504 with a code, nothing hangs; restarted: served again', async () => {
    quiet()
    const app = faultApp({ url: stack.databaseUrl, applicationName: APP, queryTimeout: 2 })
    expect((await ask(app, '/one')).status).toBe(200)
    await stack.control.stopPostgres('SIGINT')
    const down = await Promise.all([1, 2, 3].map(() => ask(app, '/one')))
    for (const d of down) {
      expect([503, 504]).toContain(d.status)
      expect(['CONNECTION_LOST', 'QUERY_TIMEOUT']).toContain(d.body.error.code)
      expect(d.ms).toBeLessThan(6000)
    }
    await stack.control.startPostgres()
    let ok: Answer | undefined
    const started = Date.now()
    while (Date.now() - started < 10_000) {
      ok = await ask(app, '/one')
      if (ok.status === 200) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(ok?.status).toBe(200)
  })

  it("Postgres down behind PgBouncer (its default server_login_retry, 15 s): the first request 503 CONNECTION_LOST within connectTimeout with PgBouncer's text, later ones at once", async () => {
    quiet()
    await bouncerSet(stack, 'server_login_retry', '15')
    try {
      const events: PoolerEvent[] = []
      const app = faultApp({
        url: stack.databaseUrl,
        applicationName: APP,
        connectTimeout: 2,
        queryTimeout: 30,
        onEvent: (e) => events.push(e),
      })
      expect((await ask(app, '/one')).status).toBe(200)
      await stack.control.stopPostgres('SIGINT')
      // PgBouncer logs the client in itself and holds the statement while it cannot reach Postgres; after
      // connectTimeout / 2 of silence a probe connection gets PgBouncer's "server login has been failing".
      const first = await ask(app, '/one')
      expect(first.status).toBe(503)
      expect(first.body.error.code).toBe('CONNECTION_LOST')
      expect(first.retryAfter).toBe('1')
      expect(first.ms).toBeGreaterThanOrEqual(900) // the probe waits connectTimeout / 2 of silence
      expect(first.ms).toBeLessThan(2000 + 1000) // within connectTimeout, plus margin for a loaded machine
      const lost = events.find((e) => e.type === 'error')
      expect(lost?.type === 'error' && lost.message).toMatch(/server login has been failing/)
      // PgBouncer has recorded the failed server login: it refuses at once until server_login_retry passed.
      for (let i = 0; i < 2; i++) {
        const later = await ask(app, '/one')
        expect(later.status).toBe(503)
        expect(later.body.error.code).toBe('CONNECTION_LOST')
        expect(later.retryAfter).toBe('1')
        expect(later.ms).toBeLessThan(1000)
      }
    } finally {
      await bouncerSet(stack, 'server_login_retry', '1')
    }
  })

  it('the probe never fails a slow statement or one queued behind another (pool_size 1): both answer 200', async () => {
    const events: PoolerEvent[] = []
    const options = {
      url: stack.pool1Url,
      applicationName: APP,
      connectTimeout: 1, // the probe asks after 0.5 s of silence
      onEvent: (e: PoolerEvent) => events.push(e),
    }
    const probes = probeCount()
    const a = ask(faultApp(options), '/sleep/2/hpfault9')
    await new Promise((r) => setTimeout(r, 200))
    // B waits in PgBouncer's queue behind A; its probe waits there too and says nothing.
    const b = ask(faultApp(options), '/sleep/0.1/hpfault9')
    const [ra, rb] = await Promise.all([a, b])
    expect(ra.status).toBe(200)
    expect(rb.status).toBe(200)
    expect(rb.ms).toBeGreaterThan(1500) // it really waited behind A, past its probe
    expect(probeCount()).toBeGreaterThan(probes) // the probe did run, and said nothing
    expect(events.filter((e) => e.type === 'error')).toEqual([])
  })

  it('shared pool: a statement whose server connection is terminated — 503 with the text, and the next statement on that slot is served', async () => {
    quiet()
    const events: PoolerEvent[] = []
    const app = faultApp({
      url: stack.databaseUrl,
      applicationName: APP,
      pool: { size: 1, overflow: 0, checkBudget: false },
      onEvent: (e) => events.push(e),
    })
    const su = postgres(stack.superUrl, { max: 1, onnotice: () => {} })
    try {
      expect((await ask(app, '/one')).status).toBe(200)
      const running = ask(app, '/sleep/5/hpfault10')
      let pids: { pid: number }[] = []
      for (let i = 0; i < 50 && !pids.length; i++) {
        await new Promise((r) => setTimeout(r, 50))
        pids = await serverActivity(stack, 'hpfault10')
      }
      expect(pids).toHaveLength(1)
      await su`select pg_terminate_backend(${pids[0]!.pid})`
      const a = await running
      expect(a.status).toBe(503)
      expect(a.body.error.code).toBe('CONNECTION_LOST')
      const lost = events.find((e) => e.type === 'error')
      expect(lost?.type === 'error' && lost.message).toMatch(/server conn crashed|terminating connection/)
      // The same pooled slot, Postgres up: served. (postgres.js alone rejects the connection's next statement
      // with the old FATAL after it reconnected.)
      const next = await ask(app, '/one')
      expect(next.status).toBe(200)
      expect(poolStats()[0]).toMatchObject({ open: 1, inUse: 0 })
    } finally {
      await su.end({ timeout: 1 })
      await closePools({ timeout: 1 })
    }
  })

  it("Postgres restarted while a statement runs: 503 CONNECTION_LOST with PgBouncer's FATAL text", async () => {
    quiet()
    const events: PoolerEvent[] = []
    const app = faultApp({ url: stack.databaseUrl, applicationName: APP, onEvent: (e) => events.push(e) })
    const running = ask(app, '/sleep/5/hpfault3')
    await new Promise((r) => setTimeout(r, 300))
    await stack.control.stopPostgres('SIGINT')
    const a = await running
    expect(a.status).toBe(503)
    expect(a.body.error.code).toBe('CONNECTION_LOST')
    expect(a.ms).toBeLessThan(2000)
    // PgBouncer's last words before it closed (kept by the connect layer, dropped by postgres.js alone).
    const lost = events.find((e) => e.type === 'error')
    expect(lost?.type === 'error' && lost.message).toMatch(/server conn crashed|terminating connection/)
  })

  it('the proxy cuts the connection mid-statement: 503 CONNECTION_LOST at once', async () => {
    quiet()
    const app = faultApp({ url: proxy.url(stack.databaseUrl), applicationName: APP })
    const running = ask(app, '/sleep/3/hpfault4')
    await new Promise((r) => setTimeout(r, 300))
    const cutAt = Date.now()
    proxy.cut()
    const a = await running
    expect(a.status).toBe(503)
    expect(a.body.error.code).toBe('CONNECTION_LOST')
    expect(Date.now() - cutAt).toBeLessThan(1000)
  })
})

describe('saturation', () => {
  it('max_client_conn reached: every request answers 503 POOLER_SATURATED with Retry-After, none hangs', async () => {
    const log = quiet()
    const holders = [0, 1].map(() => postgres(stack.tinyUrl, { max: 1, fetch_types: false, prepare: false }))
    try {
      await Promise.all(holders.map((h) => h`select 1`))
      const app = faultApp({ url: stack.tinyUrl, applicationName: APP })
      const answers = await Promise.all(Array.from({ length: 30 }, () => ask(app, '/one')))
      for (const a of answers) {
        expect(a.status).toBe(503)
        expect(a.body.error.code).toBe('POOLER_SATURATED')
        expect(a.retryAfter).toBe('1')
        expect(a.ms).toBeLessThan(5000)
      }
      // 30 failures, one log line (at most one per code per 10 s).
      const lines = log.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('POOLER_SATURATED'))
      expect(lines).toHaveLength(1)
    } finally {
      await Promise.all(holders.map((h) => h.end({ timeout: 0 })))
    }
  })
})

describe('deadlines', () => {
  it('stall at connect: 503 CONNECT_TIMEOUT within connectTimeout', async () => {
    quiet()
    const app = faultApp({ url: proxy.url(stack.databaseUrl), applicationName: APP, connectTimeout: 1 })
    proxy.stall(true)
    const a = await ask(app, '/one')
    expect(a.status).toBe(503)
    expect(a.body.error.code).toBe('CONNECT_TIMEOUT')
    expect(a.ms).toBeLessThan(1000 + 1500) // connectTimeout + margin
  })

  it('stall mid-statement: 504 QUERY_TIMEOUT at the deadline, and the statement is cancelled on the server', async () => {
    quiet()
    const app = faultApp({ url: proxy.url(stack.databaseUrl), applicationName: APP, queryTimeout: 1 })
    const running = ask(app, '/sleep/30/hpfault5')
    await new Promise((r) => setTimeout(r, 300))
    proxy.stall() // the live connection stops forwarding; the CancelRequest's new connection still passes
    const a = await running
    expect(a.status).toBe(504)
    expect(a.body).toEqual({
      error: { code: 'QUERY_TIMEOUT', message: 'The database did not answer in time.' },
    })
    // queryTimeout + 1.5 s: the cancel lands (or the socket is destroyed 1 s after the deadline), plus margin.
    expect(a.ms).toBeLessThan(1000 + 1500)
    expect(await until(() => serverActivity(stack, 'hpfault5'), 3000)).toEqual([])
  })

  it('a slow statement past queryTimeout: QUERY_TIMEOUT, cancelled on the server; a fast one passes', async () => {
    quiet()
    const app = faultApp({ url: stack.databaseUrl, applicationName: APP, queryTimeout: 1 })
    expect((await ask(app, '/sleep/0.1/hpfault6')).status).toBe(200)
    const a = await ask(app, '/sleep/10/hpfault6')
    expect(a.status).toBe(504)
    expect(a.body.error.code).toBe('QUERY_TIMEOUT')
    expect(a.ms).toBeLessThan(1000 + 1500)
    expect(await until(() => serverActivity(stack, 'hpfault6'), 2000)).toEqual([])
  })
})

describe('aborts', () => {
  it('pool_size 1: A running, B queued in PgBouncer, both aborted — nothing of B runs after 1 s', async () => {
    const app = faultApp({ url: stack.pool1Url, applicationName: APP })
    const a = new AbortController()
    const b = new AbortController()
    const ra = ask(app, '/sleep/10/hpfaultA', { signal: a.signal }).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    const rb = ask(app, '/sleep/10/hpfaultB', { signal: b.signal }).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    expect((await serverActivity(stack, 'hpfaultA')).length).toBe(1)
    a.abort()
    b.abort()
    const abortedAt = Date.now()
    await Promise.all([ra, rb])
    // From 1 s after the abort on, neither statement runs on the server (sampled for 2 s).
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - abortedAt))))
    const seen: unknown[] = []
    const until3 = Date.now() + 2000
    while (Date.now() < until3) {
      seen.push(...(await serverActivity(stack, 'hpfaultB')), ...(await serverActivity(stack, 'hpfaultA')))
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(seen).toEqual([])
  })
})
