/**
 * A pool on Vercel (Fluid compute, `allowServerless: true`): what `@vercel/functions`' `attachDatabasePool`
 * does for `pg`. Each time the pool becomes idle, the current invocation's `waitUntil` receives a promise
 * that resolves once the idle connections are closed (after `idleTimeout` seconds without use), so the
 * instance is not suspended with sockets open, and is not kept alive longer than that.
 */
import type { ConnectionPool } from './pool'

const VERCEL_CONTEXT = Symbol.for('@vercel/request-context')

/** Vercel's `waitUntil` for the invocation running now, if any. */
function vercelWaitUntil(): ((p: Promise<unknown>) => void) | undefined {
  const wait = (globalThis as any)[VERCEL_CONTEXT]?.get?.()?.waitUntil
  return typeof wait === 'function' ? (p) => wait(p) : undefined
}

/**
 * Arms the pool: on every return to idle, close idle connections after `seconds`, and keep the invocation
 * alive (waitUntil) until then. Used again before that, the timer starts over.
 *
 * @example
 * ```ts
 * import type { ConnectionPool } from './pool'
 *
 * declare const pool: ConnectionPool
 * closeWhenIdle(pool, 30)
 * ```
 */
export function closeWhenIdle(pool: ConnectionPool, seconds: number): void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let done: (() => void) | undefined
  pool.onIdle = () => {
    if (timer) clearTimeout(timer)
    done?.()
    const idle = new Promise<void>((resolve) => {
      done = resolve
    })
    timer = setTimeout(() => {
      timer = undefined
      void pool.closeIdle().then(done, done)
    }, seconds * 1000)
    vercelWaitUntil()?.(idle)
  }
}
