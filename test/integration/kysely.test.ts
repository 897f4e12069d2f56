/**
 * Kysely through hono-pooler: `kysely-postgres-js` reserves a connection (`sql.reserve()`) for every query
 * and every transaction. Against the real PgBouncer in transaction mode: select, insert, transactions
 * (committed, and rolled back by a thrown error), `Promise.all` with one connection, the guard on the
 * reserved connection, a transaction pinned to one server connection while other clients share the pool,
 * and no client left open. Also `sql.reserve()` itself in transaction and direct mode.
 */
import { Hono } from 'hono'
import { type Generated, Kysely, sql as ksql } from 'kysely'
import { PostgresJSDialect } from 'kysely-postgres-js'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closePools, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { sleep, stack, waitForNoClients } from '../support/stack'

const APP = 'hp-kysely'

interface DB {
  kysely_items: { id: Generated<number>; name: string; tag: string }
}

beforeAll(async () => {
  const sql = postgres(stack.directUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`create table if not exists kysely_items (id serial primary key, name text not null, tag text not null)`
  } finally {
    await sql.end({ timeout: 1 })
  }
})

/** An app whose one route runs `route` with a Kysely instance over `c.var.sql`. */
function appWith(route: (db: Kysely<DB>) => Promise<unknown>, options: PoolerOptions = {}) {
  const app = new Hono<{ Variables: PoolerVariables }>()
  const errors: unknown[] = []
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, ...options }))
  app.onError((err, c) => {
    errors.push(err)
    return c.json({ error: { code: (err as { code?: string }).code ?? 'ERR', message: err.message } }, 500)
  })
  // One Kysely per request, over the request's client (never db.destroy(): the middleware closes it).
  app.get('/', async (c) => {
    const db = new Kysely<DB>({ dialect: new PostgresJSDialect({ postgres: c.var.sql }) })
    return c.json({ result: await route(db) })
  })
  return { app, errors }
}

const run = async (app: Hono<any>) => {
  const res = await app.request('/')
  return { status: res.status, body: (await res.json()) as any }
}

