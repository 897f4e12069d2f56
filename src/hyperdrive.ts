/**
 * Cloudflare Hyperdrive: `pooler({ hyperdrive: 'HYPERDRIVE' })` reads the connection string of the
 * `[[hyperdrive]]` binding of that name (`c.env.HYPERDRIVE.connectionString`, a `*.hyperdrive.local` host
 * in production and in `wrangler dev`). The preset it selects is in `preset.ts` (`HYPERDRIVE_DEFAULTS`).
 */
import type { Context } from 'hono'
import { PoolerError } from './errors'

/** What a Hyperdrive binding looks like to a Worker (the part hono-pooler reads). */
export interface HyperdriveBinding {
  connectionString: string
}

/**
 * The connection string of the Hyperdrive binding `binding`; `MISSING_DATABASE_URL` naming it when absent.
 *
 * @example
 * ```ts
 * const url = hyperdriveUrl(c, 'HYPERDRIVE') // 'postgresql://user:pw@a1b2….hyperdrive.local:5432/db'
 * ```
 */
export function hyperdriveUrl(c: Context, binding: string): string {
  const value = (c.env as Record<string, unknown> | undefined)?.[binding] as
    | Partial<HyperdriveBinding>
    | undefined
  const url = value?.connectionString
  if (typeof url !== 'string' || url === '')
    throw new PoolerError(
      'MISSING_DATABASE_URL',
      `The Hyperdrive binding ${binding} is not set — add [[hyperdrive]] binding = "${binding}" (id, and localConnectionString for wrangler dev) to wrangler.toml`,
    )
  return url
}
