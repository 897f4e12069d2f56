import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp } from '../../examples/app.ts'
import { poolFromEnv, start } from '../../examples/node/server.ts'
import { closePools, PoolerError, type PoolerVariables, pooler, poolStats } from '../../src'
import { appUrl, checkRoutes, prepareSchema, readExport } from '../support/app-schema'
import { backends, poolApp, superClient, waitFor } from '../support/pool-app'
import { showClients, sleep, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-poolreq'

afterEach(async () => {
  await closePools({ timeout: 5 })
})

describe('c.var.sql on a shared pool stays request-scoped', () => {
  it('a connection killed between requests (pg_terminate_backend) is replaced without a failed request', async () => {
    const app = `${APP}-kill`
    const { app: server } = poolApp(app, {
      url: stack.directUrl,
      mode: 'direct',
      pool: { size: 2, overflow: 0 },
    })
    const first = await Promise.all([server.request('/pid'), server.request('/pid')])
    const pids = await Promise.all(first.map(async (r) => (await r.json()).pid as number))
    expect(new Set(pids).size).toBe(2)
    const su = superClient()
    await su`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${app}`
    await su.end()
    expect(
      await waitFor(
        () => backends(app),
        (b) => b.length === 0,
      ),
    ).toEqual([])
    await sleep(100)
    const after = await Promise.all(Array.from({ length: 6 }, () => server.request('/pid')))
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200])
    const newPids = await Promise.all(after.map(async (r) => (await r.json()).pid as number))
    expect(newPids.some((p) => pids.includes(p))).toBe(false)
    expect(poolStats()[0]).toMatchObject({ open: 2, inUse: 0 })
  })

  it('through PgBouncer too: a killed server connection never fails the next request', async () => {
    const { app } = poolApp(`${APP}-kill-bouncer`, { pool: { size: 1, overflow: 0 } })
    const { pid } = await (await app.request('/pid')).json()
    const su = superClient()
    await su`select pg_terminate_backend(${pid}::int)`
    await su.end()
    await sleep(200)
    const res = await app.request('/one')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ n: 1 })
  })

  it('an aborted request cancels only its own statement; the other request on the pool completes', async () => {
    const { app, events } = poolApp(`${APP}-abort`, {
      url: stack.directUrl,
      mode: 'direct',
      pool: { size: 2 },
    })
    const ac = new AbortController()
    const started = Date.now()
    const aborted = app.request(new Request('http://localhost/sleep/5', { signal: ac.signal }))
    const other = app.request('/sleep/1')
    await sleep(300)
    ac.abort()
    const res = await aborted
    expect(res.status).toBe(500)
    expect(Date.now() - started).toBeLessThan(4000)
    const ok = await other
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ n: 1 })
    const su = superClient()
    const running =
      await su`select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(%' and state = 'active' and application_name = ${`${APP}-abort`}`
    await su.end()
    expect(running[0]?.n).toBe(0)
    expect(events.filter((e) => e.type === 'close').map((e) => (e as { reason: string }).reason)).toContain(
      'abort',
    )
    // The cancelled connection went back to the pool: both remain usable.
    const again = await Promise.all([app.request('/one'), app.request('/one')])
    expect(again.map((r) => r.status)).toEqual([200, 200])
  })

  it('CLIENT_CLOSED after the request; onEvent per request; sql.begin returns its connection', async () => {
    let kept: PoolerVariables['sql'] | undefined
    const { app, events } = poolApp(`${APP}-scope`, { pool: { size: 1, overflow: 0, timeout: 2 } })
    app.get('/keep', async (c) => {
      kept = c.var.sql
      const [a] = await c.var.sql`select 1 as n`
      const b = await c.var.sql.begin(async (tx) => (await tx`select 2 as n`)[0])
      return c.json([a?.n, b?.n])
    })
    expect(await (await app.request('/keep')).json()).toEqual([1, 2])
    expect(() => kept!`select 1`).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }))
    expect(kept!.options.max).toBe(1) // reading properties still works
    expect(events.find((e) => e.type === 'close')).toMatchObject({ used: true, queries: 2, reason: 'done' })
    expect(poolStats()[0]).toMatchObject({ open: 1, idle: 1, inUse: 0 })
  })

  it('without onEvent: a request holding nothing at its end closes at once, one with a statement still running waits for it', async () => {
    let kept: PoolerVariables['sql'] | undefined
    const { app } = poolApp(`${APP}-idle-close`, {
      onEvent: undefined,
      pool: { size: 1, overflow: 0, timeout: 2 },
    })
    app.get('/keep', async (c) => {
      kept = c.var.sql
      return c.json((await c.var.sql`select 1 as n`)[0])
    })
    app.get('/leave', (c) => {
      void c.var.sql`select pg_sleep(0.3), 1 as n`.catch(() => {})
      return c.text('left')
    })
    expect(await (await app.request('/keep')).json()).toEqual({ n: 1 })
    expect(() => kept!`select 1`).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }))
    // The request ends only once its statement gave the connection back (closeTimeout).
    expect(await (await app.request('/leave')).text()).toBe('left')
    expect(poolStats().map((p) => p.inUse)).toEqual([0])
  })

  it('without onEvent: a statement still waiting for a pooled connection at the end of its request gets CLIENT_CLOSED', async () => {
    let waited: Promise<unknown> | undefined
    const { app } = poolApp(`${APP}-idle-queued`, {
      onEvent: undefined,
      pool: { size: 1, overflow: 0, timeout: 5 },
    })
    app.get('/queue', (c) => {
      waited = c.var.sql`select 2 as n`.then(
        () => 'ran',
        (e) => (e as { code?: string }).code,
      )
      return c.text('queued')
    })
    const holding = app.request('/sleep/0.4') // holds the only connection
    await sleep(100)
    expect(await (await app.request('/queue')).text()).toBe('queued')
    expect(await waited).toBe('CLIENT_CLOSED')
    expect((await holding).status).toBe(200)
    expect(poolStats().map((p) => p.waiting)).toEqual([0])
  })

  it('a transaction rolls back on error and its connection serves the next request', async () => {
    const { app } = poolApp(`${APP}-tx`, {
      url: stack.directUrl,
      mode: 'direct',
      pool: { size: 1, overflow: 0 },
    })
    app.get('/fail', async (c) => {
      await c.var.sql`create table if not exists pool_tx (n int)`
      await c.var.sql
        .begin(async (tx) => {
          await tx`insert into pool_tx values (42)`
          throw new Error('rollback')
        })
        .catch(() => {})
      const [row] = await c.var.sql`select count(*)::int as n from pool_tx where n = 42`
      return c.json(row)
    })
    expect(await (await app.request('/fail')).json()).toEqual({ n: 0 })
    expect(await (await app.request('/one')).json()).toEqual({ n: 1 })
  })

  it('recycle: a connection older than recycle seconds is replaced once idle, without a failed request', async () => {
    const app = `${APP}-recycle`
    const { app: server } = poolApp(app, {
      url: stack.directUrl,
      mode: 'direct',
      pool: { size: 1, recycle: 1 },
    })
    const first = (await (await server.request('/pid')).json()).pid as number
    expect(
      await waitFor(
        () => backends(app),
        (b) => !b.includes(first),
        5000,
      ),
    ).not.toContain(first)
    const res = await server.request('/pid')
    expect(res.status).toBe(200)
    expect((await res.json()).pid).not.toBe(first)
  })

  it('a database that is down: 503 CONNECT_FAILED, and the connection goes back to the pool', async () => {
    const down = new URL(stack.directUrl)
    down.port = '1'
    const { app, errors } = poolApp(`${APP}-down`, {
      url: down.toString(),
      mode: 'direct',
      pool: { size: 1 },
    })
    for (let i = 0; i < 2; i++) {
      const res = await app.request('/one')
      expect(res.status).toBe(503)
      expect(await res.json()).toMatchObject({ error: { code: 'CONNECT_FAILED' } })
    }
    expect(errors).toHaveLength(2)
    expect(poolStats()[0]).toMatchObject({ open: 1, inUse: 0, waiting: 0 })
  })

  it('one pool per pooler() and URL, shared by all its requests', async () => {
    const { app } = poolApp(`${APP}-shared`, { url: stack.directUrl, mode: 'direct', pool: { size: 3 } })
    await Promise.all(Array.from({ length: 20 }, () => app.request('/one')))
    const stats = poolStats()
    expect(stats).toHaveLength(1)
    expect(stats[0]).toMatchObject({ mode: 'direct', size: 3 })
    expect(stats[0]!.open).toBeLessThanOrEqual(3)
    expect((await backends(`${APP}-shared`)).length).toBe(stats[0]!.open)
  })
})

