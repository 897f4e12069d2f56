/** Injection corpus, the guard and errors still seeing `$n`, and the postgres.js API on inlined queries. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closePools } from '../../src'
import { clientConfig, createRequestClient, parseOptions } from '../../src/internal'
import { stack } from '../support/stack'

const client = (inlineParams?: boolean, url = stack.databaseUrl) =>
  createRequestClient(
    clientConfig(
      url,
      parseOptions({
        applicationName: 'hp-inline-safety',
        ...(inlineParams === undefined ? {} : { inlineParams }),
      }),
    ),
  )
const c = client()
const sql = c.sql
// A shared pool builds its queries itself, and keeps what the inliner leaves on its class (pool/query-class.ts).
const pooled = createRequestClient(
  clientConfig(
    stack.databaseUrl,
    parseOptions({ applicationName: 'hp-inline-safety-pool', pool: { size: 2, overflow: 0 } }),
  ),
)
afterAll(async () => {
  await Promise.all([c.close(1), pooled.close(1)])
  await closePools({ timeout: 1 })
})
const CLIENTS: [string, typeof sql][] = [
  ['a per-request client', sql],
  ['a shared pool', pooled.sql],
]
beforeAll(async () => {
  await sql`create table if not exists inline_victim (id serial primary key, v text, j jsonb)`
})
/** True when the statement went out without parameters (the one-round-trip form). */
const wasInlined = (r: any) => r.statement.types.length === 0 && r.statement.string.includes("(E'")

const CORPUS = [
  "'; drop table inline_victim; --",
  "' or '1'='1",
  "\\'; drop table inline_victim; --",
  "\\\\'; select pg_sleep(10); --",
  '$$; drop table inline_victim; $$',
  "$a$ ' $a$",
  '*/ drop table inline_victim; /*',
  '-- \n drop table inline_victim',
  '"; drop table inline_victim; --',
  "E'\\x27'",
  "U&'\\0027'",
  '\u02BC; drop table inline_victim; --',
  '\uFF07; drop table inline_victim; --',
  "\uD800'); drop table inline_victim; --",
  "'); select set_config('search_path', 'evil', false); --",
  "%' union select usename from pg_user --",
  '\\',
  "'".repeat(1001),
  '\\'.repeat(1001),
  "😀'💥\\",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text ${1} is the injection attempt
  '${1}',
  '$1',
  '?',
]

describe('injection corpus round-trips as data', () => {
  const plain = client(false)
  afterAll(() => plain.close(1))
  const settle = (p: Promise<any>) =>
    p.then(
      (r) => ({ rows: [...r] }),
      (e) => ({ code: e.code, message: e.message }),
    )
  it.each(CORPUS.map((s) => [s.slice(0, 40), s]))('%s', async (_name, s) => {
    // Lone surrogates are sent as U+FFFD either way (UTF-8 encoding of the message).
    const expected = s.replace(
      /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
      '\uFFFD',
    )
    const r = await sql`select ${s} as v, length(${s}) as n`
    expect(wasInlined(r)).toBe(true)
    expect(r[0]?.v).toBe(expected)
    expect(r[0]).toEqual((await plain.sql`select ${s} as v, length(${s}) as n`)[0])
    const [row] = await sql.unsafe('insert into inline_victim (v) values ($1) returning v', [s])
    expect(row).toEqual({ v: expected })
    const [{ n }] = (await sql`select count(*)::int as n from inline_victim where v = ${s}`) as any[]
    expect(n).toBeGreaterThanOrEqual(1)
    // Arrays and JSON: exactly what postgres.js gives (or the same error).
    const q = (x: any) => x`select ${[s, null, s]}::text[] as a, ${{ s, t: [s] }}::jsonb as j`
    expect(await settle(q(sql))).toEqual(await settle(q(plain.sql)))
  })
  it('the table is still there and search_path untouched', async () => {
    const [{ n, path }] =
      (await sql`select count(*)::int as n, current_setting('search_path') as path from inline_victim`) as any[]
    expect(n).toBeGreaterThanOrEqual(CORPUS.length)
    expect(path).not.toContain('evil')
  })
})

describe('placeholders outside plain SQL are never inlined (same result as postgres.js)', () => {
  const plain = client(false)
  afterAll(() => plain.close(1))
  const x = "'); select 1; --"
  const cases: [string, (s: any) => Promise<any>][] = [
    ['string literal', (s) => s`select '${x}' as a`],
    ['dollar quote', (s) => s`select $$${x}$$ as a`],
    ['comment', (s) => s`select 1 as a /* ${x} */`],
    ['quoted identifier', (s) => s`select 1 as "${x}"`],
    ['unsafe $1 in a literal', (s) => s.unsafe("select '$1' as a", [x])],
  ]
  it.each(cases)('%s', async (_n, q) => {
    const settle = (p: Promise<any>) =>
      p.then(
        (r) => ({ rows: [...r] }),
        (e) => ({ code: e.code, message: e.message }),
      )
    expect(await settle(q(sql))).toEqual(await settle(q(plain.sql)))
  })
})

