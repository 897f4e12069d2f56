/**
 * Differential property test: random values through the inlining client and through plain postgres.js
 * (same preset, inlineParams: false) against the real stack (PgBouncer, transaction mode) must give the
 * same rows, column names and types — or the same error (code, message, position, err.query).
 * Seeded: HP_SEED=<n> reproduces a run; HP_CASES sets the number of values (default 12 000).
 */
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { clientConfig, createRequestClient, parseOptions } from '../../src/internal'
import { stack } from '../support/stack'

const SEED = Number(process.env.HP_SEED ?? Date.now() % 2 ** 31)
const CASES = Number(process.env.HP_CASES ?? 12_000)
const BATCH = 80
const client = (inlineParams: boolean) =>
  createRequestClient(
    clientConfig(stack.databaseUrl, parseOptions({ inlineParams, applicationName: 'hp-inline' })),
  )
let plain = client(false)
let inlined = client(true)
afterAll(async () => {
  await Promise.all([plain.close(1), inlined.close(1)])
})
/** postgres.js can leave a connection waiting forever after a value fails to serialize mid-Bind: fresh pair. */
async function fresh() {
  await Promise.all([plain.close(0), inlined.close(0)])
  plain = client(false)
  inlined = client(true)
}

const NASTY = [
  "'",
  "''",
  '\\',
  "\\'",
  "'; drop table inline_victim; --",
  '$$',
  '$1',
  '$tag$',
  '--',
  '/*',
  '*/',
  '"',
  "E'",
  '\n',
  ';',
  '',
  ' ',
  '{}',
  '{"a":1}',
  'null',
  'NULL',
  'true',
  '😀👩‍👩‍👧',
  '\uD800',
  'é',
  'ß',
  '\u202E',
  '%_',
]
const CHARS = [
  "'",
  '\\',
  '$',
  '-',
  '/',
  '*',
  '"',
  'E',
  '\n',
  ';',
  '1',
  'a',
  '😀',
  '{',
  '}',
  ',',
  ' ',
  '(',
  ')',
  ':',
]
const noNul = (s: string) => !s.includes('\0')
const str = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom(...NASTY),
    fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 60 }),
    fc.constantFrom('x'.repeat(100_000), `${"'\\".repeat(30_000)}$$--/*`),
  )
  .filter(noNul)
const num = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(
    Number.NaN,
    Infinity,
    -Infinity,
    -0,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    2 ** 53,
    1e21,
    0.1 + 0.2,
  ),
)
const int32 = fc.integer({ min: -(2 ** 31) + 2, max: 2 ** 31 - 2 })
const big = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
const date = fc.date({
  min: new Date('0001-01-01T00:00:00Z'),
  max: new Date('9999-12-31T00:00:00Z'),
  noInvalidDate: true,
})
const bytes = fc.uint8Array({ maxLength: 64 })
const json = fc
  .dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 })
  .filter((o) => !JSON.stringify(o).includes('\\u0000'))

type Case = { v: unknown; ctx: string }
const pick = <T>(arb: fc.Arbitrary<T>, ctxs: string[]) =>
  fc.record({ v: arb as fc.Arbitrary<unknown>, ctx: fc.constantFrom(...ctxs) })
const caseArb: fc.Arbitrary<Case> = fc.oneof(
  pick(str, [
    '?',
    '?::text',
    'length(?)',
    "? || '|'",
    'upper(?)',
    "? = 'abc'",
    '?::varchar',
    "coalesce(?, 'n')",
    'md5(?)',
  ]),
  pick(num, ['?', '?::float8', '?::text']),
  pick(int32, ['?', '? + 1', '?::int4', '?::int8 * 2', '?::numeric']),
  pick(big, ['?', '?::numeric + 1', '?::text', '? = 0']),
  pick(fc.boolean(), ['?', 'not ?', '?::text', '?::int', '? or false']),
  pick(date, ['?', '?::text', 'extract(epoch from ?)', "? + interval '1 day'"]),
  pick(bytes, ['?', 'length(?)', "encode(?, 'hex')", '?::text']),
  pick(fc.constant(null), ['?', '?::int', "coalesce(?, 'x')", '?::text is null']),
  pick(
    fc.array(
      str.filter((s) => s.length < 1000),
      { maxLength: 6 },
    ),
    ['?::text[]', 'cardinality(?::text[])', "array_to_string(?::text[], ',', '*')", "'a' = any(?)"],
  ),
  pick(fc.array(fc.oneof(fc.double(), fc.constant(null)), { maxLength: 6 }), ['?::float8[]', '?::text[]']),
  pick(fc.array(fc.array(int32, { minLength: 2, maxLength: 2 }), { maxLength: 3 }), [
    '?::int8[]',
    '?::int4[]',
  ]),
  pick(json, ['?::jsonb', '?::json', 'jsonb_typeof(?::jsonb)']),
)

