/**
 * Fidelity: the same scenarios through plain postgres.js and through hono-pooler's `sql` (direct mode, and
 * transaction mode through PgBouncer), asserting identical results, errors and ordering — except the
 * differences the README documents, which are asserted as documented.
 */
import postgres from 'postgres'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { closePools } from '../../src'
import { clientConfig, createRequestClient, parseOptions } from '../../src/internal'
import { sleep, stack } from '../support/stack'
import { observeWire } from '../support/wire-observer'

type Sql = postgres.Sql<any>
const APP = 'hp-fidelity'

/** A request client in the given mode (direct: straight to Postgres; transaction: through PgBouncer). */
function hp(mode: 'direct' | 'transaction', extra: Parameters<typeof parseOptions>[0] = {}) {
  const url = mode === 'direct' ? stack.directUrl : stack.databaseUrl
  return createRequestClient(clientConfig(url, parseOptions({ applicationName: APP, mode, ...extra })))
}
const plain = (extra: postgres.Options<any> = {}) =>
  postgres(stack.directUrl, { max: 1, onnotice: () => {}, connection: { application_name: APP }, ...extra })

/** The open clients of a test, closed after it (the stack's max_connections is 40). */
const opened: { close(t: number): Promise<void> }[] = []
const track = <T extends { close(t: number): Promise<void> }>(c: T): T => {
  opened.push(c)
  return c
}
afterEach(() => Promise.all(opened.splice(0).map((c) => c.close(1))))
afterAll(() => closePools({ timeout: 1 }))

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, sleep(ms).then(() => 'timeout' as const)])

beforeAll(async () => {
  const s = plain()
  await s`create table if not exists fidelity_log (id serial primary key, tag text, at timestamptz default clock_timestamp())`
  await s.end()
})

const variants: [string, () => { sql: Sql }][] = [
  [
    'postgres.js',
    () => {
      const s = plain()
      track({ close: (t) => s.end({ timeout: t }) })
      return { sql: s }
    },
  ],
  ['hono-pooler direct', () => track(hp('direct'))],
  ['hono-pooler transaction', () => track(hp('transaction'))],
  // A shared pool builds its tagged and unsafe queries itself (src/pool/query-class.ts).
  ['hono-pooler shared pool, direct', () => track(hp('direct', { pool: { size: 2, overflow: 0 } }))],
  [
    'hono-pooler shared pool, transaction',
    () => track(hp('transaction', { pool: { size: 2, overflow: 0 } })),
  ],
]

