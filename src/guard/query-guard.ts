/**
 * The guard as applied to queries: text of a postgres.js query (fragments inlined, values as `$n`),
 * cached checks, and the error or warning. Never shows parameter values (a bound value only decides
 * whether a `$n` given as set_config's is_local is session-level).
 */
import { PoolerError } from '../errors'
import type { GuardLevel } from '../options'
import { isTextArg, type QueryParts, queryText } from '../sql/query-text'
import type { Found } from './calls'
import { analyzeSql, resolveParams } from './rules'

const byTemplate = new WeakMap<TemplateStringsArray, Found[]>()
const byText = new Map<string, Found[]>()
const warned = new Set<string>()

function toError(found: Found[], values: () => unknown[]): PoolerError | null {
  if (!found.length) return null
  const f = (found.some((x) => x.param !== undefined) ? resolveParams(found, values()) : found)[0]
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
  let found: Found[] | undefined
  if (q.tagged && !q.args.some(isTextArg)) {
    const key = q.strings as TemplateStringsArray
    found = byTemplate.get(key)
    if (found === undefined) {
      found = analyzeSql(queryText(q).text)
      byTemplate.set(key, found)
    }
  } else {
    const text = queryText(q).text
    found = byText.get(text)
    if (found === undefined) {
      found = analyzeSql(text)
      if (byText.size > 1000) byText.clear()
      byText.set(text, found)
    }
  }
  if (!found.length) return undefined // most statements: nothing found, no closure built
  const err = toError(found, () => queryText(q).values)
  if (!err) return undefined
  if (level === 'warn') {
    const key = err.statement ?? err.message
    if (!warned.has(key)) {
      warned.add(key)
      console.warn(`[hono-pooler] ${err.message}`)
    }
    return undefined
  }
  return err
}
