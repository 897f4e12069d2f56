/**
 * A seeded generator of LABELLED statements for the guard: one effect (a statement or call that does, or
 * does not, leave session state behind) embedded in a wrapper (plain, among other statements, in a CTE,
 * under EXPLAIN [ANALYZE], in a DO block in every way PL/pgSQL runs SQL, in EXECUTE '…', nested DO), with
 * random keyword casing, comments and quoting. Labels come from PostgreSQL's semantics; the observation
 * test (test/integration/guard-observed.test.ts) checks them against what a second client of a
 * one-connection PgBouncer pool actually sees.
 */
import type { GuardRule } from '../../src'
import { casing, prng } from './guard-gen'

type Rand = () => number
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

/** The session state an effect leaves, as the observation probe names it. */
export type Probe = 'setting' | 'role' | 'temp' | 'lock' | 'listen' | 'cursor' | 'prepared' | 'none'

export interface LabelledCase {
  sql: string
  /** `leaks`: the guard must refuse it with `rule`; `safe`: must let it through; `undecidable`: policy. */
  label: 'leaks' | 'safe' | 'undecidable'
  rule?: GuardRule
  /** effect/wrapper, for stratified sampling. */
  stratum: string
  /** Can the app user run it through the pooler, with an effect a second client can observe? */
  observable: boolean
  probe: Probe
}

type Form = 'stmt' | 'call'
interface Effect {
  name: string
  label: LabelledCase['label']
  rule?: GuardRule
  probe: Probe
  form: Form
  /** `select …` that EXPLAIN can wrap (and ANALYZE runs). */
  explainable: boolean
  /** Runs as a plain PL/pgSQL statement; otherwise only through EXECUTE '…'. */
  plpgsql: boolean
  /** Can run in a DO block at all (EXECUTE of SELECT … INTO is not implemented). */
  inDo?: boolean
  observable?: boolean
  sql: (k: (s: string) => string, r: Rand) => string
}

const FALSE = [
  'false',
  'FALSE',
  '(false)',
  "'false'",
  "'f'",
  "' Off '",
  "'no'",
  "'0'",
  "E'n'",
  '$$0$$',
  'null',
]
const FALSE_CAST = [
  'null::bool',
  "'f'::boolean",
  'false::bool',
  '0::bool',
  "cast('no' as pg_catalog.bool)",
  "bool 'f'",
  'not true',
  "not 'yes'",
]
const TRUE = [
  'true',
  'TRUE',
  "'true'",
  "'on'",
  "' t '",
  "'yes'",
  "'1'",
  '1::boolean',
  "bool 'on'",
  'not false',
  "cast('y' as boolean)",
]
const SETTINGS: [string, string][] = [
  ['hp.a', "'v'"],
  ['search_path', 'hp_x, public'],
  ['statement_timeout', '1234'],
  ['work_mem', "'5MB'"],
]

const call = (rule: GuardRule | undefined, name: string, fn: (r: Rand) => string, probe: Probe): Effect => ({
  name,
  label: rule ? 'leaks' : 'safe',
  ...(rule && { rule }),
  probe,
  form: 'call',
  explainable: true,
  plpgsql: true,
  sql: (k, r) => `${k('select')} ${fn(r)}`,
})
const stmt = (e: Omit<Effect, 'form' | 'explainable'> & { explainable?: boolean }): Effect => ({
  form: 'stmt',
  explainable: false,
  ...e,
})