describe('Kysely (kysely-postgres-js) through PgBouncer in transaction mode', () => {
  const tag = `k-${Date.now()}`

  it('inserts and selects', async () => {
    const { app, errors } = appWith(async (db) => {
      const inserted = await db
        .insertInto('kysely_items')
        .values([
          { name: 'a', tag },
          { name: 'b', tag },
        ])
        .returning(['id', 'name'])
        .execute()
      const rows = await db
        .selectFrom('kysely_items')
        .select(['name'])
        .where('tag', '=', tag)
        .orderBy('id')
        .execute()
      return { inserted: inserted.map((r) => r.name), rows: rows.map((r) => r.name) }
    })
    expect(await run(app)).toEqual({
      status: 200,
      body: { result: { inserted: ['a', 'b'], rows: ['a', 'b'] } },
    })
    expect(errors).toEqual([])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('db.transaction() commits; a thrown error inside rolls it back', async () => {
    const { app, errors } = appWith(async (db) => {
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('kysely_items').values({ name: 'committed', tag }).execute()
      })
      const thrown = await db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('kysely_items').values({ name: 'rolled-back', tag }).execute()
          throw new Error('boom')
        })
        .catch((e: Error) => e.message)
      const names = await db
        .selectFrom('kysely_items')
        .select('name')
        .where('tag', '=', tag)
        .where('name', 'in', ['committed', 'rolled-back'])
        .execute()
      return { thrown, names: names.map((r) => r.name) }
    })
    expect(await run(app)).toEqual({
      status: 200,
      body: { result: { thrown: 'boom', names: ['committed'] } },
    })
    expect(errors).toEqual([])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  for (const max of [1, 2])
    it(`Promise.all of queries and transactions with max: ${max}`, async () => {
      const { app, errors } = appWith(
        async (db) =>
          Promise.all(
            Array.from({ length: 6 }, (_, i) =>
              i % 2
                ? ksql<{ n: number }>`select ${i}::int as n`.execute(db).then((r) => r.rows[0]!.n)
                : db
                    .transaction()
                    .execute((trx) => ksql<{ n: number }>`select ${i}::int as n`.execute(trx))
                    .then((r) => r.rows[0]!.n),
            ),
          ),
        { max },
      )
      expect(await run(app)).toEqual({ status: 200, body: { result: [0, 1, 2, 3, 4, 5] } })
      expect(errors).toEqual([])
      expect(await waitForNoClients(APP)).toEqual([])
    })

  it('a transaction stays on one server connection while other clients share a one-connection pool', async () => {
    // app_pool1 has ONE server connection: the transaction pins it (BEGIN … COMMIT as separate statements),
    // the other requests wait for it, and every statement of the transaction sees the same transaction id.
    const { app, errors } = appWith(
      async (db) =>
        db.transaction().execute(async (trx) => {
          const ids: string[] = []
          for (let i = 0; i < 3; i++) {
            const r = await ksql<{ x: string }>`select txid_current()::text as x, pg_sleep(0.05)`.execute(trx)
            ids.push(r.rows[0]!.x)
          }
          return ids
        }),
      { url: stack.pool1Url },
    )
    const results = await Promise.all(Array.from({ length: 4 }, () => run(app)))
    for (const r of results) {
      expect(r.status).toBe(200)
      expect(new Set(r.body.result).size).toBe(1)
    }
    expect(new Set(results.map((r) => r.body.result[0])).size).toBe(4) // four distinct transactions
    expect(errors).toEqual([])
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('the guard covers the reserved connection', async () => {
    const { app, errors } = appWith(async (db) => {
      await ksql`set search_path = public`.execute(db)
    })
    const { status, body } = await run(app)
    expect(status).toBe(500)
    expect(body.error.code).toBe('UNSAFE_IN_TRANSACTION_MODE')
    expect(errors).toHaveLength(1)
    expect(await waitForNoClients(APP)).toEqual([])
  })
})

describe('sql.reserve()', () => {
  for (const [mode, url] of [
    ['transaction', () => stack.databaseUrl],
    ['direct', () => stack.directUrl],
  ] as const)
    it(`works in ${mode} mode: one connection, released, then usable again`, async () => {
      const app = new Hono<{ Variables: PoolerVariables }>()
      app.use(pooler({ url: url(), mode, applicationName: APP }))
      app.get('/', async (c) => {
        const sql = c.var.sql
        const reserved = await sql.reserve()
        const pids = await Promise.all([
          reserved`select pg_backend_pid() as p`,
          reserved.unsafe('select pg_backend_pid() as p'),
        ])
        reserved.release()
        reserved.release() // twice is harmless
        const after = await sql`select 1 as one`
        return c.json({ same: pids[0]![0]!.p === pids[1]![0]!.p, after: after[0]!.one })
      })
      const res = await app.request('/')
      expect(await res.json()).toEqual({ same: true, after: 1 })
      expect(await waitForNoClients(APP)).toEqual([])
    })

  it('a connection still reserved when the request ends is released, so the close does not wait for closeTimeout', async () => {
    const closes: number[] = []
    const app = new Hono<{ Variables: PoolerVariables }>()
    // postgres.js's end() would wait the whole closeTimeout (30 s here) for a reserved connection.
    app.use(
      pooler({
        url: stack.databaseUrl,
        applicationName: APP,
        closeTimeout: 30,
        onEvent: (e) => e.type === 'close' && closes.push(e.ms),
      }),
    )
    app.get('/', async (c) => {
      const reserved = await c.var.sql.reserve()
      await reserved`begin`
      await reserved`insert into kysely_items (name, tag) values ('never committed', 'unreleased')`
      return c.text('left reserved, in a transaction')
    })
    expect(await (await app.request('/')).text()).toBe('left reserved, in a transaction')
    expect(closes).toHaveLength(1)
    expect(closes[0]).toBeLessThan(15_000)
    expect(await waitForNoClients(APP)).toEqual([])
    // The transaction ended with the connection: rolled back.
    const sql = postgres(stack.directUrl, { max: 1, onnotice: () => {} })
    try {
      expect(await sql`select count(*)::int as n from kysely_items where tag = 'unreleased'`).toEqual([
        { n: 0 },
      ])
    } finally {
      await sql.end({ timeout: 1 })
    }
  })

  it('with max: 1, a second reserve waits for the first release instead of failing', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP }))
    app.get('/', async (c) => {
      const order: string[] = []
      const first = await c.var.sql.reserve()
      const second = c.var.sql.reserve().then((r) => {
        order.push('second reserved')
        return r
      })
      await first`select 1`
      order.push('first released')
      first.release()
      const r2 = await second
      await r2`select 1`
      r2.release()
      return c.json(order)
    })
    expect(await (await app.request('/')).json()).toEqual(['first released', 'second reserved'])
    expect(await waitForNoClients(APP)).toEqual([])
  })
})

describe('Kysely and sql.reserve() with the shared pool (pooler({ pool }))', () => {
  afterAll(() => closePools({ timeout: 5 }))

  it('queries, transactions and Promise.all lease pooled connections', async () => {
    const tag = `kp-${Date.now()}`
    const { app, errors } = appWith(
      async (db) => {
        await db
          .transaction()
          .execute((trx) => trx.insertInto('kysely_items').values({ name: 'p', tag }).execute())
        const names = await Promise.all(
          Array.from({ length: 4 }, () =>
            db.selectFrom('kysely_items').select('name').where('tag', '=', tag).executeTakeFirstOrThrow(),
          ),
        )
        return names.map((r) => r.name)
      },
      { pool: { size: 2, overflow: 0 }, max: 2 },
    )
    expect(await run(app)).toEqual({ status: 200, body: { result: ['p', 'p', 'p', 'p'] } })
    expect(errors).toEqual([])
  })

  it('a pooled connection left reserved inside a transaction is rolled back before it returns to the pool', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP, pool: { size: 1, overflow: 0 } }))
    app.get('/dirty', async (c) => {
      const reserved = await c.var.sql.reserve()
      await reserved`begin`
      await reserved.unsafe(`insert into kysely_items (name, tag) values ('dirty', 'pool-dirty')`)
      return c.text('left in a transaction')
    })
    app.get('/next', async (c) => {
      await sleep(50)
      const [row] = await c.var.sql<{ fresh: boolean; n: number }[]>`
        select txid_current_if_assigned() is null as fresh,
               (select count(*)::int from kysely_items where tag = 'pool-dirty') as n`
      return c.json(row)
    })
    expect(await (await app.request('/dirty')).text()).toBe('left in a transaction')
    // The pool's only connection: not inside the first request's transaction, which was rolled back.
    expect(await (await app.request('/next')).json()).toEqual({ fresh: true, n: 0 })
  })
})
