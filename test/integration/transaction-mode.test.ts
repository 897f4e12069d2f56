import { Hono } from 'hono'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { closePools, type PoolerError, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { showClients, sleep, stack, waitForNoClients, whileLocked } from '../support/stack'

const APP = 'hp-txmode'

function appWith(
  route: (sql: PoolerVariables['sql']) => Promise<unknown>,
  max = 1,
  extra: PoolerOptions = {},
) {
  const app = new Hono<{ Variables: PoolerVariables }>()
  const errors: unknown[] = []
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, max, ...extra }))
  app.onError((err, c) => {
    errors.push(err)
    return c.json({ error: { code: (err as { code?: string }).code ?? 'ERR', message: err.message } }, 500)
  })
  app.get('/', async (c) => c.json({ result: await route(c.var.sql) }))
  return { app, errors }
}

/** Resolves with 'timeout' when p has not settled within ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, sleep(ms).then(() => 'timeout' as const)])
}

describe('pipelining across transaction boundaries', () => {
  // Two statements pipelined on one connection: `select 1`, then a parameterized one whose Parse waits for
  // a table lock held by another session. PgBouncer 1.18 releases the server connection at the first
  // ReadyForQuery; the second statement's replies then arrive "when not linked" and are dropped, and the
  // client waits forever. The lock makes the timing deterministic.
  const pipelined = (sql: postgres.Sql) =>
    Promise.all([sql`select 1 as i`, sql`select count(*)::int + ${1} as i from pipelock`]).then((r) =>
      r.map((x) => x[0]?.i),
    )
  const withTableLocked = <T>(fn: () => Promise<T>) => whileLocked('pipelock', 300, fn)

  it('reproduced: plain postgres.js pipelines Promise.all through PgBouncer and hangs', async () => {
    const sql = postgres(stack.databaseUrl, {
      max: 1,
      prepare: false,
      fetch_types: false,
      connection: { application_name: `${APP}-raw` },
    })
    await sql`select 0`
    const result = await withTableLocked(() => {
      const all = pipelined(sql)
      all.catch(() => {})
      return within(all, 2000)
    })
    expect(result).toBe('timeout')
    await sql.end({ timeout: 0 })
  })

  it('fixed: the same Promise.all through c.var.sql completes', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      await c.var.sql`select 0`
      return c.json(await withTableLocked(() => pipelined(c.var.sql)))
    })
    const res = await within(Promise.resolve(app.request('/')), 5000)
    expect(res).not.toBe('timeout')
    expect(await (res as Response).json()).toEqual([1, 1])
  })

  it('fixed: Promise.all of 10 parameterized and 5 simple queries completes', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      const sql = c.var.sql
      const rows = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2 ? sql`select ${i}::int as i` : sql`select ${sql.unsafe(String(i))} as i`,
        ),
      )
      const simple = await Promise.all(Array.from({ length: 5 }, (_, i) => sql.unsafe(`select ${i} as i`)))
      return c.json({ result: [...rows.map((r) => r[0]?.i), ...simple.map((r) => r[0]?.i)] })
    })
    const res = await within(Promise.resolve(app.request('/')), 10_000)
    expect(res).not.toBe('timeout')
    expect(await (res as Response).json()).toEqual({ result: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4] })
  })

  it('with max: 3, up to three connections run side by side and none pipelines', async () => {
    let peak = 0
    const { app } = appWith(async (sql) => {
      const work = Promise.all(
        Array.from({ length: 9 }, (_, i) => sql`select pg_sleep(0.05), ${i}::int as i`),
      )
      for (let k = 0; k < 6; k++) {
        peak = Math.max(peak, (await showClients(APP)).length)
        await sleep(20)
      }
      return (await work).map((r) => r[0]?.i)
    }, 3)
    const res = await within(Promise.resolve(app.request('/')), 10_000)
    expect(await (res as Response).json()).toEqual({ result: [0, 1, 2, 3, 4, 5, 6, 7, 8] })
    expect(peak).toBeGreaterThanOrEqual(2)
    expect(peak).toBeLessThanOrEqual(3)
  })

  it('inside sql.begin the server connection is pinned and pipelining works', async () => {
    const { app } = appWith((sql) =>
      sql.begin(async (tx) => {
        const rows = await Promise.all([tx`select 1 as n`, tx`select 2 as n`, tx`select ${3}::int as n`])
        const sp = await tx.savepoint(async (s) => (await s`select 4 as n`)[0]?.n)
        return [...rows.map((r) => r[0]?.n), sp]
      }),
    )
    expect(await (await app.request('/')).json()).toEqual({ result: [1, 2, 3, 4] })
  })
})

describe('statements and transactions keep the order they were started in (one statement at a time)', () => {
  // A statement takes the request's gate one microtask after it starts (postgres.js's handle()); sql.begin
  // and sql.reserve take it in the same turn, so neither overtakes the other.
  const route = async (sql: PoolerVariables['sql']) => {
    const order: string[] = []
    const first = sql`select 1 as v`.execute().then(() => void order.push('statement before'))
    const tx = sql.begin(async (t) => {
      order.push('transaction')
      await t`select 2 as v`
    })
    const after = sql`select 3 as v`.then(() => void order.push('statement after'))
    await Promise.all([first, tx, after])
    const reserved = sql.reserve().then(async (r) => {
      order.push('reserved')
      await r`select 4 as v`
      r.release()
    })
    const last = sql`select 5 as v`.then(() => void order.push('statement after reserve'))
    await Promise.all([reserved, last])
    return order
  }
  const expected = [
    'statement before',
    'transaction',
    'statement after',
    'reserved',
    'statement after reserve',
  ]

  it('per-request client in transaction mode', async () => {
    const { app, errors } = appWith(route)
    const res = await app.request('/')
    expect(errors).toEqual([])
    expect((await res.json()).result).toEqual(expected)
  })

  it('shared pool (through PgBouncer)', async () => {
    const { app, errors } = appWith(route, 1, { pool: { size: 2, checkBudget: false } })
    try {
      const res = await app.request('/')
      expect(res.status).toBe(200)
      expect(errors).toEqual([])
      expect((await res.json()).result).toEqual(expected)
    } finally {
      await closePools({ timeout: 5 })
    }
  })
})

describe('the outer client inside its own transaction', () => {
  it('max 1: c.var.sql inside sql.begin fails fast with DEADLOCK_IN_TRANSACTION instead of hanging', async () => {
    const { app } = appWith(async (sql) => {
      const codes: string[] = []
      const inner = await sql.begin(async (tx) => {
        await sql`select 1`.catch((e: PoolerError) => codes.push(e.code))
        await sql.begin(async () => 1).catch((e: PoolerError) => codes.push(e.code))
        return (await tx`select ${2}::int as n`)[0]?.n
      })
      const [after] = await sql`select ${3}::int as n` // outside the callback: fine again
      return { codes, inner, after: after?.n }
    })
    const res = await within(Promise.resolve(app.request('/')), 5000)
    expect(res).not.toBe('timeout')
    expect(await (res as Response).json()).toEqual({
      result: { codes: ['DEADLOCK_IN_TRANSACTION', 'DEADLOCK_IN_TRANSACTION'], inner: 2, after: 3 },
    })
  })

  it('max 2: the outer client takes the second connection', async () => {
    const { app } = appWith(
      (sql) => sql.begin(async (tx) => [(await sql`select 1 as n`)[0]?.n, (await tx`select 2 as n`)[0]?.n]),
      2,
    )
    expect(await (await app.request('/')).json()).toEqual({ result: [1, 2] })
  })
})

describe('cursors keep the one-statement-in-flight rule', () => {
  it('a broken-off and a finished cursor iteration both let the next statements run', async () => {
    const { app } = appWith(async (sql) => {
      const seen: number[] = []
      for await (const rows of sql`select generate_series(1, 10) as i`.cursor(3)) {
        seen.push(...rows.map((r) => r.i))
        if (seen.length >= 6) break
      }
      const after = await Promise.all([sql`select ${1}::int as n`, sql`select 2 as n`])
      let total = 0
      for await (const rows of sql`select generate_series(1, 5) as i`.cursor(2)) total += rows.length
      const [last] = await sql`select ${3}::int as n`
      return [seen, after.map((r) => r[0]?.n), total, last?.n]
    })
    const res = await within(Promise.resolve(app.request('/')), 10_000)
    expect(await (res as Response).json()).toEqual({ result: [[1, 2, 3, 4, 5, 6], [1, 2], 5, 3] })
  })
})

describe('named prepared statements', () => {
  it('reproduced: postgres.js defaults hit `prepared statement … does not exist` through PgBouncer', async () => {
    // app_pool2: a pool of two server connections that no other test uses.
    const url = stack.databaseUrl.replace(/\/app$/, '/app_pool2')
    const a = postgres(url, { max: 1, connection: { application_name: `${APP}-raw` } })
    const b = postgres(url, { max: 1, connection: { application_name: `${APP}-raw` } })
    try {
      const q = (n: number) => a`select ${n}::int + 1 as n`
      expect((await q(1))[0]?.n).toBe(2) // Parse "name" + Bind on server connection S1
      // Hold S1 (the pool's only idle server connection) in B's transaction…
      const hold = b.begin(async (tx) => {
        await tx`select 1`
        await sleep(500)
      })
      await sleep(100)
      // …so A's next transaction lands on the other server connection, where its statement was never
      // prepared. (Outside a transaction postgres.js hides this by re-preparing; inside one it cannot.)
      const err = await a
        .begin((tx) => tx`select ${2}::int + 1 as n`)
        .then(
          () => undefined,
          (e) => e,
        )
      await hold
      expect(err).toMatchObject({ code: '26000' })
      expect(String(err.message)).toMatch(/prepared statement ".*" does not exist/)
    } finally {
      await Promise.all([a.end({ timeout: 0 }), b.end({ timeout: 0 })])
    }
  })

  it('fixed: the same sequence through c.var.sql works', async () => {
    const b = postgres(stack.databaseUrl, {
      max: 1,
      prepare: false,
      connection: { application_name: `${APP}-raw` },
    })
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      const q = (n: number) => c.var.sql`select ${n}::int + 1 as n`
      const first = (await q(1))[0]?.n
      const hold = b.begin(async (tx) => {
        await tx`select 1`
        await sleep(300)
      })
      await sleep(100)
      const second = (await q(2))[0]?.n
      await hold
      return c.json([first, second])
    })
    try {
      expect(await (await app.request('/')).json()).toEqual([2, 3])
    } finally {
      await b.end({ timeout: 0 })
    }
  })

  it('prepare: true is refused with PREPARE_UNSUPPORTED (option, URL and per query)', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    const errors: unknown[] = []
    app.onError((e, c) => {
      errors.push(e)
      return c.text('x', 500)
    })
    app.use('/opt', pooler({ url: stack.databaseUrl, prepare: true }))
    app.use('/url', pooler({ url: `${stack.databaseUrl}?prepare=true` }))
    app.use('/query', pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/opt', (c) => c.text('never'))
    app.get('/url', (c) => c.text('never'))
    app.get('/query', async (c) =>
      c.json(await c.var.sql.unsafe('select $1::int as n', [1], { prepare: true })),
    )
    for (const path of ['/opt', '/url', '/query']) await app.request(path)
    expect(errors.map((e) => (e as PoolerError).code)).toEqual([
      'PREPARE_UNSUPPORTED',
      'PREPARE_UNSUPPORTED',
      'PREPARE_UNSUPPORTED',
    ])
    expect(await waitForNoClients(APP)).toEqual([])
  })
})

describe('session-only driver features are refused in transaction mode', () => {
  it('sql.listen, sql.subscribe', async () => {
    const { app, errors } = appWith(async (sql) => {
      const codes: string[] = []
      for (const call of [() => sql.listen('ch', () => {}), () => sql.subscribe('*', () => {})])
        await call().catch((e: PoolerError) => codes.push(e.code))
      return codes
    })
    expect(await (await app.request('/')).json()).toEqual({
      result: ['LISTEN_UNSUPPORTED', 'SUBSCRIBE_UNSUPPORTED'],
    })
    expect(errors).toEqual([])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('sql.notify still works (pg_notify)', async () => {
    const { app } = appWith(async (sql) => (await sql.notify('ch', 'hello')).count)
    expect(await (await app.request('/')).json()).toEqual({ result: 1 })
  })
})

describe('driver preset', () => {
  it('application_name, connect_timeout 5 s, prepare off, fetch_types off', async () => {
    let options: Record<string, unknown> = {}
    const { app } = appWith(async (sql) => {
      const [row] = await sql`select current_setting('application_name') as name`
      options = sql.options as unknown as Record<string, unknown>
      return row?.name
    })
    expect(await (await app.request('/')).json()).toEqual({ result: APP })
    expect(options).toMatchObject({ prepare: false, fetch_types: false, connect_timeout: 5, max: 1 })
  })
})
