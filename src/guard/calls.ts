/**
 * Session-level function calls anywhere in the tokens of a statement: session advisory locks, and
 * `set_config` whose `is_local` argument is false or NULL (read in every spelling: a boolean, a string the
 * server casts, a cast, `bool 'f'`, `NOT`, a named argument; a `$n` is decided from its value).
 */
import type { Token } from '../sql/lexer'
import { stringValue } from '../sql/strings'
import { GUARD_RULES, type GuardFinding, type GuardRule } from './catalog'

/** A finding, possibly waiting for the value of placeholder `$param` to be decided. */
export interface Found extends GuardFinding {
  param?: number
}

const ADVISORY = new Set([
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all',
])
const SETSEED_FIX =
  'seed a generator in your application instead (the seed would carry over to the next client of that server connection)'
export const LEAK = 'behind a transaction-mode pooler it leaks to other clients or is lost'

export const isWord = (t: Token | undefined, ...values: string[]): boolean =>
  t?.kind === 'word' && values.includes(t.value)
export const isPunct = (t: Token | undefined, value: string): boolean =>
  t?.kind === 'punct' && t.value === value

/** A finding of `rule` with the catalogue's fix. */
export const finding = (rule: GuardRule, statement: string, offset: number, message: string): Found => ({
  rule,
  statement,
  offset,
  message,
  fix: GUARD_RULES[rule].fix,
})

/**
 * PostgreSQL's `boolin`: surrounding whitespace, any case, unique prefixes of true/false/yes/no, `on`, `of[f]`,
 * `1`, `0`. Undefined when the server would reject the text.
 *
 * @example
 * ```ts
 * parseBool(' Of ') // false
 * ```
 */
export function parseBool(text: string): boolean | undefined {
  const v = text.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '').toLowerCase()
  if (!v) return undefined
  const prefix = (word: string, min = 1) => v.length >= min && word.startsWith(v)
  if (prefix('true') || prefix('yes') || prefix('on', 2) || v === '1') return true
  if (prefix('false') || prefix('no') || prefix('off', 2) || v === '0') return false
  return undefined
}

/** A constant as the guard evaluates it: a boolean, SQL NULL (null), text, an integer, or a placeholder. */
type Value = boolean | null | { text: string } | { int: number } | { param: number } | undefined

const BOOL_TYPES = new Set(['bool', 'boolean'])
const TEXT_TYPES = new Set(['text', 'varchar'])

/** Length of a type name at `k` (`bool`, `pg_catalog.bool`, `"bool"`), 0 when it is not one. */
function typeAt(t: Token[], k: number): [kind: 'bool' | 'text' | 'other', length: number] {
  let n = 0
  if (t[k]?.value === 'pg_catalog' && isPunct(t[k + 1], '.')) n = 2
  const name = t[k + n]
  if (!name || (name.kind !== 'word' && name.kind !== 'ident')) return ['other', 0]
  const kind = BOOL_TYPES.has(name.value) ? 'bool' : TEXT_TYPES.has(name.value) ? 'text' : 'other'
  return [kind, n + 1]
}

function cast(v: Value, kind: 'bool' | 'text' | 'other'): Value {
  if (v === undefined || v === null || kind === 'other') return kind === 'other' ? undefined : v
  if (typeof v === 'object' && 'param' in v) return kind === 'bool' ? v : undefined
  if (kind === 'text') return typeof v === 'boolean' ? { text: String(v) } : 'text' in v ? v : undefined
  if (typeof v === 'boolean') return v
  return 'text' in v ? parseBool(v.text) : v.int !== 0
}

