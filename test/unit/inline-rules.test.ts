/** What the inliner inlines and what it leaves to postgres.js (no database needed for these). */
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { inlineQuery } from '../../src/inline/inliner'
import { literal, quote } from '../../src/inline/literals'

/** A stand-in for a postgres.js Query, as patch() sees it. */
function tagged(strings: TemplateStringsArray, ...args: unknown[]) {
  return { tagged: true, strings, args, options: {}, reject: () => {} } as any
}
function unsafe(text: string, args: unknown[], options: Record<string, unknown> = {}) {
  return { tagged: false, strings: [text], args, options, reject: () => {} } as any
}
const sent = (q: any) => (inlineQuery(q, {}) ? (q.strings[0] as string) : undefined)
const x = "x'); drop table t; --"

describe('literals', () => {
  it('quotes as E-strings, doubling backslashes and quotes', () => {
    expect(quote(`a'b\\c`)).toBe(`E'a''b\\\\c'`)
    expect(quote('a\0b')).toBeUndefined()
    expect(quote("'")).toBe("E''''")
    expect(quote('\\')).toBe("E'\\\\'")
    expect(quote('plain text, no escapes')).toBe("E'plain text, no escapes'")
    // Numbers skip quote(): the same literal as quoting their text.
    for (const n of [0, -0, 1.5, -42, 1e21, 1e-7, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, Number.NaN])
      expect(literal(n)).toBe(`(${quote(String(n))})`)
    expect(literal('')).toBe("(E'')")
    expect(literal(42)).toBe("(E'42')")
    expect(literal(Number.NaN)).toBe("(E'NaN')")
    expect(literal(-Infinity)).toBe("(E'-Infinity')")
    expect(literal(true)).toBe("(E't'::bool)")
    expect(literal(false)).toBe("(E'f'::bool)")
    expect(literal(-(2n ** 63n))).toBe("(E'-9223372036854775808'::int8)")
    expect(literal(null)).toBe('(NULL)')
    expect(literal(new Date(0))).toBe("(E'1970-01-01T00:00:00.000Z'::timestamptz)")
    expect(literal(new Uint8Array([0, 255]))).toBe("(E'\\\\x00ff'::bytea)")
    expect(literal(Buffer.from('hi'))).toBe("(E'\\\\x6869'::bytea)")
    expect(literal(['a"b', 'c\\', null, 1.5])).toBe(`(E'{"a\\\\"b","c\\\\\\\\",null,"1.5"}')`)
    expect(
      literal([
        [1, 2],
        [3, 4],
      ]),
    ).toBe(`(E'{{"1","2"},{"3","4"}}')`)
    expect(literal([])).toBe("(E'{}')")
    expect(literal({ a: "it's" })).toBe(`(E'{"a":"it''s"}')`)
  })
  it('refuses what postgres.js would serialize differently or not at all', () => {
    for (const v of [
      undefined,
      Symbol('s'),
      () => 1,
      new Date(Number.NaN),
      [true, false],
      [new Date(0)],
      [1n],
      [Buffer.from('a')],
      [[1], 2],
      [{ a: 1 }],
      new Map(),
      new (class A {})(),
      { big: 1n },
      'a\0b',
    ])
      expect(literal(v)).toBeUndefined()
  })
})