describe('sizing and platforms', () => {
  it('warns once when size + overflow exceed the budget for max_connections (40 on the stack: 32)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const app = new Hono<{ Variables: PoolerVariables }>()
      app.use(
        pooler({ url: stack.pool1Url, applicationName: `${APP}-budget`, pool: { size: 30, overflow: 10 } }),
      )
      app.get('/', async (c) => c.json((await c.var.sql`select 1 as n`)[0]))
      expect((await app.request('/')).status).toBe(200)
      await waitFor(
        async () => warn.mock.calls.length,
        (n) => n > 0,
        3000,
      )
      const lines = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('hono-pooler'))
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(
        /pool\.size \+ pool\.overflow = 40 exceeds the budget of 32 .*max_connections = 40/,
      )
      expect(lines[0]).not.toContain(new URL(stack.pool1Url).password)
    } finally {
      warn.mockRestore()
    }
  })

  it('a pool on Vercel is refused (INVALID_OPTIONS) unless allowServerless: true', async () => {
    vi.stubEnv('VERCEL', '1')
    try {
      const { app, errors } = poolApp(`${APP}-vercel`, { pool: { size: 1 } })
      expect((await app.request('/one')).status).toBe(500)
      expect(errors[0]).toBeInstanceOf(PoolerError)
      expect(errors[0]).toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringMatching(/Vercel/) })
      const allowed = poolApp(`${APP}-vercel-ok`, { pool: { size: 1, allowServerless: true } })
      expect((await allowed.app.request('/one')).status).toBe(200)
    } finally {
      vi.unstubAllEnvs()
    }
  })
})

