/**
 * The shared pools alive in this process (a leaf module: the guide reads it without importing the pool).
 */
import type { PoolStats } from './pool'

/** Every pool `sharedPool` created and `closePools` has not closed yet. */
export const livePools = new Set<{ stats(): PoolStats }>()

/**
 * What every shared pool of this process holds right now.
 *
 * @example
 * ```ts
 * app.get('/admin/pools', (c) => c.json(poolStats()))
 * // [{ host: 'db.abc.supabase.co', mode: 'direct', size: 10, overflow: 5, open: 3, idle: 2, inUse: 1, waiting: 0 }]
 * ```
 */
export function poolStats(): PoolStats[] {
  return [...livePools].map((p) => p.stats())
}
