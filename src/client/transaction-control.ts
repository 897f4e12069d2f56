/**
 * Transaction control outside `sql.begin` on a shared pool. Each statement of `c.var.sql` runs on whichever
 * pooled connection is free and the connection goes back when the statement settles: a bare `BEGIN` would
 * leave it inside an open transaction for the next request (postgres.js's own `UNSAFE_TRANSACTION` check is
 * off on a `max: 1` connection). `sql.begin` and `sql.reserve()` hold one connection, so they may.
 */
import { type PoolerError, poolUnsupported } from '../errors'
import { splitStatements } from '../sql/lexer'
import { isTextArg, type QueryParts, queryText } from '../sql/query-text'

/** The first words of statements that open, end or step inside a transaction. */
const CONTROL = new Set(['begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release'])

const byTemplate = new WeakMap<readonly string[], string | null>()

/** The first transaction-control keyword of the text's statements, or null. */
export function transactionKeyword(text: string): string | null {
  for (const s of splitStatements(text)) {
    const first = s.tokens[0]
    if (first?.kind === 'word' && CONTROL.has(first.value)) {
      // `start transaction`, never a column or function named start
      if (first.value === 'start' && s.tokens[1]?.value !== 'transaction') continue
      return first.value
    }
  }
  return null
}

/**
 * The error for a query of `c.var.sql` (outside `sql.begin` and `reserve()`) that controls a transaction.
 *
 * @example
 * ```ts
 * import type { QueryParts } from '../sql/query-text'
 *
 * declare const q: QueryParts
 * const refused = refuseTransactionControl(q) // PoolerError POOL_UNSUPPORTED for `begin`
 * ```
 */
export function refuseTransactionControl(q: QueryParts): PoolerError | undefined {
  let word: string | null | undefined
  const cacheable = q.tagged && !q.args.some(isTextArg)
  if (cacheable) word = byTemplate.get(q.strings)
  if (word === undefined) {
    word = transactionKeyword(queryText(q).text)
    if (cacheable) byTemplate.set(q.strings, word)
  }
  if (!word) return undefined
  return poolUnsupported(
    `${word.toUpperCase()} outside sql.begin would leave a pooled connection inside a transaction`,
    'use sql.begin(async (tx) => …) (or sql.reserve() for a connection of your own)',
  )
}
