/**
 * Where a shared pool makes no sense: on Workers a socket cannot outlive its request, and a Vercel function
 * may be suspended with sockets open. A pool there is refused unless the user opts in knowingly.
 */
import { isWorkerd } from '../connect/workerd-socket'
import { PoolerError } from '../errors'

/**
 * The serverless platform this code runs on, if any.
 *
 * @example
 * ```ts
 * serverlessPlatform() // 'Cloudflare Workers' in workerd, 'Vercel' in a Vercel function, else undefined
 * ```
 */
export function serverlessPlatform(): string | undefined {
  if (isWorkerd()) return 'Cloudflare Workers'
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
  if (env?.VERCEL === '1' || (globalThis as any)[Symbol.for('@vercel/request-context')]) return 'Vercel'
  return undefined
}

/**
 * Throws `INVALID_OPTIONS` for a pool on a serverless platform without `allowServerless: true`.
 *
 * @example
 * ```ts
 * refuseServerless(false) // throws INVALID_OPTIONS on Workers and Vercel
 * ```
 */
export function refuseServerless(allowServerless: boolean): void {
  const platform = allowServerless ? undefined : serverlessPlatform()
  if (platform)
    throw new PoolerError(
      'INVALID_OPTIONS',
      `Invalid hono-pooler option pool: ${platform} does not keep sockets between requests — drop pool (one client per request through the transaction pooler), or set pool.allowServerless: true knowingly`,
    )
}
