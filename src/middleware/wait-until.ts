/**
 * Where a promise that must outlive the response goes: Workers' `ctx.waitUntil`, Vercel's request context
 * (the one `@vercel/functions` exports); elsewhere it is awaited before the middleware returns.
 */
import type { Context } from 'hono'

type WaitUntil = (p: Promise<unknown>) => void
const VERCEL_CONTEXT = Symbol.for('@vercel/request-context')

/**
 * Where to hand a promise that must outlive the response: Workers' ctx, Vercel's request context.
 *
 * @example
 * ```ts
 * const flushLogs = async () => {}
 * findWaitUntil(c)?.(flushLogs()) // Workers / Vercel: after the response; elsewhere undefined
 * ```
 */
export function findWaitUntil(c: Context, node?: unknown): WaitUntil | undefined {
  // @hono/node-server (`node`: its HttpBindings are in c.env) passes no executionCtx: skip the probe.
  if (!node) {
    const ctx = executionCtx(c)
    if (typeof ctx?.waitUntil === 'function') return (p) => ctx.waitUntil(p)
  }
  const vercel = (globalThis as any)[VERCEL_CONTEXT]?.get?.()?.waitUntil
  return typeof vercel === 'function' ? (p) => vercel(p) : undefined
}

function executionCtx(c: Context): Context['executionCtx'] | undefined {
  // c.executionCtx throws when the runtime has none (Node): without a stack trace that costs little,
  // with one it was a third of the middleware's own time per request.
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return c.executionCtx
  } catch {
    return undefined
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * Off the critical path where the runtime allows it (Workers, Vercel), else awaited.
 *
 * @example
 * ```ts
 * await settle(c, sql.end({ timeout: 5 })) // `node`: the request came through @hono/node-server
 * ```
 */
export async function settle(c: Context, p: Promise<void>, node?: unknown): Promise<void> {
  const waitUntil = findWaitUntil(c, node)
  if (waitUntil) waitUntil(p)
  else await p
}