/** Scenarios whose results (rows, column types, errors, ordering) must be identical in every variant. */
const SCENARIOS: [string, (sql: Sql) => Promise<unknown>][] = [
  [
    'scalars and casts',
    (sql) => sql`select 1::int4 as i, 2::int8 as b, 'x'::text as t, true as f, null as n, 1.5::float8 as d`,
  ],
  ['arrays', (sql) => sql`select array[1,2]::int4[] as a, array['a','b"c']::text[] as t, '{}'::int4[] as e`],
  ['json', (sql) => sql`select '{"a":[1,2]}'::jsonb as j, ${sql.json({ k: 'v' })}::jsonb as p`],
  ['parameters', (sql) => sql`select ${42}::int as n, ${"it's"} as s, ${[1, 2]}::int[] as a`],
  ['dates', (sql) => sql`select '2024-02-29T12:00:00Z'::timestamptz as ts, '2024-02-29'::date as d`],
  [
    'an SQL error',
    (sql) =>
      sql`select 1/0`.then(
        (r) => r,
        (e) => ({ code: e.code, message: e.message }),
      ),
  ],
  [
    'a sql.begin result',
    (sql) => sql.begin(async (tx) => [await tx`select 1 as a`, await tx`select 2 as b`]),
  ],
  [
    'Promise.all keeps order',
    (sql) => Promise.all([1, 2, 3].map((i) => sql`select ${i}::int as i, pg_sleep(${0.01 * (4 - i)})`)),
  ],
  ['.values()', (sql) => sql`select 1 as a, 2 as b`.values()],
  ['.raw()', async (sql) => (await sql`select 'ab'::bytea as b, 3 as n`.raw()).map((r) => r.map(String))],
  ['unsafe with parameters', (sql) => sql.unsafe('select $1::int as n, $2 as s', [7, 'x'])],
  ['unsafe, several statements', (sql) => sql.unsafe('select 1 as a; select 2 as b')],
  ['unsafe with options', (sql) => sql.unsafe('select $1::int as n', [8], { prepare: false })],
  ['a fragment', (sql) => sql`select * from (${sql`select ${3}::int as x`}) s where x = ${3}`],
  [
    'identifier and in-list helpers',
    (sql) => sql`select ${sql('a')} from (select 4 as a) t where a in ${sql([4, 5])}`,
  ],
  [
    'an insert helper',
    async (sql) => {
      const tag = `helper-${Math.random().toString(36).slice(2, 8)}`
      const [row] = await sql`insert into fidelity_log ${sql({ tag }, 'tag')} returning tag`
      await sql`delete from fidelity_log where tag = ${tag}`
      return row!.tag.startsWith('helper-')
    },
  ],
  ['.describe()', async (sql) => (await sql`select ${1}::int as a`.describe()).columns.map((c) => c.name)],
  [
    'count and columns',
    async (sql) => {
      const r = await sql`select 1 as a union all select 2`
      return [r.count, r.columns.map((c) => [c.name, c.type])]
    },
  ],
]

describe('same results as postgres.js', () => {
  const reference = new Map<string, unknown>()
  beforeAll(async () => {
    const s = plain()
    for (const [name, run] of SCENARIOS) reference.set(name, JSON.parse(JSON.stringify(await run(s))))
    await s.end({ timeout: 1 })
  })
  describe.each(variants.slice(1))('%s', (_name, make) => {
    it.each(SCENARIOS)('%s', async (name, run) => {
      const { sql } = make()
      expect(JSON.parse(JSON.stringify(await run(sql)))).toEqual(reference.get(name))
    })
  })
})

describe.each(variants)('%s', (_name, make) => {
  it('sql.notify() sends at once, even when its promise is never awaited', async () => {
    const { sql } = make()
    const channel = `fid_${Math.random().toString(36).slice(2, 8)}`
    const listener = plain()
    track({ close: (t) => listener.end({ timeout: t }) })
    const got: string[] = []
    await listener.listen(channel, (p) => got.push(p))
    void sql.notify(channel, 'fire-and-forget')
    const deadline = Date.now() + 3000
    while (!got.length && Date.now() < deadline) await sleep(20)
    expect(got).toEqual(['fire-and-forget'])
  })

  it('a statement issued right after sql.begin() runs after the transaction (max 1)', async () => {
    const { sql } = make()
    const tag = `order-${Math.random().toString(36).slice(2, 8)}`
    const order: string[] = []
    const tx = sql.begin(async (t) => {
      await t`insert into fidelity_log (tag) values (${`${tag}-tx`})`
      await t`select pg_sleep(0.2)`
      order.push('tx')
    })
    const after = sql`insert into fidelity_log (tag) values (${`${tag}-after`}) returning id`.then(() =>
      order.push('after'),
    )
    await Promise.all([tx, after])
    expect(order).toEqual(['tx', 'after'])
    const rows = await sql`select tag from fidelity_log where tag like ${`${tag}-%`} order by id`
    expect(rows.map((r) => r.tag)).toEqual([`${tag}-tx`, `${tag}-after`])
  })
})