describe.each(CLIENTS)('the guard and errors see the template with $n: %s', (_name, sql) => {
  it('guard messages show $n, never the value', async () => {
    const secret = 'hunter2-secret-schema'
    const err: any = await sql`set search_path = ${secret}`.catch((e) => e)
    expect(err.code).toBe('UNSAFE_IN_TRANSACTION_MODE')
    expect(err.message).toContain('$1')
    expect(err.message).not.toContain(secret)
  })
  it('err.query is the template; parameters and args carry no values', async () => {
    const secret = 'hunter2-value'
    for (const q of [
      sql`select ${secret} as a, nosuchcol`,
      sql.unsafe('select $1 as a, nosuchcol', [secret]),
    ]) {
      const err: any = await q.catch((e: unknown) => e)
      expect(err.code).toBe('42703')
      expect(err.query).toBe('select $1 as a, nosuchcol')
      expect(JSON.stringify([err.parameters, err.args, err.message, String(err), err.stack])).not.toContain(
        secret,
      )
      expect(Number(err.position)).toBe('select $1 as a, '.length + 1)
    }
  })
  it("an inlined query's error stack names the caller, whatever the value", async () => {
    async function inlinedCaller(v: string) {
      return sql`select ${v} as a, nosuchcol_inline_stack`.catch((e: unknown) => e)
    }
    for (const v of ['one', 'two']) {
      const err: any = await inlinedCaller(v)
      expect(err.code).toBe('42703')
      expect(err.stack).toContain('inlinedCaller')
      expect(err.stack).not.toContain(v === 'one' ? "E'one'" : "E'two'")
    }
  })
  it('a value error inside a literal has no position, like a bound parameter', async () => {
    const err: any = await sql`select 1 as a, ${'not a number'}::int as b`.catch((e: unknown) => e)
    expect(err.code).toBe('22P02')
    expect(err.position).toBeUndefined()
  })
})

describe("a shared pool's inlined queries keep their error fields on their class", () => {
  it('no accessor of their own, and the call site cached by template, not by what was sent', async () => {
    const q: any = pooled.sql`select ${'v'} as a, nosuchcol_inline_class`
    const err: any = await q.catch((e: unknown) => e)
    expect(err.code).toBe('42703')
    // The shared pool's own class (pool/query-class.ts), with nothing defined on the query itself.
    expect(q.constructor.name).toBe('PoolerQuery')
    expect(Object.getOwnPropertyDescriptor(q, 'string')).toBeUndefined()
    expect(Object.getOwnPropertyDescriptor(q, 'origin')).toBeUndefined()
    // postgres.js's origin getter (cached per strings array) sees the template, never a per-query array.
    const Query = Object.getPrototypeOf(q.constructor)
    const own = Object.getOwnPropertyDescriptor(Query.prototype, 'origin')!
    const seen: unknown[] = []
    Object.defineProperty(Query.prototype, 'origin', {
      ...own,
      get(this: any) {
        seen.push(this.strings)
        return own.get!.call(this)
      },
    })
    try {
      expect(q.origin).toBe(q.origin)
      const u: any = pooled.sql.unsafe('select $1 as a, nosuchcol_inline_class', ['v'])
      await u.catch(() => {})
      expect(u.origin).toBe('') // untagged: postgres.js's own answer, without its per-query cache entry
    } finally {
      Object.defineProperty(Query.prototype, 'origin', own)
    }
    expect(seen.length).toBe(2)
    for (const strings of seen) expect(Array.isArray((strings as { raw?: unknown }).raw)).toBe(true)
    expect(q.strings).toEqual(["select (E'v') as a, nosuchcol_inline_class"]) // restored after each read
  })
})

describe.each(CLIENTS)('the postgres.js API keeps working on inlined queries: %s', (_name, sql) => {
  it('values(), raw(), forEach(), cursor(), describe() fallback', async () => {
    expect(await sql`select ${1}::int as a, ${'b'} as b`.values()).toEqual([[1, 'b']])
    const raw = await sql`select ${'x'} as a`.raw()
    expect(Buffer.from(raw[0]![0] as Uint8Array).toString()).toBe('x')
    const seen: number[] = []
    await sql`select g from generate_series(1, ${3}::int) g`.forEach((r) => void seen.push(r.g))
    expect(seen).toEqual([1, 2, 3])
    const batches: number[][] = []
    for await (const rows of sql`select g from generate_series(1, ${5}::int) g`.cursor(2))
      batches.push(rows.map((r) => r.g))
    expect(batches).toEqual([[1, 2], [3, 4], [5]])
    const d = await sql`select ${1}::int as a`.describe()
    expect(d.types).toEqual([23])
  })
  it('sql.begin, savepoints and Promise.all on a pool of one server connection', async () => {
    const one = client(undefined, stack.pool1Url)
    try {
      const r = await one.sql.begin(async (tx: any) => {
        const [a] = await tx`select ${1}::int as a`
        const b = await tx.savepoint((sp: any) => sp`select ${'two'} as b`)
        return [a.a, b[0].b]
      })
      expect(r).toEqual([1, 'two'])
      const all = await Promise.all(Array.from({ length: 10 }, (_, i) => one.sql`select ${i}::int as i`))
      expect(all.map((x: any) => x[0].i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    } finally {
      await one.close(1)
    }
  })
  it('is on in transaction mode by default and off when inlineParams: false', async () => {
    const off = client(false)
    try {
      expect(wasInlined(await sql`select ${1} as a`)).toBe(true)
      expect(wasInlined(await off.sql`select ${1} as a`)).toBe(false)
      expect(wasInlined(await sql`select ${sql.json({ a: 1 })} as a`)).toBe(false)
    } finally {
      await off.close(1)
    }
  })
})
