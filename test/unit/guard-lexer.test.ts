import { describe, expect, it } from 'vitest'
import { splitStatements, type TokenKind, tokenize } from '../../src/sql/lexer'

const kinds = (sql: string): TokenKind[] => tokenize(sql).map((t) => t.kind)
const values = (sql: string): string[] => tokenize(sql).map((t) => t.value)
const texts = (sql: string): string[] => splitStatements(sql).map((s) => s.text)

describe('tokenize', () => {
  it('reports kinds, positions and values', () => {
    expect(tokenize('SELECT "Col" FROM t')).toEqual([
      { kind: 'word', start: 0, end: 6, value: 'select' },
      { kind: 'ident', start: 7, end: 12, value: 'Col' },
      { kind: 'word', start: 13, end: 17, value: 'from' },
      { kind: 'word', start: 18, end: 19, value: 't' },
    ])
    expect(tokenize('$12')).toEqual([{ kind: 'param', start: 0, end: 3, value: '12' }])
  })

  it('handles standard strings with doubled quotes', () => {
    expect(tokenize("'it''s' x")).toEqual([
      { kind: 'string', start: 0, end: 7, value: "'it''s'" },
      { kind: 'word', start: 8, end: 9, value: 'x' },
    ])
    expect(values("'a\\' x")).toEqual(["'a\\'", 'x'])
  })

  it('handles E-strings with backslash escapes', () => {
    expect(values("E'a\\'b' e'\\\\' x")).toEqual(["E'a\\'b'", "e'\\\\'", 'x'])
    expect(values("e'it''s' y")).toEqual(["e'it''s'", 'y'])
  })

  it('handles U&, B, X and N prefixes', () => {
    expect(kinds("U&'d\\0061t' u&\"d;\" B'0101' x'ff' X")).toEqual([
      'string',
      'ident',
      'string',
      'string',
      'word',
    ])
    // Like PostgreSQL's scanner, N'…' is the NATIONAL CHARACTER keyword followed by a plain string.
    expect(tokenize("N'it''s'").map((t) => [t.kind, t.value])).toEqual([
      ['word', 'n'],
      ['string', "'it''s'"],
    ])
    expect(tokenize('U&"a""b"')[0]?.value).toBe('a"b')
    expect(kinds("ab'x'")).toEqual(['word', 'string'])
    expect(kinds('u & x')).toEqual(['word', 'op', 'word'])
  })

  it('handles quoted identifiers with doubled quotes, keeping case', () => {
    expect(tokenize('"Se""T" "x;y"').map((t) => [t.kind, t.value])).toEqual([
      ['ident', 'Se"T'],
      ['ident', 'x;y'],
    ])
  })

  it('skips line and nested block comments', () => {
    expect(values('a -- b $1 ;\nc /* d /* e */ f; */ g')).toEqual(['a', 'c', 'g'])
    expect(values('a --\r b')).toEqual(['a', 'b'])
  })

  it('handles dollar quotes with and without tags', () => {
    expect(tokenize('$$a;$1$$ x')).toEqual([
      { kind: 'dollar', start: 0, end: 8, value: '$$a;$1$$' },
      { kind: 'word', start: 9, end: 10, value: 'x' },
    ])
    expect(values('$fn$ $$ $f$ $fn$ y')).toEqual(['$fn$ $$ $f$ $fn$', 'y'])
    expect(values('$a$ $A$ $a$')).toEqual(['$a$ $A$ $a$'])
    expect(values('$_1$x$_1$')).toEqual(['$_1$x$_1$'])
  })

  it('treats $n as placeholders, not dollar quotes, and $ inside words as part of the word', () => {
    expect(tokenize('$1$2').map((t) => [t.kind, t.value])).toEqual([
      ['param', '1'],
      ['param', '2'],
    ])
    expect(values('a$b a$1 a$$b')).toEqual(['a$b', 'a$1', 'a$$b'])
    expect(kinds('$ x')).toEqual(['punct', 'word'])
  })

  it('never produces param tokens inside literals, identifiers, comments or dollar quotes', () => {
    const sql = "select $1, '$2', E'\\'$3', \"$4\", $$ $5 $$, $q$ $6 $q$ /* $7 */ -- $8\n, $9"
    const params = tokenize(sql).filter((t) => t.kind === 'param')
    expect(params.map((t) => t.value)).toEqual(['1', '9'])
    for (const p of params) expect(sql.slice(p.start, p.end)).toBe(`$${p.value}`)
  })

  it('lexes numbers', () => {
    expect(values('1 1.5 .5 1e10 1.5E-3 0x1F 0o17 0b101 1_000 1..2')).toEqual([
      '1',
      '1.5',
      '.5',
      '1e10',
      '1.5E-3',
      '0x1F',
      '0o17',
      '0b101',
      '1_000',
      '1',
      '..',
      '2',
    ])
  })

  it('lexes operators like PostgreSQL', () => {
    expect(values('a::int')).toEqual(['a', '::', 'int'])
    expect(values('a<=b !=c <>d')).toEqual(['a', '<=', 'b', '!=', 'c', '<>', 'd'])
    expect(values('1+-2')).toEqual(['1', '+', '-', '2'])
    expect(values('a @- b')).toEqual(['a', '@-', 'b'])
    expect(values('a*/*c*/b')).toEqual(['a', '*', 'b'])
    expect(values('a:=b')).toEqual(['a', ':=', 'b'])
    expect(kinds('( ) , [ ] . ;')).toEqual([
      'punct',
      'punct',
      'punct',
      'punct',
      'punct',
      'punct',
      'semicolon',
    ])
  })

  it('runs unterminated literals and comments to the end of the input', () => {
    expect(tokenize("select 'abc; set x")).toEqual([
      { kind: 'word', start: 0, end: 6, value: 'select' },
      { kind: 'string', start: 7, end: 18, value: "'abc; set x" },
    ])
    expect(tokenize('a "bc')[1]).toEqual({ kind: 'ident', start: 2, end: 5, value: 'bc' })
    expect(values('a $$ b')).toEqual(['a', '$$ b'])
    expect(values('a /* /* */ b')).toEqual(['a'])
    expect(values("E'\\")).toEqual(["E'\\"])
    expect(values('a -- b')).toEqual(['a'])
  })

  it('lowers words (including non-ASCII identifiers)', () => {
    expect(values('SeLeCt Ünïcode_Ä1')).toEqual(['select', 'ünïcode_ä1'])
  })

  it('lexes a 1 KB statement completely (its speed is measured by npm run bench, not here)', () => {
    const sql = `select ${Array.from({ length: 80 }, (_, i) => `"c${i}" + $${i + 1}`).join(', ')} from t where x = 'a''b'`
    expect(sql.length).toBeGreaterThan(1000)
    const tokens = tokenize(sql)
    expect(tokens.filter((t) => t.kind === 'param').map((t) => t.value)).toEqual(
      Array.from({ length: 80 }, (_, i) => String(i + 1)),
    )
    expect(tokens.filter((t) => t.kind === 'ident')).toHaveLength(80)
    expect(tokens.at(-1)).toMatchObject({ kind: 'string', value: "'a''b'" })
  })
})