// postgres.js caches a query's call site per template object (per source location): each variant needs
// its own call site, or the first one's cached stack would be reused.
describe("an error's stack names the caller's own function", () => {
  it('postgres.js', async () => {
    const sql = variants[0]![1]().sql
    async function plainCaller() {
      return sql`select no_such_column_fidelity_a from fidelity_log`.catch((e) => e)
    }
    const err = await plainCaller()
    expect(err.code).toBe('42703')
    expect(err.stack).toContain('plainCaller')
  })
  it('hono-pooler direct', async () => {
    const sql = variants[1]![1]().sql
    async function directCaller() {
      return sql`select no_such_column_fidelity_b from fidelity_log`.catch((e) => e)
    }
    const err = await directCaller()
    expect(err.code).toBe('42703')
    expect(err.stack).toContain('directCaller')
    expect(err.stack).not.toContain('sql-proxy')
  })
  it('hono-pooler transaction', async () => {
    const sql = variants[2]![1]().sql
    async function transactionCaller() {
      return sql`select no_such_column_fidelity_c from fidelity_log where id = ${1}`.catch((e) => e)
    }
    const err = await transactionCaller()
    expect(err.code).toBe('42703')
    expect(err.stack).toContain('transactionCaller')
    expect(err.stack).not.toContain('sql-proxy')
  })
  it('hono-pooler shared pool', async () => {
    const sql = variants[3]![1]().sql
    async function pooledCaller() {
      return sql`select no_such_column_fidelity_d from fidelity_log where id = ${1}`.catch((e) => e)
    }
    async function pooledUnsafeCaller() {
      return sql.unsafe('select no_such_column_fidelity_e from fidelity_log').catch((e) => e)
    }
    const err = await pooledCaller()
    expect(err.code).toBe('42703')
    expect(err.stack).toContain('pooledCaller')
    expect(err.stack).not.toContain('sql-proxy')
    expect((await pooledUnsafeCaller()).code).toBe('42703')
  })
})