const EFFECTS: Effect[] = [
  // session-set
  stmt({
    name: 'set',
    label: 'leaks',
    rule: 'session-set',
    probe: 'setting',
    plpgsql: true,
    sql: (k, r) => {
      const [n, v] = pick(r, SETTINGS)
      return `${k(pick(r, ['set', 'set session']))} ${n} ${pick(r, ['=', k('to')])} ${v}`
    },
  }),
  stmt({
    name: 'set-local',
    label: 'safe',
    probe: 'none',
    plpgsql: true,
    sql: (k, r) => {
      const [n, v] = pick(r, SETTINGS)
      return `${k('set local')} ${n} = ${v}`
    },
  }),
  stmt({
    name: 'set-role',
    label: 'leaks',
    rule: 'session-set',
    probe: 'role',
    plpgsql: true,
    sql: (k) => `${k('set role')} hp_oracle_role`,
  }),
  stmt({
    name: 'set-local-role',
    label: 'safe',
    probe: 'none',
    plpgsql: true,
    sql: (k) => `${k('set local role')} hp_oracle_role`,
  }),
  stmt({
    name: 'reset',
    label: 'leaks',
    rule: 'session-set',
    probe: 'setting',
    plpgsql: true,
    sql: (k, r) => `${k('reset')} ${pick(r, [k('all'), 'hp.seed'])}`,
  }),
  stmt({
    name: 'set-tracked',
    label: 'leaks',
    rule: 'session-set',
    probe: 'setting',
    plpgsql: true,
    observable: false, // PgBouncer re-syncs TimeZone, DateStyle, application_name … for the next client
    sql: (k, r) => pick(r, [`${k('set time zone')} 'Asia/Tokyo'`, `${k('set application_name')} = 'x'`]),
  }),
  call(
    'session-set',
    'set_config-false',
    (r) =>
      `${pick(r, ['set_config', 'pg_catalog.set_config', '"set_config"'])}('hp.a', 'v', ${pick(r, [...FALSE, ...FALSE_CAST])})`,
    'setting',
  ),
  // PostgreSQL 15 does not name set_config's arguments (the call fails there): labelled, not observed.
  {
    ...call(
      'session-set',
      'set_config-named',
      (r) =>
        `set_config(${pick(r, ["'hp.a', 'v', is_local => false", "is_local => 'off', setting_name => 'hp.a', new_value => 'v'"])})`,
      'setting',
    ),
    observable: false,
  },
  // UPDATE pg_settings: the documented equivalent of SET
  stmt({
    name: 'settings-update',
    label: 'leaks',
    rule: 'session-set',
    probe: 'setting',
    plpgsql: true,
    explainable: true,
    sql: (k, r) => {
      const [n, v] = pick(
        r,
        SETTINGS.filter(([n]) => !n.startsWith('hp.')),
      )
      const target = pick(r, [
        'pg_settings',
        'pg_catalog.pg_settings',
        '"pg_settings"',
        `${k('only')} pg_settings`,
      ])
      return `${k('update')} ${target} ${k('set')} setting = '${v.replaceAll("'", '')}' ${k('where')} name = '${n}'`
    },
  }),
  stmt({
    name: 'settings-select',
    label: 'safe',
    probe: 'none',
    plpgsql: false,
    explainable: true,
    sql: (k) => `${k('select')} setting ${k('from')} pg_settings ${k('where')} name = 'search_path'`,
  }),
  call(undefined, 'set_config-true', (r) => `set_config('hp.a', 'v', ${pick(r, TRUE)})`, 'none'),
  // listen
  stmt({
    name: 'listen',
    label: 'leaks',
    rule: 'listen',
    probe: 'listen',
    plpgsql: true,
    sql: (k) => `${k('listen')} hp_ch`,
  }),
  stmt({
    name: 'notify',
    label: 'safe',
    probe: 'none',
    plpgsql: true,
    sql: (k) => `${k('notify')} hp_ch, 'listen x; set y = 1'`,
  }),
  call(undefined, 'pg_notify', () => "pg_notify('hp_ch', 'x')", 'none'),
  // sql-prepare
  stmt({
    name: 'prepare',
    label: 'leaks',
    rule: 'sql-prepare',
    probe: 'prepared',
    plpgsql: true,
    sql: (k) => `${k('prepare')} hp_q ${k('as select')} 1`,
  }),
  stmt({
    name: 'two-phase',
    label: 'safe',
    probe: 'none',
    plpgsql: false,
    sql: (k) => `${k('begin')}; ${k('select')} 1; ${k('prepare transaction')} 'hp-oracle-gid'`,
  }),
  // with-hold-cursor
  stmt({
    name: 'hold-cursor',
    label: 'leaks',
    rule: 'with-hold-cursor',
    probe: 'cursor',
    plpgsql: false,
    sql: (k) => `${k('declare')} hp_c ${k('cursor with hold for select')} 1`,
  }),
  stmt({
    name: 'cursor',
    label: 'safe',
    probe: 'none',
    plpgsql: false,
    sql: (k) =>
      `${k('begin')}; ${k('declare')} hp_c ${k('cursor for select')} 1; ${k('fetch 1 from')} hp_c; ${k('commit')}`,
  }),
  // session-temp-table
  stmt({
    name: 'temp',
    label: 'leaks',
    rule: 'session-temp-table',
    probe: 'temp',
    plpgsql: true,
    sql: (k, r) =>
      pick(r, [
        `${k(pick(r, ['create temp table', 'create temporary table', 'create local temp table']))} hp_t (a int)`,
        `${k('create temp view')} hp_v ${k('as select')} 1`,
        `${k('create temporary sequence')} hp_s`,
        `${k('create table')} pg_temp.hp_t (a int)`,
        `${k('create temp table')} hp_t (a int) ${k('on commit delete rows')}`,
      ]),
  }),
  stmt({
    name: 'temp-object',
    label: 'leaks',
    rule: 'session-temp-table',
    probe: 'temp',
    plpgsql: true,
    sql: (k, r) =>
      pick(r, [
        `${k(pick(r, ['create function', 'create or replace function']))} pg_temp.hp_f() ${k('returns int language sql as')} 'select 1'`,
        `${k(pick(r, ['create procedure', 'create or replace procedure']))} pg_temp.hp_p() ${k('language sql as')} 'select 1'`,
        `${k('create type')} pg_temp.hp_ty ${k('as')} (a int)`,
        `${k('create type')} pg_temp.hp_en ${k('as enum')} ('a', 'b')`,
        `${k('create domain')} pg_temp.hp_d ${k('as')} int`,
        `${k('create operator')} pg_temp.=== (${k('function')} = int4eq, leftarg = int, rightarg = int)`,
      ]),
  }),
  stmt({
    name: 'temp-as',
    label: 'leaks',
    rule: 'session-temp-table',
    probe: 'temp',
    plpgsql: true,
    explainable: true,
    sql: (k) => `${k('create temp table')} hp_t ${k('as select')} 1 ${k('as')} a`,
  }),
  stmt({
    name: 'select-into-temp',
    inDo: false,
    label: 'leaks',
    rule: 'session-temp-table',
    probe: 'temp',
    plpgsql: false,
    explainable: true,
    sql: (k) => `${k('select')} 1 ${k('as')} a ${k('into temp')} hp_t`,
  }),
  stmt({
    name: 'temp-drop',
    label: 'safe',
    probe: 'none',
    plpgsql: true,
    sql: (k) => `${k('create temp table')} hp_t (a int) ${k('on commit drop')}`,
  }),
  // load: the app user may not LOAD; its label comes from the parser oracle only
  stmt({
    name: 'load',
    label: 'leaks',
    rule: 'load',
    probe: 'none',
    plpgsql: true,
    observable: false,
    sql: (k) => `${k('load')} 'auto_explain'`,
  }),
  // session-advisory-lock
  call(
    'session-advisory-lock',
    'advisory',
    (r) =>
      `${pick(r, ['pg_advisory_lock', 'pg_try_advisory_lock', 'pg_advisory_lock_shared', 'pg_catalog.pg_advisory_lock', '"pg_try_advisory_lock_shared"'])}(${1 + Math.floor(r() * 99)})`,
    'lock',
  ),
  call(
    undefined,
    'xact-advisory',
    (r) =>
      `${pick(r, ['pg_advisory_xact_lock', 'pg_try_advisory_xact_lock', 'pg_advisory_xact_lock_shared'])}(${1 + Math.floor(r() * 99)})`,
    'none',
  ),
  // stored code: only stored, never run now
  stmt({
    name: 'stored-function',
    label: 'safe',
    probe: 'none',
    plpgsql: true,
    sql: (k, r) =>
      pick(r, [
        `${k('create or replace function')} hp_oracle_f() ${k('returns void language sql as')} 'select pg_advisory_lock(1)'`,
        `${k('create or replace function')} hp_oracle_g() ${k('returns void language plpgsql as')} $f$ ${k('begin perform')} set_config('hp.a', 'v', false); ${k('end')} $f$`,
        `${k('create or replace view')} hp_oracle_v ${k('as select')} pg_try_advisory_lock(1) ${k('as')} a`,
        `${k('create table if not exists')} hp_oracle_t (a boolean ${k('default')} pg_try_advisory_lock(1))`,
        `${k('create table if not exists')} hp_oracle_n ${k('as select')} pg_try_advisory_lock(1) ${k('as')} a ${k('with no data')}`,
      ]),
  }),
  // undecidable (policy: refused)
  call(
    'undecidable',
    'set_config-expr',
    (r) =>
      `set_config('hp.a', 'v', ${pick(r, ['1 = 0', "current_setting('hp.flag', true) = 'on'", "('f' || '')::bool"])})`,
    'none',
  ),
]
for (const e of EFFECTS) if (e.rule === 'undecidable') e.label = 'undecidable'

