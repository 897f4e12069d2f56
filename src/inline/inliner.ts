/**
 * Parameter inlining: turns a postgres.js query with plain values into one parameterless statement, so it
 * goes out in one round trip (one simple-protocol Query when it is a single statement, else one
 * Parse/Describe/Bind/Execute/Sync flight) instead of Parse+Describe, wait, Bind+Execute (two). Only where provably
 * safe; anything else is left to postgres.js unchanged.
 *
 * Safety: every placeholder must be a `param` token of the guard's lexer (plain SQL context, never inside
 * a literal, quoted identifier, comment or dollar quote); values become `E'…'` literals (`\` and `'`
 * doubled: reads the same whatever `standard_conforming_strings` is); plain `'…'` literals of the template
 * may not contain a backslash (so the template lexes the same whatever `standard_conforming_strings` is);
 * the connection must speak UTF8; a NUL character falls back (postgres.js gets the server's error).
 */
import { type Token, tokenize } from '../sql/lexer'
import { isTextArg, queryText } from '../sql/query-text'
import { isIdCont } from '../sql/scan'
import { JSON_SENSITIVE, literal, TYPE_SENSITIVE } from './literals'

/** What the inliner reads from `sql.options` (postgres.js). */
export interface InlineDriverOptions {
  connection?: Record<string, unknown>
  parameters?: Record<string, string>
  debug?: unknown
}

/**
 * Where an inlined query keeps what its errors need (`InlinedText`), when its class reads it: postgres.js's
 * `string` and `origin` from its prototype (pool/query-class.ts), the error position from the query hook.
 * Any other query gets them as accessors of its own (slower: V8 turns the query into a dictionary object).
 */
export const INLINED = Symbol('hono-pooler.inlined')

/**
 * In the options of a query the inliner sends as a simple-protocol Query. The server then sends no NoData
 * for a statement without rows, so postgres.js leaves its result's `columns` unset: `sentSimply` sets
 * them as the extended protocol would have (`[]`).
 */
export const SENT_SIMPLY = Symbol('hono-pooler.sentSimply')

/**
 * A result of a query the inliner sent as a simple Query, made what the extended protocol gives: a
 * statement without rows has `columns` `[]` (postgres.js's NoData), not undefined.
 *
 * @example
 * ```ts
 * declare const result: { columns?: unknown[] | null; statement?: { columns?: unknown[] } }
 * sentSimply(result) // result.columns: [] for an UPDATE without RETURNING
 * ```
 */
export function sentSimply(result: unknown): void {
  const r = result as { columns?: unknown[] | null; statement?: { columns?: unknown[] } } | null
  if (!r || typeof r !== 'object' || r.columns != null) return
  if (r.statement && r.statement.columns == null) r.statement.columns = []
  r.columns = r.statement?.columns ?? []
}

/** An inlined query's template text (with `$n`), its template, and where its values went. */
export class InlinedText {
  constructor(
    /** The template's text with `$n`: what errors show (`err.query`), never the values. */
    readonly text: string,
    /** The query's strings before inlining: a tagged query's template (postgres.js caches call sites by it). */
    readonly original: readonly string[],
    private readonly spans: readonly [number, number, number][],
    private readonly lits: string[],
  ) {}
  /** A server error's `position`, mapped back onto the template (see `fixPosition`). */
  position(e: unknown): unknown {
    return fixPosition(e, this.text, this.spans, this.lits)
  }
}

/** Words after which a select item is a sort/group key: a bare constant there means something else. */
const BY_END = new Set([
  'limit',
  'offset',
  'having',
  'window',
  'fetch',
  'for',
  'union',
  'intersect',
  'except',
  'returning',
  'select',
  'from',
  'where',
  'values',
])
const isUtf8 = (v: unknown) => v === undefined || v === 'UTF8' || /^'?utf-?8'?$/i.test(String(v))

/** A placeholder cast to nothing (most of them: one shared empty list). */
const NO_CASTS: readonly string[] = Object.freeze([])

/** One `$n` of a text: where it is, and what makes some values unsafe to inline there. */
interface Placeholder {
  k: number
  start: number
  end: number
  /** A sort/group key (ORDER BY, GROUP BY, DISTINCT ON): a bare constant there means something else. */
  byKey: boolean
  /** The type names it is cast to (`$1::json`, `cast($1 as json)`). */
  casts: readonly string[]
}

/**
 * A text's placeholders in the order they appear, or undefined when the text is not safe to inline into
 * (whatever the values). Depends on the text alone: computed once per template (or `unsafe` text).
 */
