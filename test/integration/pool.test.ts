import { Hono } from 'hono'
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { closePools, type PoolerVariables, pooler, poolStats } from '../../src'
import { backends, poolApp, waitFor } from '../support/pool-app'
import { showClients, sleep, stack, waitForNoClients, whileLocked } from '../support/stack'

const APP = 'hp-pool'

afterEach(async () => {
  await closePools({ timeout: 5 })
  expect(poolStats()).toEqual([])
})

describe('a shared pool: size, overflow, timeout', () => {
  it('400 requests at concurrency 40 with size 4, overflow 2: all answered, never more than 6 connections, 4 kept', async () => {
    const app = `${APP}-burst`
    const { app: server } = poolApp(app, { pool: { size: 4, overflow: 2 } })
    let sampling = true
    let most = 0
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, (await showClients(app)).length)
        await sleep(20)
      }
    })()
    let next = 0
    const statuses: number[] = []
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next < 400) {
          next++
          const res = await server.request(next % 10 ? '/one' : '/sleep/0.02')
          statuses.push(res.status)
          await res.arrayBuffer()
        }
      }),
    )
    sampling = false
    await sampler
    expect(statuses).toHaveLength(400)
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(6)
    // The overflow is closed as soon as it is idle: 2 s after the burst at most `size` remain.
    await sleep(2000)
    expect((await showClients(app)).length).toBeLessThanOrEqual(4)
    const [stats] = poolStats()
    expect(stats).toMatchObject({ host: '127.0.0.1', mode: 'transaction', size: 4, overflow: 2, inUse: 0 })
    expect(stats!.open).toBeLessThanOrEqual(4)
    expect(stats!.open).toBeGreaterThan(0)
  })

  it('POOL_TIMEOUT (503, Retry-After) when a transaction holds the only connection longer than timeout', async () => {
    const { app } = poolApp(`${APP}-timeout`, { pool: { size: 1, overflow: 0, timeout: 0.5 } })
    const holding = app.request('/hold/2')
    await sleep(300)
    const started = Date.now()
    const res = await app.request('/one')
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(await res.json()).toMatchObject({ error: { code: 'POOL_TIMEOUT' } })
    expect(Date.now() - started).toBeLessThan(1500) // timeout 0.5 s + 1 s for a loaded machine
    const held = await holding
    expect(held.status).toBe(200)
    expect(await held.json()).toEqual({ n: 2 })
    // The connection is free again.
    expect((await app.request('/one')).status).toBe(200)
  })

  it('a waiting request gets the connection as soon as it is returned', async () => {
    const { app } = poolApp(`${APP}-wait`, { pool: { size: 1, overflow: 0, timeout: 10 } })
    const holding = app.request('/hold/0.3')
    await sleep(100)
    const [a, b] = await Promise.all([app.request('/one'), holding])
    expect([a.status, b.status]).toEqual([200, 200])
    expect(poolStats()[0]).toMatchObject({ open: 1, idle: 1, inUse: 0, waiting: 0 })
  })
})

