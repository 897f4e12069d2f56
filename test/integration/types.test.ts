import { Hono } from 'hono'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { closePools, type PoolerVariables, pooler } from '../../src'
import { BUILTIN_ARRAY_TYPES } from '../../src/internal'
import { stack } from '../support/stack'

const SELECT = `select
  array[1,2,null]::int4[] as i4, array[1,2]::int2[] as i2, array[9007199254740993]::int8[] as i8,
  array['a','b,c','"q"','back\\slash',null,'']::text[] as t, array['x']::varchar[] as vc,
  array['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']::uuid[] as u,
  array['2024-01-02T03:04:05Z','1999-12-31T23:59:59.123Z']::timestamptz[] as tz, array['2024-02-29']::date[] as d,
  array['{"a":1}','[1,"x"]']::jsonb[] as jb, array['{"b":[2]}']::json[] as j,
  array[true,false,null]::bool[] as b, array[1.5,2.25]::float8[] as f8, array[0.5]::float4[] as f4,
  array[12345678901234567890.5]::numeric[] as n, array[[1,2],[3,4]]::int4[] as nested,
  array['\\x0001ff'::bytea] as bytes, '{}'::int4[] as empty, array['(1,2),(3,4)'::box, '(0,0),(1,1)'::box] as boxes,
  array['1 day'::interval] as iv, array['10.0.0.1'::inet] as ip`

