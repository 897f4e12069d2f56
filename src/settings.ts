import type { Sql, TransactionSql } from 'postgres'
import { PoolerError } from './errors'

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/
const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/

/**
 * Runs `fn` in a transaction with transaction-local settings: the safe replacement for `SET` behind a
 * transaction-mode pooler. Every setting is applied with ONE statement,
 * `select set_config($1, $2, true), set_config($3, $4, true), …` (values always travel as parameters),
 * except `role`, which becomes `SET LOCAL ROLE "<name>"` after validating the name. All settings end with
 * the transaction, so nothing leaks to the next client of the pooled server connection.
 *
 * Throws `PoolerError('INVALID_SETTING')` for a setting name that is not `[A-Za-z_][A-Za-z0-9_.]*` or a
 * role that is not `[A-Za-z_][A-Za-z0-9_$]*`, before anything is sent.
 *
 * @example
 * ```ts
 * // The PostgREST / Supabase row-level-security pattern:
 * const claims = { sub: 'user-1', role: 'authenticated' }
 * const todos = await withSettings(
 *   sql,
 *   {
 *     search_path: 'app,public',
 *     statement_timeout: '2s',
 *     role: 'authenticated',
 *     'request.jwt.claims': JSON.stringify(claims),
 *   },
 *   (tx) => tx`select * from todos`,
 * )
 * ```
 */
export async function withSettings<T>(
  sql: Sql<any>,
  settings: Record<string, string | number | boolean>,
  fn: (tx: TransactionSql<any>) => T | Promise<T>,
): Promise<T> {
  const { role, params, text } = buildSettings(settings)
  if (role === undefined && params.length === 0) return (await sql.begin(fn)) as T
  return (await sql.begin(async (tx) => {
    if (role !== undefined) await tx.unsafe(`set local role ${role}`)
    if (params.length > 0) await tx.unsafe(text, params)
    return fn(tx)
  })) as T
}

/**
 * Validates settings and builds the `set_config` statement and the quoted role of {@link withSettings}.
 *
 * @example
 * ```ts
 * buildSettings({ statement_timeout: '2s', role: 'app' })
 * // { role: '"app"', text: 'select set_config($1, $2, true)', params: ['statement_timeout', '2s'] }
 * ```
 */
export function buildSettings(settings: Record<string, string | number | boolean>): {
  role: string | undefined
  text: string
  params: string[]
} {
  let role: string | undefined
  const params: string[] = []
  const calls: string[] = []
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(name)) {
      throw new PoolerError('INVALID_SETTING', `withSettings: invalid setting name ${JSON.stringify(name)}`)
    }
    if (name.toLowerCase() === 'role') {
      const r = String(value)
      if (!ROLE_NAME.test(r)) {
        throw new PoolerError('INVALID_SETTING', `withSettings: invalid role name ${JSON.stringify(r)}`)
      }
      role = `"${r}"`
      continue
    }
    params.push(name, String(value))
    calls.push(`set_config($${params.length - 1}, $${params.length}, true)`)
  }
  return { role, text: calls.length > 0 ? `select ${calls.join(', ')}` : '', params }
}