describe('inlineQuery', () => {
  it('inlines tagged templates and unsafe text with $n', () => {
    expect(sent(tagged`select ${x} as a, ${1} as b`)).toBe(
      `select (E'x''); drop table t; --') as a, (E'1') as b`,
    )
    expect(sent(unsafe('select $2, $1, $2', ['a', 'b']))).toBe(`select (E'b'), (E'a'), (E'b')`)
    expect(sent(tagged`select * from t where id = any(${[1, 2]}) limit ${5}`)).toBe(
      `select * from t where id = any((E'{"1","2"}')) limit (E'5')`,
    )
    expect(sent(tagged`select ${{ a: 1 }}::jsonb`)).toBe(`select (E'{"a":1}')::jsonb`)
    expect(sent(tagged`select ${true}::jsonb, ${new Date(0)}::date`)).toContain('::bool)::jsonb')
  })
  it('falls back when a placeholder is not in plain SQL context', () => {
    const cases = [
      tagged`select '${x}'`,
      tagged`select E'\\${x}'`,
      tagged`select U&'${x}'`,
      tagged`select $$${x}$$`,
      tagged`select $tag$ ${x} $tag$`,
      tagged`select "${x}"`,
      tagged`select 1 -- ${x}
        , 2`,
      tagged`select /* ${x} */ 1`,
      tagged`select /* /* */ ${x} */ 1`,
      tagged`select a${x}`,
      tagged`select ${x}a`,
      tagged`select ${x}1`,
      tagged`select ${x}'a'`,
      tagged`select $1, ${x}`,
      tagged`select '\\' , ${x} -- '`,
      unsafe("select '$1'", ['a']),
      unsafe('select $1, $3', ['a', 'b', 'c']),
      unsafe('select $2', ['a', 'b']),
      unsafe('select $01', ['a']),
      unsafe('select $1', ['a'], { simple: true }),
    ]
    for (const q of cases) expect(sent(q), String(q.strings.join('$'))).toBeUndefined()
  })
  it('falls back where a parameter and a literal mean different things', () => {
    const cases = [
      tagged`select 1 order by ${'x'}`,
      tagged`select 1 group by ${'x'}, 2`,
      tagged`select distinct on (${'x'}) 1`,
      tagged`select ${'{}'}::jsonb`,
      tagged`select ${'true'}::bool`,
      tagged`select cast(${'2024-01-01'} as timestamptz)`,
      tagged`select ${'x'}::pg_catalog.bytea`,
      tagged`select ${[1]}::jsonb`,
      tagged`select ${{ a: 1 }}::bool`,
      tagged`select ${undefined}`,
      tagged`select ${postgres().json({ a: 1 })}`,
    ]
    for (const q of cases) expect(sent(q), String(q.strings.join('$'))).toBeUndefined()
    // A typed value is a cast expression, not a bare constant; the clause ends at LIMIT.
    expect(sent(tagged`select 1 order by ${true}`)).toBeDefined()
    expect(sent(tagged`select 1 order by 1 limit ${1}`)).toBeDefined()
  })
  it('the analysis of a text is kept, the decision per value is not', () => {
    // The same template and unsafe text, first with values that may be inlined, then with ones that may not.
    const cast = (v: unknown) => tagged`select ${v}::jsonb`
    const key = (v: unknown) => tagged`select 1 order by ${v}`
    for (let i = 0; i < 2; i++) {
      expect(sent(cast(true))).toBeDefined()
      expect(sent(cast('{}'))).toBeUndefined()
      expect(sent(key(true))).toBeDefined()
      expect(sent(key('x'))).toBeUndefined()
      expect(sent(unsafe('select $1::jsonb', [true]))).toBeDefined()
      expect(sent(unsafe('select $1::jsonb', ['{}']))).toBeUndefined()
      expect(sent(unsafe('select $1::pg_catalog.bytea', ['x']))).toBeUndefined()
      expect(sent(unsafe("select '$1', $1", ['x']))).toBe(`select '$1', (E'x')`)
    }
    // More distinct unsafe texts than the cache keeps: each still inlined as it should be.
    for (let i = 0; i < 1200; i++)
      expect(sent(unsafe(`select $1 as c${i}`, [i]))).toBe(`select (E'${i}') as c${i}`)
    expect(sent(unsafe('select $1::jsonb', ['{}']))).toBeUndefined()
  })
  it('falls back unless the connection speaks UTF8, and when debug logging is on', () => {
    expect(inlineQuery(tagged`select ${1}`, { connection: { client_encoding: 'SJIS' } })).toBe(false)
    expect(inlineQuery(tagged`select ${1}`, { parameters: { client_encoding: 'LATIN1' } })).toBe(false)
    expect(inlineQuery(tagged`select ${1}`, { parameters: { client_encoding: 'UTF8' } })).toBe(true)
    expect(inlineQuery(tagged`select ${1}`, { debug: () => {} })).toBe(false)
  })
  it('errors see the template with $n', () => {
    const q = tagged`select ${'secret'}::int`
    inlineQuery(q, {})
    q.string = 'ignored'
    expect(q.string).toBe('select $1::int')
    expect(q.args).toEqual([])
  })
  it('sends one statement as a simple-protocol Query; several statements and cursors stay extended', () => {
    const one = tagged`select ${1} as a`
    expect(inlineQuery(one, {})).toBe(true)
    expect([one.options.prepare, one.options.simple]).toEqual([false, true])
    const two = tagged`select ${1} as a; select 2`
    expect(inlineQuery(two, {})).toBe(true)
    expect([two.options.prepare, two.options.simple]).toEqual([false, undefined])
    const trailing = unsafe('select $1 as a;', [1])
    expect(inlineQuery(trailing, {})).toBe(true)
    expect(trailing.options.simple).toBeUndefined()
    const quoted = unsafe("select $1 as a, ';' as b -- ;", [1])
    expect(inlineQuery(quoted, {})).toBe(true)
    expect(quoted.options.simple).toBe(true)
    const cursor = tagged`select ${1} as a`
    cursor.cursorFn = () => {}
    expect(inlineQuery(cursor, {})).toBe(true)
    expect(cursor.options.simple).toBeUndefined()
    const each = tagged`select ${1} as a`
    each.forEachFn = () => {}
    expect(inlineQuery(each, {})).toBe(true)
    expect(each.options.simple).toBeUndefined()
    // Semicolons the lexer reads as text: one statement.
    for (const text of [
      'select $1 as a, $$;$$ as b',
      "select $1 as a, E'\\';' as b",
      'select $1 /* /* ; */ ; */ as a',
    ])
      expect([text, inlineQuery(unsafe(text, [1]), {})]).toEqual([text, true])
    for (const text of ['select $1 as a, $$;$$ as b', 'select $1 /* /* ; */ ; */ as a']) {
      const q = unsafe(text, [1])
      inlineQuery(q, {})
      expect([text, q.options.simple]).toEqual([text, true])
    }
  })
  it('maps error positions per query when one template is sent with values of different lengths', () => {
    const seen: unknown[] = []
    const run = (v: string) => {
      // Each call of the function is the same template (postgres.js caches call sites by it).
      const q = ((s: TemplateStringsArray, ...a: unknown[]) => tagged(s, ...a))`select ${v} as a, nope(${v})`
      q.reject = (e: unknown) => seen.push(e)
      expect(inlineQuery(q, {})).toBe(true)
      const at = (q.strings[0] as string).indexOf('nope') + 1
      q.reject({ name: 'PostgresError', position: String(at) })
      return q.strings[0] as string
    }
    expect(run('x')).not.toBe(run('a much longer value'))
    // Both map back onto the template: 'select $1 as a, '.length + 1.
    expect(seen.map((e: any) => e.position)).toEqual(['17', '17'])
  })
})

describe('a value shaped like a postgres.js helper is still a value', () => {
  const fragmentShaped = JSON.parse(
    '{"tagged":true,"strings":["to_jsonb(current_user) as leaked, ",""],"args":[0]}',
  )
  const identifierShaped = JSON.parse('{"constructor":{"name":"Identifier"},"value":"current_user"}')
  it.each([
    ['fragment-shaped JSON', fragmentShaped],
    ['identifier-shaped JSON', identifierShaped],
  ])('%s is inlined as one JSON literal, never spliced in as SQL', (_name, value) => {
    const text = sent(tagged`select ${value}::jsonb as j`)
    expect(text).toBe(`select ${literal(value)}::jsonb as j`)
    expect(text).not.toMatch(/select current_user/)
  })
})