function analyze(text: string, tokens: Token[]): Placeholder[] | undefined {
  const out: Placeholder[] = []
  const byDepth: boolean[] = []
  let depth = 0
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.kind === 'string' && t.value.includes('\\') && !/^e'/i.test(t.value)) return undefined
    if (t.kind === 'punct' && t.value === '(') {
      depth++
      const a = tokens[i - 1]
      byDepth[depth] = a?.value === 'on' && tokens[i - 2]?.value === 'distinct'
    } else if (t.kind === 'punct' && t.value === ')') byDepth[depth--] = false
    else if (t.kind === 'semicolon') byDepth.fill(false)
    else if (t.kind === 'word') {
      if (t.value === 'by' && /^(order|group)$/.test(tokens[i - 1]?.value ?? '')) byDepth[depth] = true
      else if (BY_END.has(t.value)) byDepth[depth] = false
    }
    if (t.kind !== 'param') continue
    if (!/^[1-9][0-9]*$/.test(t.value)) return undefined
    const k = Number(t.value)
    const after = text.charCodeAt(t.end)
    if (t.end < text.length && (isIdCont(after) || after === 39 || after === 34)) return undefined
    const casts: string[] = []
    const n1 = tokens[i + 1]
    if (n1?.value === '::') castName(tokens, i + 2, casts)
    if (tokens[i - 1]?.value === '(' && tokens[i - 2]?.value === 'cast' && n1?.value === 'as')
      castName(tokens, i + 2, casts)
    out.push({
      k,
      start: t.start,
      end: t.end,
      byKey: !!byDepth[depth],
      casts: casts.length ? casts : NO_CASTS,
    })
  }
  return out
}

/**
 * The placeholders where each value may be inlined, or undefined when one may not: untyped literals
 * (`untyped(k)`, the casts that would make postgres.js serialize it differently) as a sort/group key or cast
 * to one of those types.
 */
function placeholders(
  found: Placeholder[] | undefined,
  untyped: (k: number) => Set<string> | undefined,
): Placeholder[] | undefined {
  if (!found) return undefined
  for (const p of found) {
    const sensitive = untyped(p.k)
    if (!sensitive) continue
    // A bare constant as an ORDER BY / GROUP BY / DISTINCT ON key is positional or an error; a parameter is not.
    if (p.byKey) return undefined
    // postgres.js serializes by the type the server infers: json, bool, dates and bytea differ from text.
    for (const c of p.casts) if (sensitive.has(c)) return undefined
  }
  return found
}

/** The type name at `tokens[i]` (after an optional `pg_catalog.`), when it is a word or an identifier. */
function castName(tokens: { kind: string; value: string }[], i: number, into: string[]): void {
  let t = tokens[i]
  if (t?.value === 'pg_catalog' && tokens[i + 1]?.value === '.') t = tokens[i + 2]
  if (t && (t.kind === 'word' || t.kind === 'ident')) into.push(t.value)
}

/**
 * A text with `$n`, analysed once (per tagged template, or per `unsafe` text): its placeholders, and, when
 * values may be inlined at all, the text around them (`pieces`, one more than placeholders) and where each
 * value goes (`spans`: [start, end, value index]).
 */
interface Layout {
  text: string
  /** Its placeholders in the order they appear (undefined: never inlined). */
  found: Placeholder[] | undefined
  /** n when the placeholders are exactly `$1…$n` (each at least once): it takes n values. */
  values: number | undefined
  /** Some placeholder is a sort/group key or cast: which values may go there depends on the values. */
  risky: boolean
  /** One statement (no `;` outside literals and comments): it may go as a simple-protocol Query. */
  single: boolean
  pieces: string[]
  spans: readonly [number, number, number][]
}

function layoutOf(text: string, tokens: Token[], found: Placeholder[] | undefined): Layout {
  const pieces: string[] = []
  const spans: [number, number, number][] = []
  let from = 0
  for (const f of found ?? []) {
    pieces.push(text.slice(from, f.start))
    spans.push([f.start, f.end, f.k - 1])
    from = f.end
  }
  pieces.push(text.slice(from))
  const ks = new Set(found?.map((f) => f.k))
  const values = found && [...ks].every((k) => k <= ks.size) ? ks.size : undefined
  const risky = !!found?.some((f) => f.byKey || f.casts.length > 0)
  return { text, found, values, risky, single: isSingle(tokens), pieces, spans }
}

const byTemplate = new WeakMap<readonly string[], Layout>()
function templateOf(q: any): Layout {
  let t = byTemplate.get(q.strings)
  if (!t) {
    const { text, at } = queryText(q)
    const tokens = tokenize(text)
    let found = analyze(text, tokens)
    // Inlinable only when the lexer sees each value's `$n`, in order, where queryText put it.
    if (found && (found.length !== at.length || found.some((f, i) => f.k !== i + 1 || f.start !== at[i])))
      found = undefined
    t = layoutOf(text, tokens, found)
    byTemplate.set(q.strings, t)
  }
  return t
}

// `sql.unsafe` texts (Drizzle sends every statement that way), bounded: emptied once it holds UNSAFE_TEXTS;
// a text longer than UNSAFE_TEXT_MAX (a bulk insert's) is analysed each time, never kept.
const UNSAFE_TEXTS = 500
const UNSAFE_TEXT_MAX = 4096
const byText = new Map<string, Layout>()
function analyzed(text: string): Layout {
  const kept = byText.get(text)
  if (kept) return kept
  const tokens = tokenize(text)
  const a = layoutOf(text, tokens, analyze(text, tokens))
  if (text.length > UNSAFE_TEXT_MAX) return a
  if (byText.size >= UNSAFE_TEXTS) byText.clear()
  byText.set(text, a)
  return a
}

