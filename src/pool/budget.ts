/**
 * The guide's connection budget, checked once per server when a pool is first used: one line warns when
 * `size + overflow` exceeds what one instance may take of the server's `max_connections` (80 % rule).
 */
import { poolBudget } from '../guide'
import type { ConnectionPool } from './pool'

const checked = new Map<string, Promise<number | undefined>>()

/** `max_connections` of the server behind `key` (one query, cached; undefined when it cannot be read). */
function maxConnections(key: string, pool: ConnectionPool): Promise<number | undefined> {
  let hit = checked.get(key)
  if (!hit) {
    hit = (async () => {
      const slot = await pool.acquire()
      try {
        const [row] = await slot.sql`select current_setting('max_connections')::int as max`
        return Number(row?.max) || undefined
      } finally {
        pool.release(slot)
      }
    })().catch(() => undefined)
    checked.set(key, hit)
  }
  return hit
}

/**
 * Warns once (console.warn) when the pool may open more connections than the server's budget allows.
 *
 * @example
 * ```ts
 * import type { ConnectionPool } from './pool'
 *
 * declare const pool: ConnectionPool
 * await checkBudget('db:5432/app', pool) // warns once when size + overflow exceed 80 % of max_connections
 * ```
 */
export async function checkBudget(
  key: string,
  pool: ConnectionPool,
  warn: (line: string) => void = console.warn,
): Promise<void> {
  const max = await maxConnections(key, pool)
  if (!max) return
  const { size, overflow } = pool.options
  const { perInstance } = poolBudget({ maxConnections: max, usesDataApi: false })
  if (size + overflow > perInstance)
    warn(
      `[hono-pooler] pool.size + pool.overflow = ${size + overflow} exceeds the budget of ${perInstance} connections for max_connections = ${max} at ${pool.host} (80 % rule; 40 % with the Data API) — lower them, or pool: { checkBudget: false }`,
    )
}