describe('transaction-mode rules across requests', () => {
  // The pipelining hang (see transaction-mode.test.ts): two statements pipelined on one PgBouncer client,
  // the second waiting for a lock, lose their replies. Requests sharing a pool must never pipeline.
  const withTableLocked = <T>(fn: () => Promise<T>) => whileLocked('poollock', 300, fn)
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => 'timeout' as const)])

  it('reproduced: one raw postgres.js pool shared by requests pipelines them through app_pool1 and hangs', async () => {
    const shared = postgres(stack.pool1Url, {
      max: 1,
      prepare: false,
      fetch_types: false,
      connection: { application_name: `${APP}-raw` },
    })
    const app = new Hono()
    app.onError((_e, c) => c.text('destroyed', 500)) // the hung statement is destroyed at the end
    app.get('/a', async (c) => c.json((await shared`select 1 as i`)[0]))
    app.get('/b', async (c) => c.json((await shared`select count(*)::int + ${1} as i from poollock`)[0]))
    await shared`select 0`
    const result = await withTableLocked(() => {
      const all = Promise.all([app.request('/a'), app.request('/b')])
      all.catch(() => {})
      return within(all, 2000)
    })
    expect(result).toBe('timeout')
    await shared.end({ timeout: 0 })
  })

  it('fixed: the same requests through a shared pool of one connection (app_pool1) complete', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.pool1Url,
        applicationName: `${APP}-pipe`,
        pool: { size: 1, overflow: 0, checkBudget: false },
      }),
    )
    app.get('/a', async (c) => c.json((await c.var.sql`select 1 as i`)[0]))
    app.get('/b', async (c) => c.json((await c.var.sql`select count(*)::int + ${1} as i from poollock`)[0]))
    expect((await app.request('/a')).status).toBe(200)
    const result = await withTableLocked(() =>
      within(
        Promise.all(['/a', '/b', '/a', '/b', '/a'].map(async (p) => (await (await app.request(p)).json()).i)),
        10_000,
      ),
    )
    expect(result).toEqual([1, 1, 1, 1, 1])
  })

  it('Promise.all across 30 requests, each with its own Promise.all, through app_pool1 and a pool of 3', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.pool1Url,
        applicationName: `${APP}-pipe2`,
        max: 2,
        pool: { size: 3, overflow: 0, checkBudget: false },
      }),
    )
    app.get('/:i', async (c) => {
      const i = Number(c.req.param('i'))
      const rows = await Promise.all([c.var.sql`select ${i}::int as i`, c.var.sql.unsafe(`select ${i} as i`)])
      return c.json(rows.map((r) => r[0]?.i))
    })
    const all = Promise.all(Array.from({ length: 30 }, async (_, i) => (await app.request(`/${i}`)).json()))
    const result = await within(all, 15_000)
    expect(result).toEqual(Array.from({ length: 30 }, (_, i) => [i, i]))
  })

  it('session state is refused on a shared pool in direct mode too (the guard is on)', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(
      pooler({
        url: stack.directUrl,
        mode: 'direct',
        applicationName: `${APP}-guard`,
        pool: { checkBudget: false },
      }),
    )
    app.onError((err, c) => c.json({ code: (err as { code?: string }).code }, 500))
    app.get('/', async (c) => c.json(await c.var.sql`set search_path to public`))
    expect(await (await app.request('/')).json()).toEqual({ code: 'UNSAFE_IN_TRANSACTION_MODE' })
  })
})

describe('closePools', () => {
  it('waits for a running request, then closes everything: SHOW CLIENTS and pg_stat_activity empty', async () => {
    const viaBouncer = poolApp(`${APP}-close`, { pool: { size: 2 } })
    const direct = poolApp(`${APP}-close-direct`, { url: stack.directUrl, mode: 'direct', pool: { size: 2 } })
    await Promise.all([
      viaBouncer.app.request('/one'),
      direct.app.request('/one'),
      direct.app.request('/one'),
    ])
    expect((await showClients(`${APP}-close`)).length).toBeGreaterThan(0)
    expect((await backends(`${APP}-close-direct`)).length).toBeGreaterThan(0)
    const running = direct.app.request('/sleep/0.5')
    await sleep(150)
    await closePools({ timeout: 5 })
    const res = await running
    expect(res.status).toBe(200)
    expect(poolStats()).toEqual([])
    expect(await waitForNoClients(`${APP}-close`, 3000)).toEqual([])
    expect(
      await waitFor(
        () => backends(`${APP}-close-direct`),
        (b) => b.length === 0,
        3000,
      ),
    ).toEqual([])
  })

  it('after its timeout, closes running statements too', async () => {
    const { app } = poolApp(`${APP}-close-hard`, { url: stack.directUrl, mode: 'direct', pool: { size: 1 } })
    const running = app.request('/sleep/5')
    await sleep(300)
    const started = Date.now()
    await closePools({ timeout: 0.2 })
    expect(Date.now() - started).toBeLessThan(4000)
    expect((await running).status).toBeGreaterThanOrEqual(500)
    expect(
      await waitFor(
        () => backends(`${APP}-close-hard`),
        (b) => b.length === 0,
        3000,
      ),
    ).toEqual([])
  })
})
