/**
 * What must never cross from one request to the next on a shared pool: a cancel aimed at a backend that
 * now serves someone else, an open transaction, session state set through a reserved connection, a
 * statement still running on a connection given back, a pool reopened during shutdown, connections opened
 * beside the pool.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closePools, poolStats } from '../../src'
import { backends, poolApp } from '../support/pool-app'
import { whileLocked as lockFor, sleep, stack } from '../support/stack'

const APP = 'hp-poolsafe'
const direct = { url: stack.directUrl, mode: 'direct' as const }
const one = { size: 1, overflow: 0, timeout: 5 }

afterEach(async () => {
  await closePools({ timeout: 2 })
})

const within = <T>(p: T | Promise<T>, ms: number) =>
  Promise.race([p, sleep(ms).then(() => 'timeout' as const)])

const whileLocked = <T>(ms: number, fn: () => Promise<T>) => lockFor('poolsafe_lock', ms, fn)

describe('a shared pool keeps requests apart', () => {
  it.each([
    ['a statement', '/sleep/3'],
    ['sql.begin', '/hold/3'],
    ['a reserved connection', '/reserved/3'],
  ])(
    'a connection whose statement was cancelled (request aborted, %s) never goes back to the pool',
    async (_, path) => {
      const { app } = poolApp(`${APP}-cancel`, { ...direct, pool: one })
      app.get('/reserved/:s', async (c) => {
        const r = await c.var.sql.reserve()
        try {
          return c.json((await r`select pg_sleep(${Number(c.req.param('s'))}), 1 as n`)[0])
        } finally {
          r.release()
        }
      })
      const before = (await (await app.request('/pid')).json()).pid as number
      const ac = new AbortController()
      const aborted = app.request(new Request(`http://localhost${path}`, { signal: ac.signal }))
      await sleep(300)
      // B waits for the only connection while A is cancelled: it must not be the cancel's victim.
      const waiting = app.request('/sleep/0.3')
      await sleep(50)
      ac.abort()
      expect((await aborted).status).toBe(500)
      const b = await waiting
      expect(b.status).toBe(200)
      const after = (await (await app.request('/pid')).json()).pid as number
      expect(after).not.toBe(before)
      expect(poolStats()[0]).toMatchObject({ open: 1, inUse: 0 })
    },
  )

  it('a statement cancelled at queryTimeout: its connection leaves the pool too', async () => {
    const { app } = poolApp(`${APP}-qtimeout`, { ...direct, queryTimeout: 0.3, pool: one })
    const before = (await (await app.request('/pid')).json()).pid as number
    const res = await app.request('/sleep/3')
    expect(await res.json()).toMatchObject({ error: { code: 'QUERY_TIMEOUT' } })
    const after = (await (await app.request('/pid')).json()).pid as number
    expect(after).not.toBe(before)
    expect(poolStats()[0]).toMatchObject({ open: 1, inUse: 0 })
  })

  for (const [name, options] of [
    ['direct', direct],
    ['PgBouncer', { url: stack.databaseUrl }],
  ] as const) {
    it(`a bare BEGIN (or COMMIT, SAVEPOINT…) outside sql.begin is refused (${name})`, async () => {
      const { app } = poolApp(`${APP}-begin`, { ...options, pool: one })
      const codes: string[] = []
      app.get('/dirty', async (c) => {
        for (const run of [
          () => c.var.sql`begin`,
          () => c.var.sql`  START  transaction isolation level serializable`,
          () => c.var.sql.unsafe('select 1; commit'),
          () => c.var.sql.unsafe('savepoint a'),
          () => c.var.sql`rollback`,
          () => c.var.sql`end`,
        ])
          await run().catch((e) => codes.push(e.code))
        const tx = await c.var.sql.begin(async (t) => (await t`select 1 as n`)[0])
        return c.json(tx)
      })
      app.get('/next', async (c) =>
        c.json((await c.var.sql`select txid_current_if_assigned() as tx, ${'start'}::text as s`)[0]),
      )
      const res = await app.request('/dirty')
      expect(res.status).toBe(200)
      expect(codes).toEqual(Array(6).fill('POOL_UNSUPPORTED'))
      expect(await (await app.request('/next')).json()).toEqual({ tx: null, s: 'start' })
    })
  }

  it('a pooled reserved connection exposes only what a ReservedSql has', async () => {
    const { app } = poolApp(`${APP}-rsurface`, { ...direct, pool: one })
    app.get('/r', async (c) => {
      const r = (await c.var.sql.reserve()) as any
      const codes: string[] = []
      try {
        for (const m of ['begin', 'end', 'close', 'listen', 'subscribe', 'reserve', 'largeObject'])
          await Promise.resolve()
            .then(() => r[m]((tx: any) => tx`set search_path to pg_catalog`))
            .catch((e) => codes.push(`${m}:${e.code}`))
        await r`begin`
        await r`select 1`
        await r`commit`
      } finally {
        r.release()
      }
      return c.json(codes)
    })
    app.get('/sp', async (c) => c.json((await c.var.sql`show search_path`)[0]))
    const res = await app.request('/r')
    expect(await res.json()).toEqual(
      ['begin', 'end', 'close', 'listen', 'subscribe', 'reserve', 'largeObject'].map(
        (m) => `${m}:POOL_UNSUPPORTED`,
      ),
    )
    expect((await (await app.request('/sp')).json()).search_path).toBe('"$user", public')
    expect(poolStats()[0]).toMatchObject({ open: 1, idle: 1 })
  })

  it('a transaction left open on a reserved connection is rolled back before it goes back (any statement)', async () => {
    const { app } = poolApp(`${APP}-rrollback`, { ...direct, pool: one })
    app.get('/open', async (c) => {
      const r = await c.var.sql.reserve()
      await r.unsafe('select 1; begin')
      r.release()
      return c.text('left open')
    })
    app.get('/fresh', async (c) =>
      // In a transaction left open 200 ms ago, now() (its start) lags behind the statement's time.
      c.json((await c.var.sql`select statement_timestamp() - now() < interval '100 ms' as fresh`)[0]),
    )
    expect((await app.request('/open')).status).toBe(200)
    await sleep(200)
    expect(await (await app.request('/fresh')).json()).toMatchObject({ fresh: true })
  })

  it('Promise.all on a pooled reserved connection through app_pool1 does not hang (one in flight)', async () => {
    const { app } = poolApp(`${APP}-rgate`, { url: stack.pool1Url, inlineParams: false, pool: one })
    app.get('/r', async (c) => {
      const r = await c.var.sql.reserve()
      try {
        const rows = await Promise.all([
          r`select 1 as i`,
          r`select count(*)::int + ${1} as i from poolsafe_lock`,
        ])
        return c.json(rows.map((x) => x[0]!.i))
      } finally {
        r.release()
      }
    })
    await whileLocked(0, async () => {})
    expect((await app.request('/r')).status).toBe(200) // the pooled connection is open
    const res = await whileLocked(300, () => within(app.request('/r'), 8000))
    expect(res).not.toBe('timeout')
    expect(await (res as Response).json()).toEqual([1, 1])
  })

  it('a reserved connection goes back only once its statement settled', async () => {
    const { app } = poolApp(`${APP}-rflight`, { url: stack.pool1Url, inlineParams: false, pool: one })
    let finished = false
    app.get('/leave', async (c) => {
      const r = await c.var.sql.reserve()
      r`select pg_sleep(0.8), 1 as n`.then(() => (finished = true)).catch(() => {})
      await sleep(50)
      return c.text('ok')
    })
    expect((await app.request('/leave')).status).toBe(200)
    // The request's close waited for the statement before the connection went back.
    expect(finished).toBe(true)
    expect(poolStats()[0]).toMatchObject({ inUse: 0, idle: 1 })
    expect((await app.request('/one')).status).toBe(200)
  })

  it('breaking out of a cursor gives the connection back only after the portal is closed', async () => {
    const { app } = poolApp(`${APP}-cursor`, { url: stack.pool1Url, inlineParams: false, pool: one })
    app.get('/cur', async (c) => {
      let n = 0
      for await (const rows of c.var.sql`select generate_series(1, 100000) as x`.cursor(10)) {
        n += rows.length
        break
      }
      // The portal's Close is on its way: the connection is still leased until its ReadyForQuery.
      const held = poolStats()[0]!.inUse
      return c.json({ n, held })
    })
    app.get('/b', async (c) =>
      c.json((await c.var.sql`select count(*)::int + ${1} as i from poolsafe_lock`)[0]),
    )
    await whileLocked(0, async () => {})
    expect(await (await app.request('/cur')).json()).toEqual({ n: 10, held: 1 })
    expect(poolStats()[0]).toMatchObject({ inUse: 0, idle: 1 })
    const res = await whileLocked(300, () =>
      within(
        Promise.all([
          (async () => (await app.request('/cur')).json())(),
          sleep(5).then(async () => (await app.request('/b')).json()),
        ]),
        8000,
      ),
    )
    expect(res).toEqual([{ n: 10, held: 1 }, { i: 1 }])
  })

  it('closePools(): a request during the grace period gets POOL_CLOSED and opens no pool', async () => {
    const app = `${APP}-close`
    const { app: server } = poolApp(app, { ...direct, pool: one })
    expect((await server.request('/one')).status).toBe(200)
    const running = server.request('/sleep/0.5')
    await sleep(100)
    const closing = closePools({ timeout: 3 })
    await sleep(50)
    const late = await server.request('/one')
    expect(late.status).toBe(503)
    expect(await late.json()).toMatchObject({ error: { code: 'POOL_CLOSED' } })
    await closing
    expect((await running).status).toBe(200)
    expect(poolStats()).toEqual([])
    expect(await backends(app)).toEqual([])
    // Afterwards a request opens a new pool.
    expect((await server.request('/one')).status).toBe(200)
  })

  it('listen, subscribe, largeObject, end and close are refused on c.var.sql with a pool (direct mode)', async () => {
    const app = `${APP}-outside`
    const { app: server } = poolApp(app, { ...direct, pool: one })
    server.get('/outside', async (c) => {
      const sql = c.var.sql as any
      const codes: string[] = []
      for (const [m, args] of [
        ['listen', ['poolsafe', () => {}]],
        ['subscribe', ['*', () => {}]],
        ['largeObject', []],
        ['end', []],
        ['close', []],
      ] as const)
        await Promise.resolve()
          .then(() => sql[m](...args))
          .catch((e) => codes.push(`${m}:${e.code}`))
      return c.json(codes)
    })
    expect(await (await server.request('/outside')).json()).toEqual(
      ['listen', 'subscribe', 'largeObject', 'end', 'close'].map((m) => `${m}:POOL_UNSUPPORTED`),
    )
    expect((await server.request('/one')).status).toBe(200)
    expect((await backends(app)).length).toBe(1)
  })
})