/** Evaluates a constant boolean expression from tokens (whole slice); undefined when it cannot. */
function evaluate(t: Token[]): Value {
  while (t.length > 2 && isPunct(t[0], '(') && isPunct(t[t.length - 1], ')')) t = t.slice(1, -1)
  if (isWord(t[0], 'not')) {
    const v = asBool(evaluate(t.slice(1)))
    return typeof v === 'boolean' ? !v : v === null ? null : undefined
  }
  if (isWord(t[0], 'cast') && isPunct(t[1], '(') && isPunct(t[t.length - 1], ')')) {
    const as = t.findLastIndex((x) => isWord(x, 'as'))
    const [kind, len] = typeAt(t, as + 1)
    if (as < 0 || as + 1 + len !== t.length - 1) return undefined
    return cast(evaluate(t.slice(2, as)), kind)
  }
  const last = t.findLastIndex((x) => x.kind === 'op' && x.value === '::')
  if (last > 0) {
    const [kind, len] = typeAt(t, last + 1)
    if (last + 1 + len !== t.length) return undefined
    return cast(evaluate(t.slice(0, last)), kind)
  }
  if (t.length === 2 && isWord(t[0], 'bool', 'boolean')) {
    const s = stringValue(t, 1)
    return s === undefined ? undefined : parseBool(s)
  }
  if (t.length !== 1) return undefined
  const x = t[0]!
  if (isWord(x, 'true', 'false')) return x.value === 'true'
  if (isWord(x, 'null')) return null
  if (x.kind === 'param') return { param: Number(x.value) }
  if (x.kind === 'number') return /^\d+$/.test(x.value) ? { int: Number(x.value) } : undefined
  const s = stringValue(t, 0)
  return s === undefined ? undefined : { text: s }
}

/** As the boolean argument of a function: text is cast by the server, an integer is a type error. */
function asBool(v: Value): Value {
  if (v === undefined || v === null || typeof v === 'boolean') return v
  if ('text' in v) return parseBool(v.text)
  return 'param' in v ? v : undefined
}

/** The arguments of the call whose `(` is at `open`: positional slices, and named ones by name. */
function callArgs(t: Token[], open: number): { positional: Token[][]; named: Map<string, Token[]> } {
  const args: Token[][] = [[]]
  let depth = 0
  for (let k = open + 1; k < t.length; k++) {
    const tok = t[k]!
    if (isPunct(tok, ')') && depth === 0) break
    if (isPunct(tok, '(') || isPunct(tok, '[')) depth++
    if (isPunct(tok, ')') || isPunct(tok, ']')) depth--
    if (isPunct(tok, ',') && depth === 0) args.push([])
    else args[args.length - 1]!.push(tok)
  }
  const positional: Token[][] = []
  const named = new Map<string, Token[]>()
  for (const a of args) {
    const arrow = a[1]?.kind === 'op' && (a[1].value === '=>' || a[1].value === ':=')
    if (arrow && (a[0]?.kind === 'word' || a[0]?.kind === 'ident')) named.set(a[0].value, a.slice(2))
    else positional.push(a)
  }
  return { positional, named }
}

/**
 * Words after which a name followed by `(` is NOT a function call but a table, type, routine signature,
 * alias or column list (`INSERT INTO t (…)`, `AS x (…)`, `DROP FUNCTION IF EXISTS f(…)`, `REFERENCES t (…)`).
 * Everywhere else a `name(` is read as a call: an expression can start after almost any keyword
 * (`SIMILAR TO`, `AT TIME ZONE`, `FETCH FIRST`, …), so a list of where calls may appear would miss some.
 */
const NOT_BEFORE_CALL = new Set(
  'as with into table references type domain function procedure routine prepare execute deallocate aggregate index view sequence trigger exists update only operator statistics collation conversion recursive copy analyze analyse vacuum cluster'.split(
    ' ',
  ),
)

/** Can a function call follow token `t[at]` (at < 0: statement start)? Not after `::` (a type). */
function callPosition(t: Token[], at: number): boolean {
  const prev = t[at]
  if (!prev) return true
  if (prev.kind === 'op') return prev.value !== '::' && prev.value !== '.'
  if (isPunct(prev, ')')) return afterDistinctOn(t, at)
  if (prev.kind === 'punct') return prev.value !== '.'
  if (prev.kind === 'word' && NOT_BEFORE_CALL.has(prev.value)) return false
  return !aliasAt(t, at)
}