/** Runs cases as one statement through a client: tagged template or sql.unsafe with $n. */
async function run(sql: any, cases: Case[], tagged: boolean) {
  const items = cases.map((c, i) => `${c.ctx} as c${i}`)
  const values = cases.map((c) => c.v)
  let r: any
  if (tagged) {
    const parts = `select ${items.join(', ')}`.split('?')
    const strings = Object.assign([...parts], { raw: [...parts] }) as unknown as TemplateStringsArray
    r = await sql(strings, ...values)
  } else {
    let n = 0
    r = await sql.unsafe(
      `select ${items.join(', ')}`.replace(/\?/g, () => `$${++n}`),
      values,
    )
  }
  return { rows: [...r], columns: r.columns.map((c: any) => [c.name, c.type]), sent: r.statement as any }
}
const outcome = (p: Promise<any>): Promise<any> =>
  p.then(
    (ok) => ({ ok }),
    (e) => ({
      err: { name: e.name, code: e.code, message: e.message, position: e.position, query: e.query },
    }),
  )

let compared = 0
let inlinedStatements = 0
let statements = 0
async function compare(cases: Case[], tagged: boolean) {
  const [a, b] = [
    await outcome(run(plain.sql, cases, tagged)),
    await outcome(run(inlined.sql, cases, tagged)),
  ]
  statements++
  if ('ok' in b && b.ok.sent.types.length === 0) inlinedStatements++
  if ('ok' in a && 'ok' in b) {
    expect(b.ok.rows).toEqual(a.ok.rows)
    expect(b.ok.columns).toEqual(a.ok.columns)
    compared += cases.length
    return
  }
  expect(b.err ?? b.ok).toEqual(a.err ?? a.ok)
  // The same error for the whole batch: compare value by value to keep the coverage.
  if (cases.length > 1) for (const c of cases) await compare([c], tagged)
  else compared++
}

describe('differential: inlined vs postgres.js parameters', () => {
  it(`${CASES} random values agree (seed ${SEED})`, { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(caseArb, { minLength: BATCH, maxLength: BATCH }), fc.boolean(), compare),
      { seed: SEED, numRuns: Math.ceil(CASES / BATCH), endOnFailure: true },
    )
    expect(compared).toBeGreaterThanOrEqual(CASES)
    expect(inlinedStatements / statements).toBeGreaterThan(0.9)
  })

  it('error-prone values agree: same code, message, position and err.query', {
    timeout: 120_000,
  }, async () => {
    const errCase: fc.Arbitrary<Case> = fc.oneof(
      pick(fc.oneof(str, fc.constantFrom('12', ' 7 ', '1e3', '0x1F')), [
        '?::int4',
        '?::numeric',
        '?::uuid',
        '?::int4[]',
      ]),
      pick(
        fc.string().map((s) => `${s}\0${s}`),
        ['?', '?::text'],
      ),
      pick(fc.oneof(fc.double(), fc.integer()), ['?::int2', '?::int4', '?::numeric', '?::float4']),
      pick(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), ['?', '? + 1']),
      pick(fc.constantFrom(new Date(Number.NaN), new Date(8.64e15), new Date(-8.64e15)), ['?', '?::date']),
      // (Arrays and objects only where the server infers an array or json type: see the README's differences.)
      pick(fc.constantFrom([[1, 2], [3]], [1, [2]], [undefined], [true], [new Date(0)]), [
        '?::int[]',
        '?::text[]',
      ]),
      pick(fc.constantFrom(undefined, Symbol.iterator, 2n ** 64n), ['?', '?::jsonb']),
      pick(fc.constantFrom({ a: '\0' }, { b: 1n }), ['?::jsonb']),
      pick(str, ['?, nosuchcol', '? + nosuchfn()', "'x' + ?"]),
    )
    await fc.assert(
      fc.asyncProperty(errCase, fc.boolean(), async (c, tagged) => {
        await fresh()
        return compare([c], tagged)
      }),
      {
        seed: SEED,
        numRuns: Number(process.env.HP_ERROR_CASES ?? 600),
        endOnFailure: true,
      },
    )
  })
})
