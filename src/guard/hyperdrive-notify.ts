/**
 * What the guard adds under the Hyperdrive preset: Cloudflare Hyperdrive lists NOTIFY among the features
 * it does not support (behind PgBouncer/Supavisor NOTIFY works, so the guard's own rules let it through).
 */
import { PoolerError } from '../errors'
import type { GuardLevel } from '../options'
import { splitStatements } from '../sql/lexer'
import { type QueryParts, queryText } from '../sql/query-text'

const FIX = 'send notifications over a direct connection, or use a queue'

/** The refusal, like the guard's own (`UNSAFE_IN_TRANSACTION_MODE`, with the rule, the fix and the statement). */
const hyperdriveNotify = (statement: string): PoolerError =>
  new PoolerError(
    'UNSAFE_IN_TRANSACTION_MODE',
    `NOTIFY is not supported by Cloudflare Hyperdrive — ${FIX} (rule hyperdrive-notify: ${statement})`,
    { rule: 'hyperdrive-notify', fix: FIX, statement },
  )

const checked = new Map<string, string | null>()
const warned = new Set<string>()

/** The first statement of `text` that sends a notification (`NOTIFY …`, `pg_notify(…)`), else null. */
function notifying(text: string): string | null {
  for (const st of splitStatements(text)) {
    const t = st.tokens
    const notify = t[0]?.kind === 'word' && t[0].value === 'notify'
    const call = t.some(
      (tok, i) =>
        (tok.kind === 'word' || tok.kind === 'ident') && tok.value === 'pg_notify' && t[i + 1]?.value === '(',
    )
    if (notify || call) return st.text.length > 80 ? `${st.text.slice(0, 77)}...` : st.text
  }
  return null
}

/**
 * What the guard adds under the Hyperdrive preset: `NOTIFY` / `pg_notify` (refused at level `error`,
 * logged once at `warn`). Values never reach the message (the text has `$n`).
 *
 * @example
 * ```ts
 * const err = hyperdriveGuard(sql`notify jobs` as any, 'error') // UNSAFE_IN_TRANSACTION_MODE
 * ```
 */
export function hyperdriveGuard(q: QueryParts, level: GuardLevel): PoolerError | undefined {
  if (level === 'off') return undefined
  const text = queryText(q).text
  let statement = checked.get(text)
  if (statement === undefined) {
    statement = notifying(text)
    if (checked.size > 1000) checked.clear()
    checked.set(text, statement)
  }
  if (statement === null) return undefined
  const err = hyperdriveNotify(statement)
  if (level === 'error') return err
  if (!warned.has(statement)) {
    warned.add(statement)
    console.warn(`[hono-pooler] ${err.message}`)
  }
  return undefined
}