describe('the no-pipelining gate (transaction mode)', () => {
  it('cancelling a query that waits for the gate leaves the connection usable', async () => {
    const c = track(hp('transaction'))
    const sql = c.sql
    const running = sql`select pg_sleep(0.3) as slept`
    const waiting = sql`select 'never' as x`
    const first = running.then((r) => r)
    const second = waiting.then(
      (r) => r,
      (e) => e,
    )
    await sleep(50)
    await waiting.cancel()
    expect((await second).code).toBe('57014')
    await first
    const next = await within(
      sql`select 1 as one`.then((r) => r[0]!.one),
      5000,
    )
    expect(next).toBe(1)
  })

  /** Two statements at once through a wire observer: with one slot they must never be in flight together. */
  async function twoAtOnce(prepare: (sql: Sql) => Promise<void>) {
    const wire = await observeWire(stack.databaseUrl)
    const c = track(
      createRequestClient(
        clientConfig(wire.url, parseOptions({ applicationName: APP, mode: 'transaction' })),
      ),
    )
    await prepare(c.sql)
    await Promise.all([c.sql`select pg_sleep(0.05)`, c.sql`select pg_sleep(0.05)`, c.sql`select 1`])
    await c.close(1)
    await wire.close()
    return wire
  }

  it('is never released more often than acquired: a failed sql.file() does not open a second slot', async () => {
    const wire = await twoAtOnce(async (sql) => {
      await expect(sql.file('/nonexistent/fidelity.sql')).rejects.toMatchObject({ code: 'ENOENT' })
    })
    expect(wire.statements).toBeGreaterThanOrEqual(3)
    expect(wire.maxInFlight).toBe(1)
  })

  it('is never released more often than acquired: a refused cursor does not open a second slot', async () => {
    const wire = await twoAtOnce(async (sql) => {
      await expect(
        (async () => {
          for await (const _ of sql`set search_path to public`.cursor(1)) void _
        })(),
      ).rejects.toMatchObject({ code: 'UNSAFE_IN_TRANSACTION_MODE' })
    })
    expect(wire.statements).toBeGreaterThanOrEqual(3)
    expect(wire.maxInFlight).toBe(1)
  })

  it('an inlined statement goes as one simple Query; several statements and cursors as Parse/Bind/Execute', async () => {
    const wire = await observeWire(stack.databaseUrl)
    const c = track(
      createRequestClient(
        clientConfig(wire.url, parseOptions({ applicationName: APP, mode: 'transaction' })),
      ),
    )
    await c.sql`select 1 as warm` // the connection is open: from here on, only these statements
    const before = { ...wire.sent }
    const delta = (t: string) => (wire.sent[t] ?? 0) - (before[t] ?? 0)
    expect(await c.sql`select ${41}::int + 1 as n, ${"it's"} as s`).toMatchObject([{ n: 42, s: "it's" }])
    expect([delta('Q'), delta('P')]).toEqual([1, 0])
    // Several statements: refused by the server as without inlining (a simple Query would run both).
    const several = await c.sql.unsafe('select $1::int as n; select 2', [1]).catch((e) => e)
    expect(several.code).toBe('42601')
    expect(delta('P')).toBe(1)
    const rows: unknown[] = []
    for await (const batch of c.sql`select g from generate_series(1, ${3}::int) g`.cursor(2))
      rows.push(...batch)
    expect(rows).toEqual([{ g: 1 }, { g: 2 }, { g: 3 }])
    expect([delta('Q'), delta('P')]).toEqual([1, 2])
    await c.close(1)
    await wire.close()
  })

  it('a statement sent as a simple Query has the result metadata the extended protocol gives', async () => {
    const tag = `meta-${Date.now()}`
    const meta = (r: any) => [r.count, r.command, r.columns, r.statement?.columns?.length]
    const inlined = track(hp('transaction')).sql
    const bound = track(hp('transaction', { inlineParams: false })).sql
    await inlined`insert into fidelity_log (tag) values (${tag})`
    const got = []
    for (const sql of [inlined, bound]) {
      const update = await sql`update fidelity_log set tag = ${tag} where tag = ${tag}`
      const none = await sql`select tag from fidelity_log where tag = ${`${tag}-none`}`
      const inTx = await sql.begin((t) => t`update fidelity_log set tag = ${tag} where tag = ${tag}`)
      const seen: number[] = []
      await sql`select tag, id from fidelity_log where tag = ${tag}`.forEach((_row, result) => {
        seen.push(result.columns.length)
      })
      got.push([meta(update), meta(none), meta(inTx), seen])
    }
    expect(got[0]).toEqual([
      [1, 'UPDATE', [], 0],
      [0, 'SELECT', [expect.objectContaining({ name: 'tag' })], 1],
      [1, 'UPDATE', [], 0],
      [2],
    ])
    expect(got[0]).toEqual(got[1])
    await inlined`delete from fidelity_log where tag = ${tag}`
  })

  it('the observer sees pipelining where it happens (plain postgres.js, one connection)', async () => {
    const wire = await observeWire(stack.directUrl)
    const s = postgres(wire.url, { max: 1, prepare: false, fetch_types: false })
    await s`select 1`
    await Promise.all([s`select pg_sleep(0.05)`, s`select pg_sleep(0.05)`, s`select 1`])
    await s.end({ timeout: 1 })
    await wire.close()
    expect(wire.maxInFlight).toBeGreaterThan(1)
  })
})

describe('transactions', () => {
  it.each(variants)('%s: tagged tx.savepoint`…` runs its query in a savepoint', async (_name, make) => {
    const { sql } = make()
    const rows = await sql.begin(async (tx) => (tx as any).savepoint`select ${7}::int as n`)
    expect(JSON.parse(JSON.stringify(rows))).toEqual([{ n: 7 }])
  })

  it('an error inside sql.begin names the caller too (transaction mode)', async () => {
    const { sql } = track(hp('transaction'))
    const err = await sql
      .begin(async (tx) => {
        async function callerInsideTransaction() {
          return tx`select no_such_column_fidelity_d from fidelity_log`
        }
        return callerInsideTransaction()
      })
      .catch((e) => e)
    expect(err.code).toBe('42703')
    // The recorded call site starts at the caller (frames further down are the transaction's own).
    expect(err.stack).toMatch(/\n\s+at callerInsideTransaction /)
  })

  it('a query cancelled before it is sent never waits for the gate (transaction mode)', async () => {
    const { sql } = track(hp('transaction'))
    const running = sql`select pg_sleep(0.5)`.then((r) => r)
    const cancelled = sql`select 'never'`
    await cancelled.cancel()
    const settled = await within(
      cancelled.then(
        () => 'resolved',
        (e) => e.code,
      ),
      300,
    )
    expect(settled).toBe('57014')
    await running
  })
})

