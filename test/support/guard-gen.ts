/**
 * A seeded generator of valid, tricky PostgreSQL for the parser-oracle test: statement templates for
 * every guard rule (both sides), random identifiers, literals full of quotes, dollars, semicolons and
 * comments, random keyword casing and whitespace, joined into multi-statement strings.
 */

type Rand = () => number

/**
 * mulberry32: a tiny deterministic PRNG.
 *
 * @example
 * const r = prng(42); r() // 0.6011037519201636
 */
export function prng(seed: number): Rand {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
const maybe = (r: Rand, s: string, p = 0.5): string => (r() < p ? s : '')

const WS = [
  ' ',
  ' ',
  ' ',
  '  ',
  '\n',
  '\t',
  '\r\n ',
  ' /* c; $1 */ ',
  ' /* a /* ; nested */ b */ ',
  ' -- set x = 1;\n',
]
const NAMES = [
  't',
  'users',
  'settings',
  'listen_count',
  'load_id',
  'a$b',
  'x1',
  'data_set',
  'ümlaut',
  'Foo',
  'c_3',
]
const QUOTED = [
  '"set"',
  '"a;b"',
  '"$1"',
  '"Mixed Case"',
  '"q""uote"',
  '"pg_advisory_lock"',
  '"listen"',
  '"é✓"',
]
const LITERALS = [
  '1',
  '42.5',
  '.5',
  '1e-3',
  '0x1F',
  '1_000',
  "'plain'",
  "'it''s; set x = 1'",
  "'$1 -- not a comment'",
  "E'\\'; reset all; \\\\'",
  "e'a\\nb'",
  "U&'d\\0061t'",
  "B'0101'",
  "X'ff'",
  "N'nat'",
  '$$ ; $1 listen x $$',
  '$tag$ set x = 1; $$ $tag$',
  "'ü✓ 😀'",
  "'/* not a comment */'",
  'true',
  'null',
]
const EXPRS = [
  ...LITERALS,
  '$1',
  '$2::int',
  "'x'::text",
  'array[1, 2]',
  '(1 + -2)',
  "'a' || 'b'",
  '-1',
  'now()',
]
const ADVISORY = ['pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_advisory_unlock']
const ADVISORY_SAFE = ['pg_advisory_xact_lock', 'pg_try_advisory_xact_lock', 'pg_advisory_xact_lock_shared']

/** Generator context: random keyword casing, whitespace, names and expressions. */
/**
 * Random keyword casing (`kw`), whitespace from `spaces` (`ws`), and keywords separated by random
 * whitespace, randomly cased (`k`): shared by the lexer generator and the labelled-statement generator.
 */
export function casing(r: Rand, spaces: readonly string[]) {
  const kw = (s: string): string => {
    const mode = r()
    if (mode < 0.45) return s
    if (mode < 0.8) return s.toUpperCase()
    return [...s].map((ch) => (r() < 0.5 ? ch.toUpperCase() : ch)).join('')
  }
  const ws = (): string => pick(r, spaces)
  const k = (words: string): string =>
    words
      .split(' ')
      .map((w) => (/^[a-z_]+$/.test(w) ? kw(w) : w))
      .join(ws())
  return { kw, ws, k }
}

function context(r: Rand) {
  const { kw, ws, k } = casing(r, WS)
  const name = (): string => (r() < 0.7 ? pick(r, NAMES) : pick(r, QUOTED))
  const expr = (): string => pick(r, EXPRS)
  /** A string constant (Sconst) or a number: valid as a SET value. */
  const lit = (): string =>
    pick(
      r,
      LITERALS.filter((l) => /^(?:'|[eE]'|U&|\$|\d)/.test(l)),
    )
  /** A string constant only. */
  const str = (): string =>
    pick(
      r,
      LITERALS.filter((l) => /^(?:'|[eE]'|U&|\$)/.test(l)),
    )
  return { k, ws, name, expr, lit, str, kw }
}

type Ctx = ReturnType<typeof context>
type Template = (c: Ctx, r: Rand) => string

const TEMPLATES: Template[] = [
  (c) =>
    `${c.k('select')} ${c.expr()},${c.ws()}${c.name()} ${c.k('from')} ${c.name()} ${c.k('where')} ${c.name()} = ${c.expr()}`,
  (c, r) =>
    `${c.k(pick(r, ['set', 'set session', 'set local']))} ${pick(r, ['search_path', 'statement_timeout', '"my.var"', 'app.user_id'])}${c.ws()}${pick(r, ['=', 'to', 'TO'])} ${pick(r, [c.lit(), c.name(), c.k('default')])}`,
  (c, r) =>
    r() < 0.5
      ? `${c.k(pick(r, ['set role', 'set local role', 'set session role']))} ${pick(r, [c.name(), c.kw('none')])}`
      : `${c.k(pick(r, ['set session authorization', 'set local session authorization']))} ${pick(r, [c.name(), c.kw('default')])}`,
  (c, r) =>
    c.k(
      pick(r, [
        "set time zone 'UTC'",
        'set transaction isolation level serializable',
        'set transaction read only',
        'set session characteristics as transaction read only',
        'set constraints all deferred',
        "set local time zone 'UTC'",
      ]),
    ),
  (c, r) =>
    `${c.k('reset')} ${pick(r, [c.kw('all'), c.kw('role'), c.k('session authorization'), 'search_path', c.name()])}`,
  (c, r) =>
    `${c.k('select')} ${maybe(r, 'pg_catalog.', 0.3)}${c.kw('set_config')}(${c.lit()}, ${c.expr()},${c.ws()}${pick(r, ['false', 'FALSE', '(false)', 'true', '$1', "'false'", 'false::bool'])})`,
  (c, r) => {
    const fn = pick(r, r() < 0.6 ? ADVISORY : ADVISORY_SAFE)
    const call = `${maybe(r, 'pg_catalog.', 0.2)}${r() < 0.15 ? `"${fn}"` : c.kw(fn)}${maybe(r, ' ', 0.2)}(${c.expr()})`
    return r() < 0.2
      ? `${c.k('select')} ${c.kw(fn)} ${c.k('from')} ${c.name()}`
      : `${c.k('select')} ${c.name()}, ${call}`
  },
  (c, r) =>
    pick(r, [
      () => `${c.k('notify')} ${c.name()}${maybe(r, ", 'payload; listen x'")}`,
      () => `${c.k('listen')} ${c.name()}`,
      () => `${c.k('unlisten')} ${r() < 0.3 ? '*' : c.name()}`,
    ])(),
  (c, r) =>
    pick(r, [
      () => `${c.k('prepare')} ${c.name()} (int) ${c.k('as select')} $1`,
      () => `${c.k('execute')} ${c.name()}${maybe(r, ` (${c.lit()})`)}`,
      () => `${c.k(pick(r, ['deallocate', 'deallocate prepare']))} ${pick(r, [c.name(), c.kw('all')])}`,
      () => `${c.k('prepare transaction')} 'gid;1'`,
      () => `${c.k('commit prepared')} 'gid'`,
    ])(),
  (c, r) =>
    `${c.k('declare')} ${c.name()} ${c.k(pick(r, ['', 'binary', 'scroll', 'no scroll', 'insensitive']))} ${c.k('cursor')} ${c.k(pick(r, ['', 'with hold', 'without hold', 'with hold']))} ${c.k('for select')} ${c.expr()}`,
  (c, r) => {
    const temp = pick(r, ['temp', 'temporary', 'local temp', 'global temporary', 'unlogged', ''])
    const body = r() < 0.7 ? `(${c.name()} int${maybe(r, ` default ${c.lit()}`)})` : ''
    const commit =
      temp && !temp.includes('unlogged') ? pick(r, ['', 'on commit drop', 'on commit delete rows']) : ''
    const target = `${c.k(`create ${temp} table`)} ${maybe(r, c.k('if not exists '), 0.2)}${c.name()}`
    return body
      ? `${target} ${body} ${c.k(commit)}`
      : `${target} ${c.k(commit)} ${c.k('as select')} ${c.lit()} ${c.k('as')} a`
  },
  (c, r) =>
    `${c.k(pick(r, ['create temp view', 'create or replace temporary view', 'create view']))} ${c.name()} ${c.k('as select')} ${c.expr()}`,
  (c, r) =>
    pick(r, [
      () =>
        `${c.k(pick(r, ['create temp sequence', 'create temporary sequence', 'create sequence']))} ${c.name()}`,
      () => `${c.k('create table')} pg_temp.${c.name()} (a int)`,
    ])(),
  (c, r) =>
    `${c.k('select')} ${c.expr()} ${c.k('as')} a ${c.k(pick(r, ['into temp', 'into temporary table', 'into', 'into local temp']))} ${c.name()} ${c.k('from')} ${c.name()}`,
  (c, r) =>
    `${c.k('with')} x ${c.k('as')} (${c.k('select')} ${c.lit()} ${c.k('as')} a) ${pick(r, [c.k('select * into temp t from x'), c.k('insert into temp select * from x'), c.k('select * from x')])}`,
  (c, r) => `${c.k('load')} '${pick(r, ['auto_explain', '$libdir/plugins/x;y'])}'`,
  (c, r) =>
    pick(r, [
      () =>
        `${c.k('update')} ${c.name()} ${c.k('set')} ${c.name()} = ${c.expr()} ${c.k('where')} ${c.name()} = ${c.expr()}`,
      () =>
        `${c.k('insert into')} t (id) ${c.k('values')} (${c.expr()}) ${c.k('on conflict (id) do update set')} id = ${c.expr()}`,
      () => `${c.k('alter role')} ${c.name()} ${c.k('set search_path =')} ${c.lit()}`,
      () => `${c.k('alter table')} ${c.name()} ${c.k('reset (fillfactor)')}`,
      () => `${c.k('comment on table')} ${c.name()} ${c.k('is')} ${c.str()}`,
    ])(),
  (c, r) =>
    pick(r, [
      () => `${c.k('do')} $$ ${c.k('begin set search_path = a; perform pg_advisory_lock(1); end')} $$`,
      () =>
        `${c.k('create function')} f() ${c.k('returns int language sql as')} $fn$ ${c.k('select pg_advisory_lock(1)')} $fn$`,
      () =>
        `${c.k('create or replace function')} f() ${c.k('returns int language sql begin atomic select 1;')} ${c.k('select pg_advisory_lock(2); select case when true then 1 end; end')}`,
      () =>
        `${c.k('create function')} f() ${c.k('returns void language sql set search_path = app as')} 'select 1'`,
    ])(),
]

/**
 * `count` random multi-statement SQL strings, deterministic for a given seed.
 *
 * @example
 * generateSql(7, 3).length // 3
 */
export function generateSql(seed: number, count: number): string[] {
  const r = prng(seed)
  const c = context(r)
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * 4)
    const parts = Array.from({ length: n }, () => pick(r, TEMPLATES)(c, r))
    const sep = (): string => `${c.ws()};${maybe(r, `${c.ws()};`, 0.15)}${c.ws()}`
    out.push(`${maybe(r, c.ws(), 0.3)}${parts.join(sep())}${maybe(r, ';', 0.3)}${maybe(r, c.ws(), 0.3)}`)
  }
  return out
}
