import { describe, expect, it } from 'vitest'
import { checkSql, GUARD_RULES, type GuardRule } from '../../src'
import { tokenize } from '../../src/sql/lexer'
import { DO_CASES, GUARD_CASES } from '../support/guard-cases'

const rules = (sql: string): GuardRule[] => checkSql(sql).map((f) => f.rule)
const rules2 = (sql: string, params: unknown[]): GuardRule[] => checkSql(sql, params).map((f) => f.rule)
/** Upper-cases every keyword/identifier outside literals, quoted identifiers and comments. */
const upperWords = (sql: string): string =>
  tokenize(sql)
    .filter((t) => t.kind === 'word')
    .reduce((s, t) => s.slice(0, t.start) + s.slice(t.start, t.end).toUpperCase() + s.slice(t.end), sql)

describe('checkSql unit table', () => {
  it('has at least 100 cases covering both sides of every rule', () => {
    expect(GUARD_CASES.length).toBeGreaterThanOrEqual(100)
    for (const rule of Object.keys(GUARD_RULES)) {
      expect(GUARD_CASES.some(([, r]) => r.includes(rule as GuardRule))).toBe(true)
    }
    expect(GUARD_CASES.filter(([, r]) => r.length === 0).length).toBeGreaterThan(40)
  })

  it.each(GUARD_CASES)('%s', (sql, expected) => {
    expect(rules(sql)).toEqual(expected)
    expect(rules(upperWords(sql))).toEqual(expected)
  })

  it.each(DO_CASES)('DO: %s', (sql, expected) => {
    expect(rules(sql)).toEqual(expected)
  })
})

describe('setseed()', () => {
  it('is session state: refused with its own fix; a column or function named otherwise is not', () => {
    for (const sql of [
      'select setseed(0.5)',
      'SELECT pg_catalog.setseed(0.5), random()',
      'select 1 where setseed($1) is null',
    ])
      expect(rules(sql), sql).toEqual(['session-set'])
    expect(checkSql('select setseed(0.5)')[0]?.fix).toMatch(/seed a generator in your application/)
    for (const sql of [
      'select setseed from t',
      'select myschema.setseed(1)',
      "select 'setseed(1)'",
      'select random()',
      'with setseed(x) as (select 1) select * from setseed',
      'with a as (select 1), setseed(x) as not materialized (select 2) select 1',
      'with recursive pg_advisory_lock(n) as (select 1) select * from pg_advisory_lock',
    ])
      expect(rules(sql), sql).toEqual([])
  })
})

describe('undecidable: the policy', () => {
  it('refuses what cannot be read, unless a bound value decides it', () => {
    const sql = "select set_config('app.id', '1', $1)"
    expect(rules(sql)).toEqual(['undecidable'])
    expect(checkSql(sql)[0]?.message).toContain('$1')
    for (const v of [false, null, undefined, 'off', 'f', ' NO ', 0, '0'])
      expect(
        checkSql(sql, [v]).map((f) => f.rule),
        String(v),
      ).toEqual(['session-set'])
    for (const v of [true, 'on', 't', 'yes', 1, '1']) expect(checkSql(sql, [v]), String(v)).toEqual([])
    for (const v of ['maybe', {}, 2.5, ['f']]) expect(rules2(sql, [v]), String(v)).toEqual(['undecidable'])
    expect(checkSql("select set_config('a.b', 'c', $2::bool)", ['x', false])[0]?.rule).toBe('session-set')
    expect(checkSql("select set_config('a.b', 'c', $2)", ['x'])[0]?.rule).toBe('undecidable')
    // inside a DO block a $n is never a bound value
    expect(
      rules2("do $$ begin execute 'select set_config(''a.b'', ''c'', $1)' using true; end $$", [true]),
    ).toEqual(['undecidable'])
  })

  it('names what could not be read', () => {
    expect(checkSql("do $$ begin execute format('set %I = 1', 'x'); end $$")[0]?.message).toMatch(
      /EXECUTE of a computed string \(format\('set %I = 1', 'x'\)\)/,
    )
    expect(checkSql("do language plperl '1'")[0]?.message).toContain('language plperl')
    expect(checkSql("select set_config('a.b', 'c', x) from t")[0]?.message).toContain('an expression')
  })
})

describe('checkSql: DO, EXPLAIN and set_config details', () => {
  it('reports DO findings at the offending position inside a dollar-quoted body', () => {
    const sql = 'select 1; do $$ begin perform pg_advisory_lock(1); end $$'
    const [f] = checkSql(sql)
    expect(f).toMatchObject({ rule: 'session-advisory-lock', offset: sql.indexOf('pg_advisory_lock') })
    expect(f?.statement).toBe('do $$ begin perform pg_advisory_lock(1); end $$')
    expect(f?.message).toMatch(/^DO block: pg_advisory_lock/)
  })

  it('EXPLAIN ANALYZE says it runs the statement', () => {
    expect(checkSql('explain analyze create temp table t as select 1')[0]?.message).toMatch(
      /^EXPLAIN ANALYZE runs the statement: CREATE TEMP TABLE/,
    )
  })

  it('reads is_local as a named argument in any position', () => {
    expect(rules("select set_config(is_local => false, setting_name => 'a.b', new_value => 'c')")).toEqual([
      'session-set',
    ])
    expect(rules("select set_config('a.b', 'c', is_local := 'yes')")).toEqual([])
  })
})