describe('Vercel Fluid compute (allowServerless: true)', () => {
  it('each return to idle hands waitUntil a promise that ends when the idle connections are closed', async () => {
    const app = `${APP}-fluid`
    const handed: Promise<unknown>[] = []
    const key = Symbol.for('@vercel/request-context')
    vi.stubEnv('VERCEL', '1')
    vi.stubGlobal(key, { get: () => ({ waitUntil: (p: Promise<unknown>) => handed.push(p) }) })
    try {
      const { app: server } = poolApp(app, { idleTimeout: 0.5, pool: { size: 2, allowServerless: true } })
      expect((await server.request('/one')).status).toBe(200)
      expect((await server.request('/one')).status).toBe(200)
      // The request closes go there too; the pool's promise keeps the invocation alive until it closed.
      expect(handed.length).toBeGreaterThanOrEqual(3)
      expect((await showClients(app)).length).toBe(1)
      const all = Promise.all(handed)
      expect(await Promise.race([all.then(() => 'done'), sleep(150).then(() => 'pending')])).toBe('pending')
      expect(await Promise.race([all.then(() => 'done'), sleep(5000).then(() => 'timeout')])).toBe('done')
      expect(poolStats()[0]).toMatchObject({ open: 0, idle: 0, inUse: 0 })
      expect(await waitForNoClients(app, 3000)).toEqual([])
      // Used again: a connection reopens on demand.
      expect((await server.request('/one')).status).toBe(200)
    } finally {
      vi.unstubAllEnvs()
      vi.unstubAllGlobals()
    }
  })
})

describe('the Node example with POOL=n', () => {
  it('serves every route from a shared pool; closePools leaves no client in PgBouncer', async () => {
    const app = `${APP}-node`
    await prepareSchema()
    const pool = poolFromEnv('3')
    expect(pool).toEqual({ size: 3, overflow: 1 })
    expect(poolFromEnv(undefined)).toBeUndefined()
    vi.stubEnv('DATABASE_URL', appUrl(app)) // the example reads it per request
    const server = await start({ port: 0, app: createApp({ pool: { ...pool, checkBudget: false } }) })
    try {
      const call = (path: string, init?: RequestInit) => fetch(new URL(path, server.url), init)
      await checkRoutes(call, `pool-${Date.now()}`)
      expect((await readExport(call)).length).toBeGreaterThan(0)
      const [stats] = poolStats()
      expect(stats).toMatchObject({ size: 3, overflow: 1, inUse: 0 })
      expect(stats!.open).toBeLessThanOrEqual(3)
      expect((await showClients(app)).length).toBe(stats!.open)
    } finally {
      await server.close()
      vi.unstubAllEnvs()
    }
    await closePools({ timeout: 5 })
    expect(await waitForNoClients(app, 3000)).toEqual([])
  })
})