const WS = [' ', ' ', '  ', '\n', '\t', ' /* c; $1 */ ', ' /* a /* ; nested */ b */ ', ' -- set x = 1;\n']
const FILLERS = [
  'select 1',
  "select 'set hp.a = 1; listen x'",
  'select "set" from (select 1 as "set") s',
  '/* listen x; */ select 2',
  "select set_config('hp.b', 'x', true)",
  'select pg_advisory_xact_lock(7)',
]

/** `'…'` with quotes doubled, or `$tag$…$tag$` with a tag that does not occur in `s`. */
function quoteBody(r: Rand, s: string): string {
  if (r() < 0.35) return `'${s.replaceAll("'", "''")}'`
  for (let i = 0; ; i++) {
    const tag = i === 0 ? '$$' : `$b${i}$`
    if (`${s}${tag}`.indexOf(tag) === s.length) return `${tag}${s}${tag}` // ends where it should
  }
}

type Ctx = { k: (s: string) => string; ws: () => string }

/** The effect as a PL/pgSQL statement; through EXECUTE '…' when it is not one, or at random. */
function inPlpgsql(c: Ctx, r: Rand, e: Effect, text: string): string {
  if (e.form === 'call' && r() < 0.5) {
    const expr = text.replace(/^\S+\s+/, '') // drop `select`
    return e.probe === 'lock' || r() < 0.5 ? `${c.k('perform')} ${expr}` : `hp_v := ${expr}`
  }
  if (e.form === 'call') return `${c.k('execute')} ${quoteBody(r, text)}` // a bare SELECT has no destination
  if (e.plpgsql && r() < 0.6) return text
  return `${c.k('execute')} ${quoteBody(r, text)}`
}

