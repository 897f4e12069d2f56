/** The `Server-Timing` header hono-pooler adds with `pooler({ serverTiming: true })`. */
import type { Context } from 'hono'

/**
 * Appends one `Server-Timing` value to the response (next to `hono/timing`'s, which appends too). A
 * response with immutable headers (a `fetch()` result passed through) is left alone.
 *
 * @example
 * ```ts
 * appendServerTiming(c, 'db;dur=1.2;desc="1 query"')
 * ```
 */
export function appendServerTiming(c: Context, value: string): void {
  try {
    c.res.headers.append('Server-Timing', value)
  } catch {} // immutable headers
}