describe('splitStatements', () => {
  it('splits on top-level semicolons and drops empty statements', () => {
    expect(splitStatements(' select 1 ;; ;set x = 1;')).toEqual([
      { text: 'select 1', offset: 1, tokens: tokenize(' select 1') },
      { text: 'set x = 1', offset: 14, tokens: tokenize(' select 1 ;; ;set x = 1').slice(5) },
    ])
    expect(splitStatements('')).toEqual([])
    expect(splitStatements(' ; -- only a comment\n;')).toEqual([])
  })

  it('does not split on semicolons inside literals, identifiers, comments or dollar quotes', () => {
    const sql = "select ';', E'\\';', \"a;b\" -- ;\n /* ; /* ; */ ; */ , $$;$$, $x$;$x$; select 2"
    expect(splitStatements(sql).length).toBe(2)
    expect(texts(sql)[1]).toBe('select 2')
  })

  it('keeps leading comments out of the statement text but inner comments in', () => {
    const [st] = splitStatements('/* c */ -- d\n select /* e */ 1')
    expect(st?.text).toBe('select /* e */ 1')
    expect(st?.offset).toBe(14)
  })

  it('does not split inside parentheses or BEGIN ATOMIC bodies', () => {
    expect(
      texts('create rule r as on insert to t do also (insert into a values (1); delete from b); select 1'),
    ).toEqual([
      'create rule r as on insert to t do also (insert into a values (1); delete from b)',
      'select 1',
    ])
    const fn =
      'CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC select 1; select case when true then 2 end; END'
    expect(texts(`${fn}; select 3`)).toEqual([fn, 'select 3'])
    expect(texts('create procedure p() begin atomic insert into t values (1); end; select 4')).toHaveLength(2)
    expect(texts('select begin from t; select 5')).toHaveLength(2)
  })

  it('offsets point at the statement text', () => {
    const sql = "select 'x';\n\n  set search_path = a ;  /**/ reset all"
    for (const st of splitStatements(sql))
      expect(sql.slice(st.offset, st.offset + st.text.length)).toBe(st.text)
    expect(splitStatements(sql).map((s) => s.offset)).toEqual([0, 15, 43])
  })
})
