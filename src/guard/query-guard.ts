/**
 * The guard as applied to queries: text of a postgres.js query (fragments inlined, values as `$n`),
 * cached checks, and the error or warning. Never shows parameter values.
 */
import { PoolerError } from '../errors'
import type { GuardLevel } from '../options'
import { isTextArg, type QueryParts, queryText } from '../sql/query-text'
import { checkSql } from './rules'

const byTemplate = new WeakMap<TemplateStringsArray, PoolerError | null>()
const byText = new Map<string, PoolerError | null>()
const warned = new Set<string>()

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
 * ```ts
 * const err = guardQuery(sql`set search_path to app` as any, 'error') // PoolerError UNSAFE_IN_TRANSACTION_MODE
 * ```
 */
export function guardQuery(q: QueryParts, level: GuardLevel): PoolerError | undefined {
  if (level === 'off') return undefined
  let err: PoolerError | null | undefined
  if (q.tagged && !q.args.some(isTextArg)) {
    const key = q.strings as TemplateStringsArray
    err = byTemplate.get(key)
    if (err === undefined) {
      err = toError(queryText(q).text)
      byTemplate.set(key, err)
    }
  } else {
    const text = queryText(q).text
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