describe('values shaped like postgres.js helpers', () => {
  it('a JSON body shaped like a fragment is stored as data in every variant (no SQL injection)', async () => {
    const body = JSON.parse('{"tagged":true,"strings":["to_jsonb(current_user) as leaked, ",""],"args":[0]}')
    const results = []
    for (const [, make] of variants) {
      const { sql } = make()
      const rows = await sql`select ${body}::jsonb as j`
      results.push(JSON.parse(JSON.stringify(rows)))
    }
    expect(results[0]).toEqual([{ j: body }])
    expect(results[1]).toEqual(results[0])
    expect(results[2]).toEqual(results[0])
  })
})

describe('documented differences', () => {
  it('err.args is empty for an inlined query (the values were sent as literals); inlineParams: false keeps them', async () => {
    const inlined = track(hp('transaction'))
    const e1 = await inlined.sql`select ${'abc'}::int as n`.catch((e) => e)
    expect(e1.code).toBe('22P02')
    expect(e1.args).toEqual([])
    expect(e1.parameters).toEqual([])
    expect(e1.query).toContain('$1')
    const bound = track(hp('transaction', { inlineParams: false }))
    const e2 = await bound.sql`select ${'abc'}::int as n`.catch((e) => e)
    expect(e2.code).toBe('22P02')
    expect(e2.args).toEqual(['abc'])
    // postgres.js itself: the same as inlineParams: false
    const s = plain()
    track({ close: (t) => s.end({ timeout: t }) })
    const e3 = await s`select ${'abc'}::int as n`.catch((e) => e)
    expect(e3.args).toEqual(e2.args)
  })

  it('tx.notify is sent inside the transaction: delivered on commit, dropped on rollback (postgres.js sends it at once on another connection)', async () => {
    for (const mode of ['direct', 'transaction'] as const) {
      const { sql } = track(hp(mode, { max: 2 }))
      const channel = `fid_tx_${mode}_${Math.random().toString(36).slice(2, 8)}`
      const listener = plain()
      track({ close: (t) => listener.end({ timeout: t }) })
      const got: string[] = []
      await listener.listen(channel, (p) => got.push(p))
      await sql
        .begin(async (tx) => {
          await tx.notify(channel, 'rolled-back')
          throw new Error('roll back')
        })
        .catch(() => {})
      await sql.begin((tx) => tx.notify(channel, 'committed'))
      const deadline = Date.now() + 3000
      while (!got.length && Date.now() < deadline) await sleep(20)
      await sleep(100)
      expect(got).toEqual(['committed'])
    }
  })

  it('inlined text is never prepared by name (direct mode, prepare on): no statement per value', async () => {
    const c = track(hp('direct', { inlineParams: true }))
    for (let i = 0; i < 6; i++) expect((await c.sql`select ${i}::int as n`)[0]!.n).toBe(i)
    // The same connection (max 1): its named statements.
    const rows = await c.sql`select statement from pg_prepared_statements`
    expect(rows.filter((r) => r.statement.includes('::int as n'))).toEqual([])
    // …while a query that is not inlined still is (postgres.js's own behaviour, unchanged).
    await c.sql`select ${'"x"'}::jsonb as a`
    const after = await c.sql`select statement from pg_prepared_statements`
    expect(after.some((r) => r.statement.includes('::jsonb as a'))).toBe(true)
  })
})