/** A DO block running `inner` (a PL/pgSQL statement) in one of the shapes PL/pgSQL has. */
function doBlock(c: Ctx, r: Rand, inner: string): string {
  const k = c.k
  const shapes = [
    () => `${k('begin')} ${inner}; ${k('end')}`,
    () => `${k('declare')} hp_v text; ${k('begin')} ${inner}; ${k('end')}`,
    () => `${k('begin if true then')} ${inner}; ${k('end if')}; ${k('end')}`,
    () => `${k('begin for')} i ${k('in')} 1..1 ${k('loop')} ${inner}; ${k('end loop')}; ${k('end')}`,
    () =>
      `<<outer>> ${k('begin begin')} ${inner}; ${k('exception when others then raise')}; ${k('end')}; ${k('end')}`,
    () => `${k('begin raise notice')} 'set x = 1; listen y'; ${inner}; ${k('end')}`,
  ]
  const declares = /\bhp_v :=/.test(inner)
  const body = declares ? `${k('declare')} hp_v text; ${k('begin')} ${inner}; ${k('end')}` : pick(r, shapes)()
  const lang = pick(r, ['', ` ${k('language')} plpgsql`, 'before'])
  const quoted = quoteBody(r, ` ${body} `)
  return lang === 'before' ? `${k('do language plpgsql')} ${quoted}` : `${k('do')} ${quoted}${lang}`
}