/**
 * Is the `(` at `open` a CTE's column list (`WITH name (a, b) AS [[NOT] MATERIALIZED] (…)`, also after a
 * comma)? None of the guarded functions returns a record, so `name(…) AS (` is never their call.
 */
function cteName(t: Token[], open: number): boolean {
  let depth = 0
  let k = open
  for (; k < t.length; k++) {
    if (isPunct(t[k], '(')) depth++
    else if (isPunct(t[k], ')') && --depth === 0) break
  }
  if (!isWord(t[k + 1], 'as')) return false
  k += 2
  if (isWord(t[k], 'not')) k++
  if (isWord(t[k], 'materialized')) k++
  return isPunct(t[k], '(')
}

/** Is `t[at]` a table name (`FROM [ONLY] [s.]t`), so that a `name(` after it is an alias with columns? */
function aliasAt(t: Token[], at: number): boolean {
  if (t[at]?.kind !== 'word' && t[at]?.kind !== 'ident') return false
  if (isWord(t[at], 'lateral', 'not')) return false
  let k = at - 1
  while (isPunct(t[k], '.') && (t[k - 1]?.kind === 'word' || t[k - 1]?.kind === 'ident')) k -= 2
  return isWord(t[k], 'from', 'join', 'only')
}

/** Does the `)` at `close` end `DISTINCT ON (…)` (after which a select-list item starts)? */
function afterDistinctOn(t: Token[], close: number): boolean {
  let depth = 0
  for (let i = close; i >= 0; i--) {
    if (isPunct(t[i], ')')) depth++
    else if (isPunct(t[i], '(') && --depth === 0)
      return isWord(t[i - 1], 'on') && isWord(t[i - 2], 'distinct')
  }
  return false
}

/**
 * Pushes findings for session-level function calls in `t` (tokens of one statement). `excerpt` names the
 * statement in findings.
 */
export function callFindings(t: Token[], excerpt: string, out: Found[]): void {
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!
    if ((tok.kind !== 'word' && tok.kind !== 'ident') || !isPunct(t[k + 1], '(')) continue
    const name = tok.value
    if (!ADVISORY.has(name) && name !== 'set_config' && name !== 'setseed') continue
    const qualified = isPunct(t[k - 1], '.')
    if (qualified && (t[k - 2]?.value !== 'pg_catalog' || isPunct(t[k - 3], '.'))) continue
    if (!callPosition(t, qualified ? k - 3 : k - 1) || cteName(t, k + 1)) continue
    const offset = qualified ? t[k - 2]!.start : tok.start
    if (name === 'setseed') {
      const message = `setseed() seeds random() for the whole session; ${LEAK}`
      out.push({ ...finding('session-set', excerpt, offset, message), fix: SETSEED_FIX })
      continue
    }
    if (name !== 'set_config') {
      const message = `${name} takes or releases a session-level lock; ${LEAK}`
      out.push(finding('session-advisory-lock', excerpt, offset, message))
      continue
    }
    const { positional, named } = callArgs(t, k + 1)
    const arg = named.get('is_local') ?? positional[2]
    if (!arg) continue // not a valid call of set_config: the server rejects it
    const v = asBool(evaluate(arg))
    if (v === true) continue
    if (v === false || v === null) {
      const message = `set_config(…, …, ${v}) changes session state; ${LEAK}`
      out.push(finding('session-set', excerpt, offset, message))
    } else {
      const param = v && 'param' in v ? v.param : undefined
      const what = param === undefined ? 'an expression' : `$${param}`
      const message = `set_config's is_local is ${what}: whether it changes session state cannot be read from the SQL`
      out.push({ ...finding('undecidable', excerpt, offset, message), ...(param !== undefined && { param }) })
    }
  }
}