/** No `;` token: one statement. A trailing `;` counts as several too (on the safe side: it stays extended). */
const isSingle = (tokens: Token[]): boolean => !tokens.some((t) => t.kind === 'semicolon')

/**
 * Inlines the values of one postgres.js query in place, when safe. Returns true when it did.
 * Call it right before the query is handed to the connection (after the guard has seen `$n`).
 *
 * @example
 * ```ts
 * const query = sql`select ${1}::int as n`
 * inlineQuery(query, sql.options) // true: sent as `select (E'1')::int as n`
 * ```
 */
export function inlineQuery(q: any, opts: InlineDriverOptions): boolean {
  try {
    const args: unknown[] = q.args
    if (!args.length || q.options?.simple || q.onlyDescribe || q.streaming || opts.debug) return false
    if (!isUtf8(opts.connection?.client_encoding) || !isUtf8(opts.parameters?.client_encoding)) return false
    const lits: string[] = []
    for (const a of args) {
      if (isTextArg(a)) return false // fragments and identifiers: postgres.js builds those
      const lit = literal(a)
      if (lit === undefined) return false
      lits.push(lit)
    }
    // Fragments were refused above: a tagged query's values are its template's placeholders.
    const l = q.tagged ? templateOf(q) : analyzed(q.strings[0] ?? '')
    if (!l.found || l.values !== args.length) return false
    if (l.risky && !placeholders(l.found, (k) => sensitiveTo(args[k - 1], lits[k - 1]!))) return false
    const { text, pieces, spans } = l
    let sent = pieces[0]!
    for (let i = 0; i < spans.length; i++) sent += lits[spans[i]![2]]! + pieces[i + 1]!
    const { strings: original } = q
    q.strings = [sent]
    q.args = []
    // Every distinct value makes a distinct text: preparing it by name (direct/session mode) would leave
    // one server-side statement per value on a long-lived connection. Without parameters, one statement
    // goes as a simple-protocol Query (what postgres.js sends for a parameterless `sql.unsafe`): one message
    // instead of Parse/Describe/Bind/Execute/Sync, and no ParseComplete/BindComplete back. Not a cursor (its
    // rows come in batches through Execute), not forEach (the extended protocol tells a row's callback the
    // columns first), not several statements (the simple protocol would run them all).
    q.options =
      l.single && !q.cursorFn && !q.forEachFn
        ? { ...q.options, prepare: false, simple: true, [SENT_SIMPLY]: true }
        : { ...q.options, prepare: false }
    const inlined = new InlinedText(text, original, spans, lits)
    // Its class reads INLINED (pool/query-class.ts): one field, and the query hook maps the position.
    if (INLINED in q) {
      q[INLINED] = inlined
      return true
    }
    const origin = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(q), 'origin')?.get
    // What errors show (`err.query`): the template with `$n`, never the values.
    Object.defineProperty(q, 'string', { configurable: true, get: () => text, set: () => {} })
    if (origin)
      Object.defineProperty(q, 'origin', {
        configurable: true,
        get() {
          const s = q.strings
          q.strings = original
          try {
            return origin.call(q)
          } finally {
            q.strings = s
          }
        },
      })
    const reject = q.reject
    q.reject = (e: any) => reject.call(q, inlined.position(e))
    return true
  } catch {
    return false
  }
}

/**
 * Untyped literals (strings, numbers, JSON, arrays, NULL) take the type the server infers, like OID 0; the
 * casts that would make postgres.js serialize the value differently. Typed literals: undefined.
 */
function sensitiveTo(value: unknown, lit: string): Set<string> | undefined {
  if (/::[a-z0-9]+\)$/.test(lit)) return undefined
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? JSON_SENSITIVE
    : TYPE_SENSITIVE
}

const cpLen = (s: string): number => {
  let n = 0
  for (const _ of s) n++
  return n
}

/** Maps a server error's `position` (1-based, in characters of the sent text) back onto the template. */
function fixPosition(
  e: any,
  text: string,
  spans: readonly [number, number, number][],
  lits: string[],
): unknown {
  const p = e && typeof e === 'object' && e.name === 'PostgresError' ? Number(e.position) : Number.NaN
  if (!(p > 0)) return e
  let sentCp = 0
  let from = 0
  for (const [start, end, li] of spans) {
    const plain = cpLen(text.slice(from, start))
    if (p <= sentCp + plain) break
    sentCp += plain
    const litLen = cpLen(lits[li]!)
    if (p <= sentCp + litLen) {
      delete e.position // a value's input error: a bound parameter's has no position either
      return e
    }
    sentCp += litLen
    from = end
  }
  e.position = String(p - sentCp + cpLen(text.slice(0, from)))
  return e
}