const WRAPPERS = [
  'plain',
  'multi',
  'cte',
  'distinct-on',
  'explain',
  'explain-analyze',
  'do',
  'do-nested',
  'operand',
  'do-cursor',
] as const

/** One labelled case. */
function one(c: Ctx, r: Rand): LabelledCase {
  const e = pick(r, EFFECTS)
  const usable = WRAPPERS.filter(
    (w) =>
      ((w !== 'cte' && w !== 'distinct-on' && w !== 'operand' && w !== 'do-cursor') || e.form === 'call') &&
      (!w.startsWith('explain') || e.explainable) &&
      (!w.startsWith('do') || (e.name !== 'two-phase' && e.inDo !== false)) &&
      (w !== 'do-cursor' || e.label !== 'undecidable') &&
      (e.name !== 'cursor' || w === 'plain' || w === 'multi'),
  )
  const w = pick(r, usable)
  const text = e.sql(c.k, r)
  let sql = text
  let { label } = e
  if (w === 'multi') {
    const before = Array.from({ length: Math.floor(r() * 3) }, () => pick(r, FILLERS))
    const after = Array.from({ length: Math.floor(r() * 3) }, () => pick(r, FILLERS))
    sql = [...before, text, ...after].join(`${c.ws()};${c.ws()}`)
  } else if (w === 'distinct-on') {
    sql = `${c.k('select distinct on')} (1 = 1) ${text.replace(/^\S+\s+/, '')}`
  } else if (w === 'operand') {
    // an expression after keywords that end in an operand: the call runs to compute the pattern
    // (NOT SIMILAR with a comment between NOT and SIMILAR is a syntax error for PostgreSQL's lookahead)
    const op = r() < 0.5 ? c.k('similar to') : `${c.k('not')} ${c.k('similar')} ${c.k('to')}`
    sql = `${c.k('select')} 'a' ${op} ${text.replace(/^\S+\s+/, '')}::text`
  } else if (w === 'do-cursor') {
    // a bound cursor's query runs when FOR … IN (or OPEN) uses it
    const k = c.k
    const body = ` ${k('declare')} hp_c ${k('cursor for')} ${text}; hp_r record; ${k('begin for')} hp_r ${k('in')} hp_c ${k('loop end loop')}; ${k('end')} `
    sql = `${k('do')} ${quoteBody(r, body)}`
  } else if (w === 'cte') {
    sql = `${c.k('with')} hp_x ${c.k(pick(r, ['as', 'as materialized']))} (${text}) ${c.k('select * from')} hp_x`
  } else if (w === 'explain') {
    sql = `${c.k(pick(r, ['explain', 'explain verbose', 'explain (costs off)', 'explain (analyze false)', 'explain (analyze off, verbose)']))} ${text}`
    label = 'safe' // EXPLAIN without ANALYZE plans, runs nothing
  } else if (w === 'explain-analyze') {
    sql = `${c.k(pick(r, ['explain analyze', 'explain analyse verbose', 'explain (analyze)', 'explain (analyze, costs off)', 'explain (analyze on, timing off)']))} ${text}`
  } else if (w === 'do') {
    sql = doBlock(c, r, inPlpgsql(c, r, e, text))
  } else if (w === 'do-nested') {
    sql = doBlock(c, r, `${c.k('execute')} ${quoteBody(r, doBlock(c, r, inPlpgsql(c, r, e, text)))}`)
  }
  const observable = (e.observable ?? true) && label !== 'undecidable'
  return {
    sql: `${r() < 0.3 ? c.ws() : ''}${sql}${r() < 0.3 ? ';' : ''}`,
    label,
    ...(label !== 'safe' && e.rule && { rule: e.rule }),
    stratum: `${e.name}/${w}`,
    observable,
    probe: label === 'leaks' ? e.probe : 'none',
  }
}

/**
 * `count` labelled cases, deterministic for a given seed.
 *
 * @example
 * generateLabelled(7, 3).length // 3
 */
export function generateLabelled(seed: number, count: number): LabelledCase[] {
  const r = prng(seed)
  const { k, ws } = casing(r, WS)
  return Array.from({ length: count }, () => one({ k, ws }, r))
}
