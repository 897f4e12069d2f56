/**
 * One pool per process per `pooler({ pool })` and URL, created on first use and shared by all requests;
 * `closePools()` over all of them.
 */
import { poolClosed } from '../errors'
import type { ResolvedOptions } from '../options'
import type { ClientConfig } from '../preset'
import { checkBudget } from './budget'
import { livePools } from './live'
import { ConnectionPool } from './pool'
import { refuseServerless, serverlessPlatform } from './serverless'
import { closeWhenIdle } from './vercel'

let pools = new WeakMap<ResolvedOptions, Map<string, ConnectionPool>>()
/** closePools() is running: no pool is created or handed out until it resolved. */
let closingAll: Promise<void> | undefined

/**
 * The shared pool of a request's configuration (`config.options.pool` must be set).
 *
 * @example
 * ```ts
 * import { parseOptions } from '../options'
 * import { clientConfig } from '../preset'
 *
 * const url = 'postgres://app:pw@127.0.0.1:5432/app'
 * const pool = sharedPool(clientConfig(url, parseOptions({ pool: { size: 4 } })))
 * pool.stats().size // 4
 * ```
 */
export function sharedPool(config: ClientConfig): ConnectionPool {
  if (closingAll) throw poolClosed()
  let byUrl = pools.get(config.options)
  if (!byUrl) {
    byUrl = new Map()
    pools.set(config.options, byUrl)
  }
  let pool = byUrl.get(config.url)
  if (!pool) {
    const options = config.options.pool!
    refuseServerless(options.allowServerless)
    pool = new ConnectionPool(config.info.host, config.mode, config.url, config.driver, options)
    if (serverlessPlatform() === 'Vercel') closeWhenIdle(pool, config.options.idleTimeout)
    byUrl.set(config.url, pool)
    livePools.add(pool)
    const { host, port, database } = config.info
    if (options.checkBudget) void checkBudget(`${host}:${port}/${database}`, pool)
  }
  return pool
}

/**
 * Graceful shutdown: every shared pool stops handing out connections, running statements and transactions
 * get up to `timeout` seconds, then every connection is closed. Until it resolved, a request that needs a
 * connection gets `POOL_CLOSED` (none opens a new pool); afterwards a request opens a new pool (pools can be
 * reopened, e.g. by tests). Calling it again while it runs returns the same promise.
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => closePools({ timeout: 10 }).then(() => process.exit(0)))
 * ```
 */
export function closePools({ timeout = 10 }: { timeout?: number } = {}): Promise<void> {
  if (closingAll) return closingAll
  const closing = [...livePools] as ConnectionPool[]
  closingAll = Promise.all(closing.map((p) => p.close(timeout))).then(() => {
    livePools.clear()
    pools = new WeakMap()
    closingAll = undefined
  })
  return closingAll
}
