/**
 * A shared pool's queries are built by pool/query-class.ts as instances of a subclass of postgres.js's own
 * Query: the same fields as postgres.js's `sql\`…\`` and `sql.unsafe()` build. Nothing here connects (a
 * query runs only once awaited); the same queries run against the stack in fidelity.test.ts.
 */
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { queryFactory } from '../../src/pool/query-class'

const sql = postgres('postgres://app:pw@127.0.0.1:1/app', { max: 1 })
afterAll(() => sql.end({ timeout: 0 }))

/** The fields postgres.js's Query constructor sets (the promise's own state aside). */
const FIELDS = [
  'tagged',
  'strings',
  'args',
  'handler',
  'canceller',
  'options',
  'state',
  'statement',
  'active',
  'cancelled',
  'executed',
  'signature',
] as const
const fields = (q: any) => Object.fromEntries(FIELDS.map((k) => [k, q[k]]))
const tag = (strings: TemplateStringsArray, ...args: unknown[]) => [strings, args] as const

describe('queryFactory refuses what it cannot build the same way', () => {
  it('a client behind a Proxy (an instrumentation wrapping postgres()) keeps building its own queries', () => {
    const wrapped = new Proxy(sql, { apply: (t, self, args) => Reflect.apply(t, self, args) })
    expect(queryFactory(wrapped)).toBeUndefined()
  })
  it('a client whose queries are patched as they are built (own keys postgres.js does not set)', () => {
    const patched = postgres('postgres://app:pw@127.0.0.1:1/patched', { max: 1 })
    const unsafe = patched.unsafe
    ;(patched as any).unsafe = (...a: any[]) => Object.assign((unsafe as any)(...a), { handle: () => {} })
    expect(queryFactory(patched)).toBeUndefined()
    void patched.end({ timeout: 0 })
  })
  it('an unpatched client: a factory', () => {
    expect(queryFactory(sql)).toBeDefined()
  })
})

describe('QueryFactory (a shared pool builds its own queries)', () => {
  const factory = queryFactory(sql)!

  it('a tagged query: the fields postgres.js sets, on an instance of its Query', () => {
    const [strings, args] = tag`select ${1}::int as a, ${'x'} as b`
    const ours: any = factory.tagged(strings, [...args])
    const theirs: any = (sql as any)(strings, ...args)
    expect(fields(ours)).toEqual(fields(theirs))
    expect(ours.handler).toBe(theirs.handler)
    expect(ours.canceller).toBe(theirs.canceller)
    expect(ours).toBeInstanceOf(theirs.constructor)
    expect(ours).toBeInstanceOf(Promise)
    // postgres.js's origin (the call site its errors name) is recorded too.
    const origin = Object.getOwnPropertySymbols(theirs).find((k) => k.description === 'OriginError')!
    expect(ours[origin]).toBeInstanceOf(Error)
  })

  it.each([
    ['no arguments', 'select 1', [], {}],
    ['arguments', 'select $1::int', [1], {}],
    ['prepare asked for', 'select $1::int', [1], { prepare: true }],
    ['simple asked for', 'select 1', [], { simple: false }],
    ['other options kept', 'select 1', [], { prepare: false, simple: true }],
  ] as const)('unsafe with %s: the options postgres.js computes', (_name, text, args, options) => {
    const ours: any = factory.unsafe(text, [...args], { ...options })
    const theirs: any = sql.unsafe(text, [...args], { ...options } as any)
    expect(fields(ours)).toEqual(fields(theirs))
  })

  it('the subclass declares no static member (that is what keeps it a fast-mode class) and keeps the species', () => {
    const q: any = factory.tagged(tag`select 1`[0], [])
    const sub = q.constructor
    const base = Object.getPrototypeOf(sub)
    expect(sub).not.toBe(base)
    expect(sql`select 1`).toBeInstanceOf(base)
    expect(Object.getOwnPropertySymbols(sub)).toEqual([])
    expect(sub[Symbol.species]).toBe(Promise)
    // One subclass per postgres.js Query class, whatever the client.
    const other = postgres('postgres://app:pw@127.0.0.1:1/other', { max: 1 })
    expect((queryFactory(other)!.tagged(tag`select 2`[0], []) as any).constructor).toBe(sub)
    void other.end({ timeout: 0 })
  })
})
