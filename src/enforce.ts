/**
 * The guard as applied to queries: text of a postgres.js query (fragments inlined, values as `$n`),
 * cached checks, and the error or warning. Never shows parameter values.
 */
import { PoolerError } from './errors'
import { checkSql } from './guard/rules'

export type GuardLevel = 'error' | 'warn' | 'off'

const byTemplate = new WeakMap<TemplateStringsArray, PoolerError | null>()
const byText = new Map<string, PoolerError | null>()
const warned = new Set<string>()

/** Arguments that add SQL text (fragments, identifiers) rather than a value. */
function isTextArg(a: any): boolean {
  return (
    !!a &&
    typeof a === 'object' &&
    (Array.isArray(a.strings) ||
      a.constructor?.name === 'Identifier' ||
      (Array.isArray(a) && Array.isArray(a[0]?.strings)))
  )
}

/**
 * The SQL text of a (possibly nested) postgres.js query with `$n` in place of values.
 *
 * @example
 * queryText(sql`select ${1} where ${sql`a = ${2}`}`) // 'select $1 where a = $2'
 */
export function queryText(q: { tagged: boolean; strings: readonly string[]; args: unknown[] }): string {
  if (!q.tagged) return q.strings[0] ?? ''
  let n = 0
  const walk = (strings: readonly string[], args: unknown[]): string => {
    let out = strings[0] ?? ''
    for (let i = 1; i < strings.length; i++) {
      const a = args[i - 1] as any
      if (a && typeof a === 'object' && Array.isArray(a.strings) && a.tagged !== undefined) {
        out += walk(a.strings, a.args)
      } else if (Array.isArray(a) && a.length && a[0] && Array.isArray(a[0].strings)) {
        out += a.map((f: any) => walk(f.strings, f.args)).join(' ')
      } else if (a && a.constructor?.name === 'Identifier') {
        out += a.value
      } else {
        out += `$${++n}`
      }
      out += strings[i]
    }
    return out
  }
  return walk(q.strings, q.args)
}

function toError(text: string): PoolerError | null {
  const f = checkSql(text)[0]
  if (!f) return null
  return new PoolerError(
    'UNSAFE_IN_TRANSACTION_MODE',
    `${f.message} — ${f.fix} (rule ${f.rule}: ${f.statement})`,
    { rule: f.rule, fix: f.fix, statement: f.statement },
  )
}

/**
 * Checks one query against the guard. Returns the error to reject it with (level `error`), or undefined.
 * Level `warn` logs once per statement text and lets it through.
 *
 * @example
 * const err = guardQuery(sql`set search_path to app`, 'error') // PoolerError UNSAFE_IN_TRANSACTION_MODE
 */
export function guardQuery(
  q: { tagged: boolean; strings: readonly string[]; args: unknown[] },
  level: GuardLevel,
): PoolerError | undefined {
  if (level === 'off') return undefined
  let err: PoolerError | null | undefined
  if (q.tagged && !q.args.some(isTextArg)) {
    const key = q.strings as TemplateStringsArray
    err = byTemplate.get(key)
    if (err === undefined) {
      err = toError(queryText(q))
      byTemplate.set(key, err)
    }
  } else {
    const text = queryText(q)
    err = byText.get(text)
    if (err === undefined) {
      err = toError(text)
      if (byText.size > 1000) byText.clear()
      byText.set(text, err)
    }
  }
  if (!err) return undefined
  if (level === 'warn') {
    const key = err.statement ?? err.message
    if (!warned.has(key)) {
      warned.add(key)
      console.warn(`[hono-pooler] ${err.message}`)
    }
    return undefined
  }
  // A fresh error per query, so each stack points at its own caller.
  return new PoolerError(err.code, err.message, { rule: err.rule, fix: err.fix, statement: err.statement })
}