describe('fetch_types off + the static table of built-in array types', () => {
  it('parses arrays exactly like postgres.js with fetch_types on (direct connection)', async () => {
    const direct = postgres(stack.directUrl, { max: 1 }) // fetch_types: true, the reference
    const expected = (await direct.unsafe(SELECT))[0]
    await direct.end()
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl }))
    let got: unknown
    app.get('/', async (c) => {
      got = (await c.var.sql.unsafe(SELECT))[0]
      return c.text('ok')
    })
    await (await app.request('/')).text()
    expect(got).toEqual(expected)
    // (postgres.js itself parses an unquoted NULL inside int4[] as NaN; identical is the contract here.)
    expect((got as Record<string, unknown>).t).toEqual(['a', 'b,c', '"q"', 'back\\slash', 'NULL', ''])
    expect((got as Record<string, unknown>).nested).toEqual([
      [1, 2],
      [3, 4],
    ])
  })

  it('serializes JS arrays as array parameters (int4[], text[], uuid[], timestamptz[])', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl }))
    let got: any
    app.get('/', async (c) => {
      const sql = c.var.sql
      ;[got] = await sql`select ${[1, 2, 3]}::int4[] as a, ${['x', 'y"z', 'b\\s']}::text[] as t,
        array_length(${[1, 2]}::int4[], 1) as len, ${sql.array([new Date('2024-01-01T00:00:00Z')])} as tz,
        ${['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']}::uuid[] as u`
      return c.text('ok')
    })
    await (await app.request('/')).text()
    expect(got).toEqual({
      a: [1, 2, 3],
      t: ['x', 'y"z', 'b\\s'],
      len: 2,
      tz: [new Date('2024-01-01T00:00:00Z')],
      u: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    })
  })

  it('element parsers changed after the client was created (Drizzle) also apply inside arrays', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl }))
    let got: any
    app.get('/', async (c) => {
      const sql = c.var.sql
      // What drizzle(sql) does to postgres.js: dates stay strings.
      for (const oid of [1082, 1114, 1184]) (sql.options.parsers as any)[oid] = (x: string) => x
      ;[got] = await sql`select '2024-01-02T03:04:05Z'::timestamptz as one,
        array['2024-01-02T03:04:05Z']::timestamptz[] as many, array[1, 2]::int4[] as ints`
      return c.text('ok')
    })
    await (await app.request('/')).text()
    expect(got).toEqual({ one: '2024-01-02 03:04:05+00', many: ['2024-01-02 03:04:05+00'], ints: [1, 2] })
  })

  it('clients never share their element parsers', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl }))
    app.get('/', async (c) => {
      const [row] = await c.var.sql`select array['2024-01-02T03:04:05Z']::timestamptz[] as many`
      return c.json({ isDate: row?.many[0] instanceof Date })
    })
    expect(await (await app.request('/')).json()).toEqual({ isDate: true })
  })

  it('a shared pool: parsers replaced through c.var.sql (not changed in place) still get the array types', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, pool: { size: 2, overflow: 0, checkBudget: false } }))
    app.get('/replace', (c) => {
      const o = c.var.sql.options as any
      // A copy without the shared pool's array types behind it (its prototype is Object.prototype).
      o.parsers = { ...o.parsers }
      return c.text('ok')
    })
    app.get('/', async (c) => {
      const [row] = await c.var.sql`select array[1, 2]::int4[] as a, pg_sleep(0.2)::text as s`
      return c.json({ a: row?.a })
    })
    try {
      expect(await (await app.request('/')).json()).toEqual({ a: [1, 2] }) // one connection open
      expect(await (await app.request('/replace')).text()).toBe('ok')
      // Two at once: the second connection opens now and reads the replaced parsers.
      const both = await Promise.all([app.request('/'), app.request('/')])
      expect(await Promise.all(both.map((r) => r.json()))).toEqual([{ a: [1, 2] }, { a: [1, 2] }])
    } finally {
      await closePools({ timeout: 1 })
    }
  })

  it("requests of one app never share their client's parsers, server parameters or retry count", async () => {
    // The options are parsed once per configuration (src/client/driver-options.ts): per-client state is fresh.
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl }))
    const seen: any[] = []
    app.get('/drizzle', async (c) => {
      const sql = c.var.sql
      for (const oid of [1082, 1114, 1184]) (sql.options.parsers as any)[oid] = (x: string) => x
      ;(sql.options as any).parameters.from_drizzle = 'x'
      const [row] = await sql`select array['2024-01-02T03:04:05Z']::timestamptz[] as many, now() as one`
      return c.json({ isDate: row?.many[0] instanceof Date || row?.one instanceof Date })
    })
    app.get('/plain', async (c) => {
      const sql = c.var.sql
      seen.push(sql.options)
      const [row] = await sql`select array['2024-01-02T03:04:05Z']::timestamptz[] as many, now() as one`
      return c.json({
        isDate: row?.many[0] instanceof Date && row?.one instanceof Date,
        parameters: 'from_drizzle' in sql.parameters,
        encoding: sql.parameters.client_encoding,
      })
    })
    expect(await (await app.request('/drizzle')).json()).toEqual({ isDate: false })
    expect(await (await app.request('/plain')).json()).toEqual({
      isDate: true,
      parameters: false,
      encoding: 'UTF8',
    })
    expect(await (await app.request('/plain')).json()).toEqual({
      isDate: true,
      parameters: false,
      encoding: 'UTF8',
    })
    expect(seen[0]).not.toBe(seen[1])
    expect(seen[0].parsers).not.toBe(seen[1].parsers)
    expect(seen[0].shared).not.toBe(seen[1].shared)
  })

  it('a handler that changes its options in place (connection, transform, types, host) changes only its own request', async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, postgres: { transform: { undefined: null } } }))
    app.get('/meddle', async (c) => {
      const o = c.var.sql.options as any
      o.connection.application_name = 'meddled'
      o.transform.undefined = 'x'
      o.transform.column.from = () => 'meddled'
      o.types.meddled = { to: 25 }
      o.host.push('evil')
      return c.text('ok')
    })
    app.get('/plain', async (c) => {
      const o = c.var.sql.options as any
      const [row] = await c.var.sql`select current_setting('application_name') as name`
      return c.json({
        name: row?.name,
        undef: o.transform.undefined,
        column: o.transform.column.from,
        types: 'meddled' in o.types,
        hosts: o.host,
      })
    })
    await (await app.request('/meddle')).text()
    expect(await (await app.request('/plain')).json()).toEqual({
      name: 'hono-pooler',
      undef: null,
      types: false,
      hosts: ['127.0.0.1'],
    })
  })

  it("a user's own element type (postgres: { types }) also gets its array type", async () => {
    const app = new Hono<{ Variables: PoolerVariables }>()
    const types = {
      big: { to: 20, from: [20], parse: (x: string) => BigInt(x), serialize: (x: bigint) => `${x}` },
    }
    app.use(pooler({ url: stack.databaseUrl, postgres: { types } }))
    app.get('/', async (c) => {
      const [row] = await c.var.sql`select array[9007199254740993]::int8[] as many, 1::int8 as one`
      return c.json({ many: String(row?.many[0]), kind: typeof row?.many[0], one: typeof row?.one })
    })
    for (let i = 0; i < 2; i++)
      expect(await (await app.request('/')).json()).toEqual({
        many: '9007199254740993',
        kind: 'bigint',
        one: 'bigint',
      })
  })

  it('the table matches the server: every built-in scalar type with an array type', async () => {
    const sql = postgres(stack.directUrl, { max: 1 })
    // postgres.js's own fetch_types query, limited to built-in (pg_catalog) non-composite types.
    const rows = await sql<{ elem: number; arr: number }[]>`
      select b.oid::int as elem, b.typarray::int as arr from pg_type a
      join pg_type b on b.oid = a.typelem join pg_namespace n on n.oid = b.typnamespace
      where a.typcategory = 'A' and b.oid < 10000 and n.nspname = 'pg_catalog' and b.typtype <> 'c'
      group by 1, 2 order by 1`
    await sql.end()
    expect(rows.map((r) => [r.elem, r.arr])).toEqual(BUILTIN_ARRAY_TYPES.map(([e, a]) => [e, a]))
    expect(rows.length).toBeGreaterThan(60)
  })
})