describe('checkSql findings', () => {
  it('reports the statement offset and excerpt in multi-statement input', () => {
    const [f, ...rest] = checkSql('select 1; set x = 1')
    expect(rest).toEqual([])
    expect(f).toMatchObject({ rule: 'session-set', offset: 10, statement: 'set x = 1' })
    expect(f?.message).toMatch(/^SET x changes session state; .*transaction-mode pooler/)
    expect(f?.fix).toBe(GUARD_RULES['session-set'].fix)
  })

  it('reports the offset of the offending call', () => {
    const sql = 'select 1;\nselect a, pg_catalog.pg_advisory_lock(1)'
    const [f] = checkSql(sql)
    expect(f?.offset).toBe(sql.indexOf('pg_catalog'))
    expect(f?.statement).toBe('select a, pg_catalog.pg_advisory_lock(1)')
    expect(f?.message).toContain('pg_advisory_lock')
  })

  it('names the offending statement in messages', () => {
    expect(checkSql('set search_path = a')[0]?.message).toBe(
      'SET search_path changes session state; behind a transaction-mode pooler it leaks to other clients or is lost',
    )
    expect(checkSql('reset all')[0]?.message).toMatch(/^RESET all changes session state/)
    expect(checkSql('set session authorization x')[0]?.message).toMatch(/^SET SESSION AUTHORIZATION /)
    expect(checkSql("prepare transaction 'x'")).toEqual([])
    expect(checkSql('unlisten *')[0]?.message).toMatch(/^UNLISTEN /)
    expect(checkSql('create temp table t (a int)')[0]?.message).toContain('without ON COMMIT DROP')
    for (const [sql] of GUARD_CASES) {
      for (const f of checkSql(sql)) {
        expect(f.message).not.toContain('\n')
        expect(f.fix).toBe(GUARD_RULES[f.rule].fix)
      }
    }
  })

  it('collapses whitespace and truncates long excerpts to 80 characters', () => {
    const sql = `set   search_path\n\tto ${Array.from({ length: 30 }, (_, i) => `schema_${i}`).join(', ')}`
    const [f] = checkSql(sql)
    expect(f?.statement.length).toBe(80)
    expect(f?.statement.endsWith('…')).toBe(true)
    expect(f?.statement.startsWith('set search_path to schema_0, schema_1')).toBe(true)
    expect(checkSql('set x=1')[0]?.statement).toBe('set x=1')
  })

  it('is case-insensitive for keywords', () => {
    for (const sql of [
      'SET X = 1',
      'Set x = 1',
      'LiStEn c',
      'Create Temp Table t (a int)',
      'Select PG_Advisory_Lock(1)',
    ]) {
      expect(checkSql(sql)).toHaveLength(1)
    }
    expect(checkSql('SET LOCAL X = 1')).toEqual([])
    expect(checkSql('Create Temp Table t (a int) On Commit Drop')).toEqual([])
  })

  it('does not treat $n placeholders as dollar quotes', () => {
    expect(rules('select $1; set x = $2')).toEqual(['session-set'])
    expect(rules('select $1, pg_advisory_lock($2)')).toEqual(['session-advisory-lock'])
    expect(rules('select $a$; set x = 1 $a$')).toEqual([])
  })

  it('returns [] for empty or comment-only input and never throws on unterminated input', () => {
    expect(checkSql('')).toEqual([])
    expect(checkSql('  -- set x = 1')).toEqual([])
    expect(checkSql("select 'unterminated; set x = 1")).toEqual([])
    expect(checkSql('select 1 /* set x = 1')).toEqual([])
    expect(rules('set x = 1; select $$ ; set y = 2')).toEqual(['session-set'])
  })
})

describe('GUARD_RULES', () => {
  const mentions: Record<GuardRule, RegExp[]> = {
    'session-set': [/SET LOCAL/, /set_config\(.*true\)/, /sql\.begin/, /withSettings/],
    listen: [/session-mode/, /direct connection/, /Supabase Realtime/],
    'sql-prepare': [/parameterized queries/],
    'with-hold-cursor': [/without HOLD/, /sql\.begin/, /sql\.cursor\(\)/],
    'session-temp-table': [/ON COMMIT DROP/, /sql\.begin/],
    load: [/shared_preload_libraries/, /session_preload_libraries/],
    'session-advisory-lock': [/pg_advisory_xact_lock/, /pg_try_advisory_xact_lock/, /sql\.begin/],
    undecidable: [/constant SQL text/, /session-mode or direct connection/],
  }

  it.each(Object.entries(mentions))('%s fix names the safe alternative', (rule, patterns) => {
    const entry = GUARD_RULES[rule as GuardRule]
    expect(entry.what.length).toBeGreaterThan(5)
    for (const p of patterns) expect(entry.fix).toMatch(p)
  })

  it('covers exactly the documented rule ids', () => {
    expect(Object.keys(GUARD_RULES).sort()).toEqual(Object.keys(mentions).sort())
  })
})
